"""The layering rule (CONTRIBUTING.md): every module imports only its own layer or the layers below it, the
imports form no cycle, and the CLI never loads boto3, docker or git. Read from the source (every import, also
those inside functions), so a lazy import cannot hide an upward arrow."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imagectl"

# Lowest first. A module's layer is the first entry whose name or package prefix matches it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "imagectl",
            "imagectl.errors",
            "imagectl.sanitize",
            "imagectl.report",
            "imagectl.namespaces",
            "imagectl.tagging",
            "imagectl.settings",
            "imagectl.retention",
            "imagectl.credentials",
            "imagectl.clock",
            "imagectl.labels",
            "imagectl.render",
            "imagectl.progress",
            "imagectl.context_hash",
            "imagectl.wildcards",
            "imagectl.safejson",
        ),
    ),
    ("adapters", ("imagectl.adapters",)),
    ("outside systems", ("imagectl.registries", "imagectl.airflow", "imagectl.jira")),
    ("core", ("imagectl.",)),  # every other top-level module of the package
    ("commands", ("imagectl.commands",)),
    ("cli", ("imagectl.cli", "imagectl.options", "imagectl.completion", "imagectl.__main__")),
    # imagectl inside Airflow (the Images page, the imagectl_ops task): like the CLI, a way in on top of the commands.
    ("airflow plugin", ("imagectl.plugin",)),
]
# Within the outside-systems layer, registries, airflow and jira know nothing of each other.
APART = ("imagectl.registries", "imagectl.airflow", "imagectl.jira")
SDKS = ("boto3", "botocore", "docker", "git")


def layer_of(module: str) -> int:
    """The layer naming the module or its package; "imagectl." (core) only for top-level modules named nowhere else."""
    for index, (_, names) in enumerate(LAYERS):
        if any(module == name or (name != "imagectl" and module.startswith(name + ".")) for name in names if not name.endswith(".")):
            return index
    if module.startswith("imagectl.") and module.count(".") == 1:
        return next(i for i, (_, names) in enumerate(LAYERS) if "imagectl." in names)
    raise AssertionError(f"{module} has no layer in tests/unit/test_layering.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "templates"):
            continue  # what imagectl init writes into a dbt repository: data, never imported
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, name: str) -> set[str]:
    """Every module this file imports (absolute, resolved), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path, name) if m in known and m != name} for name, path in known.items()}


def test_every_module_imports_only_downward():
    problems = []
    for module, targets in internal_graph().items():
        for target in targets:
            if target == "imagectl":
                continue
            if layer_of(target) > layer_of(module):
                problems.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
            for a in APART:
                for b in APART:
                    if a != b and module.startswith(a) and target.startswith(b):
                        problems.append(f"{module} imports {target}: registries, airflow and jira know nothing of each other")
    assert not problems, "\n".join(sorted(problems))


def test_imports_form_no_cycle():
    graph = internal_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cli_never_imports_an_sdk():
    for name in ("imagectl.cli", "imagectl.options", "imagectl.completion"):
        path = modules()[name]
        used = {m.split(".")[0] for m in imports(path, name)}
        assert not used & set(SDKS), f"{name} imports {sorted(used & set(SDKS))}"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from imagectl.cli import cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in SDKS], "importing the CLI loads an SDK"
