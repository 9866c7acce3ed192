"""Generate a synthetic dbt project (DuckDB) of N models in layers, with fan-in and fan-out, for benchmarks.

usage: python benchmarks/generate_project.py N OUT_DIR [--layers L] [--seed S]

Layer 0 models read a seed; every model in layer k>0 selects from 1-3 models of layer k-1 (fan-in), so
models of early layers have many children (fan-out). Each model gets a not_null test on its key. The
project has the same profile as sample_project (DuckDB path from DBT_DUCKDB_PATH).
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

PROFILE = """\
synthetic:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{{ env_var('DBT_DUCKDB_PATH', '/tmp/synthetic.duckdb') }}"
      threads: 4
"""


def layer_sizes(n: int, layers: int) -> list[int]:
    base, extra = divmod(n, layers)
    return [base + (1 if i < extra else 0) for i in range(layers)]


def model_name(layer: int, index: int) -> str:
    return f"m{layer:02d}_{index:04d}"


def generate(n: int, out: Path, layers: int = 6, seed: int = 7) -> dict[str, list[str]]:
    """Write the project; return each model's parents (for tests and for picking a mid-graph model)."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True)
    (out / "seeds").mkdir()
    (out / "dbt_project.yml").write_text(
        "name: synthetic\nversion: '1.0.0'\nconfig-version: 2\nprofile: synthetic\nmodels:\n  synthetic:\n    +materialized: table\n"
    )
    (out / "profiles.yml").write_text(PROFILE)
    (out / "seeds" / "raw_events.csv").write_text("id,value\n" + "".join(f"{i},{i * 7 % 13}\n" for i in range(1, 51)))
    parents: dict[str, list[str]] = {}
    sizes = layer_sizes(n, layers)
    previous: list[str] = []
    schema = ["version: 2", "models:"]
    for layer, size in enumerate(sizes):
        current = [model_name(layer, i) for i in range(size)]
        for name in current:
            if layer == 0:
                parents[name] = []
                sql = f"select id, value + {rng.randint(0, 9)} as value from {{{{ ref('raw_events') }}}}\n"
            else:
                chosen = rng.sample(previous, k=min(len(previous), rng.randint(1, 3)))
                parents[name] = chosen
                first, *rest = chosen
                joins = "".join(f"\nleft join {{{{ ref('{p}') }}}} as p{i} using (id)" for i, p in enumerate(rest, start=1))
                total = " + ".join(["p0.value"] + [f"coalesce(p{i}.value, 0)" for i in range(1, len(chosen))])
                sql = f"select p0.id, {total} as value\nfrom {{{{ ref('{first}') }}}} as p0{joins}\n"
            (out / "models" / f"{name}.sql").write_text(sql)
            schema += [f"  - name: {name}", "    columns:", "      - name: id", "        data_tests: [not_null]"]
        previous = current
    (out / "models" / "schema.yml").write_text("\n".join(schema) + "\n")
    return parents


def children_closure(parents: dict[str, list[str]], model: str) -> set[str]:
    """``model`` and everything downstream of it: what state:modified+ selects after ``model`` changes."""
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    seen, stack = {model}, [model]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    parents = generate(args.n, args.out, args.layers, args.seed)
    print(f"generated {len(parents)} models in {args.layers} layers at {args.out}")


if __name__ == "__main__":
    main()
