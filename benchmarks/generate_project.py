"""Generate a synthetic dbt project (DuckDB) of N models in layers, with fan-in and fan-out, for benchmarks.

usage: python benchmarks/generate_project.py N OUT_DIR [--layers L] [--seed S] [--latency-ms MS]

Layer 0 models read a seed; every model in layer k>0 selects from 1-3 models of layer k-1 (fan-in), so
models of early layers have many children (fan-out). Each model gets a not_null test on its key. The
project has the same profile as sample_project (DuckDB path from DBT_DUCKDB_PATH).

--latency-ms MS gives every model a pre-hook that waits MS milliseconds, as a warehouse's per-statement latency
does (DuckDB answers in microseconds; the seed system's warehouse did not): the hook is ``select 1`` with a marker
comment, and a dbt-duckdb plugin (latency_plugin.py, imported from the project directory: run with
PYTHONPATH=<project dir>) makes a statement with that marker wait before it runs, without holding Python's GIL,
so concurrent models wait concurrently as they would on a warehouse.
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

LATENCY_PROFILE = """\
      plugins:
        - module: latency_plugin
"""

LATENCY_PLUGIN = """\
# Benchmark only: statements carrying the marker wait that long before they run, as on a remote warehouse.
# (DuckDB 2's Python UDFs need numpy, which the image does not have, so the wait is added around dbt's query.)
import re
import time

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.sql.connections import SQLConnectionManager

MARKER = re.compile(r"/\\* imagectl-latency-ms: ([0-9]+) \\*/")
_add_query = SQLConnectionManager.add_query


def add_query(self, sql, *args, **kwargs):
    found = MARKER.search(sql or "")
    if found:
        time.sleep(int(found.group(1)) / 1000)  # releases the GIL: concurrent models wait concurrently
    return _add_query(self, sql, *args, **kwargs)


class Plugin(BasePlugin):
    def initialize(self, plugin_config):
        SQLConnectionManager.add_query = add_query
"""


def layer_sizes(n: int, layers: int) -> list[int]:
    base, extra = divmod(n, layers)
    return [base + (1 if i < extra else 0) for i in range(layers)]


def model_name(layer: int, index: int) -> str:
    return f"m{layer:02d}_{index:04d}"


def generate(n: int, out: Path, layers: int = 6, seed: int = 7, latency_ms: int = 0) -> dict[str, list[str]]:
    """Write the project; return each model's parents (for tests and for picking a mid-graph model)."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    (out / "models").mkdir(parents=True)
    (out / "seeds").mkdir()
    hook = f'    +pre-hook: "/* imagectl-latency-ms: {latency_ms} */ select 1"\n' if latency_ms else ""
    (out / "dbt_project.yml").write_text(
        "name: synthetic\nversion: '1.0.0'\nconfig-version: 2\nprofile: synthetic\nmodels:\n  synthetic:\n    +materialized: table\n" + hook
    )
    (out / "profiles.yml").write_text(PROFILE + (LATENCY_PROFILE if latency_ms else ""))
    if latency_ms:
        (out / "latency_plugin.py").write_text(LATENCY_PLUGIN)
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
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    parents = generate(args.n, args.out, args.layers, args.seed, args.latency_ms)
    print(f"generated {len(parents)} models in {args.layers} layers at {args.out}")


if __name__ == "__main__":
    main()
