from benchmarks.generate_project import children_closure, generate


def test_generated_project_has_layers_with_fan_in_and_fan_out(tmp_path):
    parents = generate(60, tmp_path / "p", layers=5, seed=1)
    assert len(parents) == 60
    assert len(list((tmp_path / "p/models").glob("*.sql"))) == 60
    for model, ps in parents.items():
        layer = int(model[1:3])
        assert all(int(p[1:3]) == layer - 1 for p in ps)
        assert (layer == 0) == (ps == [])
    assert max(len(ps) for ps in parents.values()) > 1  # fan-in
    fan_out = {}
    for ps in parents.values():
        for p in ps:
            fan_out[p] = fan_out.get(p, 0) + 1
    assert max(fan_out.values()) > 1  # fan-out


def test_children_closure():
    parents = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": []}
    assert children_closure(parents, "b") == {"b", "c"}
    assert children_closure(parents, "a") == {"a", "b", "c", "d"}
