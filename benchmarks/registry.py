"""Listings and plans read only what they show: their cost at small and large tag counts and history lengths.

Run: .venv/bin/python benchmarks/registry.py   (after scripts/setup.sh; starts a local OCI registry, moto_server,
the ECR harness and a real Airflow 3 api-server on 127.0.0.1; no Docker engine needed)

Measured side by side in one run, through the CLI (median of 3; registry requests counted per run):
1. ECR (tests/ecr_harness.py: ECR's documented rules, calls counted per API operation): histories of 10, 1,000
   and 100,000 revisions, written as the format defines (the newest 100 as full records, older slots as the
   single records, every-100th markers and segments ECR keeps; all older ones share one placeholder record, which
   no command here reads), in a repository with 20 and then with 10,000 build tags:
   `history --limit 20`, `rollback --dry-run`, `deploy --dry-run`, and a real `deploy` (one revision more).
2. A plain OCI registry behind a counting proxy: `tags list --limit 20` with 1,000 and with 10,000 build tags
   (and `--limit 1000` at 1,000, which reads every row); `history --limit 20` and `rollback --dry-run` at 10 and
   1,000 revisions.
3. In memory (tests/fakes.py's MemoryRegistry, counting operations): reading the newest 50 revisions at 10,
   1,000 and 100,000 revisions, ECR-like (atomic tags) and plain-OCI-like (splitter claims).
4. CLI start-up: `--version` and `--help`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from imagectl.clock import now_text as now  # noqa: E402
from imagectl.credentials import Credentials  # noqa: E402
from imagectl.history import NONCE, History, Revision  # noqa: E402
from imagectl.namespaces import SEGMENT_SIZE, history_tag, segment_tag  # noqa: E402
from imagectl.records import REVISION_RECORD, SEGMENT_RECORD, make_record  # noqa: E402
from imagectl.registries import open_registry  # noqa: E402
from imagectl.registries._base import Manifest  # noqa: E402
from imagectl.registries.kinds import EcrSettings, HttpSettings  # noqa: E402
from imagectl.settings import RegistryConfig  # noqa: E402
from tests import stack  # noqa: E402
from tests.ecr_harness import ACCOUNT, EcrHarness, Limits  # noqa: E402
from tests.fakes import MemoryRegistry  # noqa: E402
from tests.fault_proxy import FaultProxy  # noqa: E402
from tests.unit.test_history import seed  # noqa: E402

IMAGECTL = str(ROOT / ".venv/bin/imagectl")
REPO = "bench/dbt-build"
REPEATS = 3
KEEP_SINGLES = 1000  # retention's keep_history_records default: single records ECR keeps


def tiny_image(name: str = "one") -> tuple[dict[str, bytes], Manifest]:
    """A one-layer image (``name`` makes it differ from others): its blobs by digest, and its manifest."""
    layer = b"layer"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "name": name}).encode()

    def descriptor(media_type: str, blob: bytes) -> dict:
        return {"mediaType": media_type, "size": len(blob), "digest": "sha256:" + hashlib.sha256(blob).hexdigest()}

    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }
    blobs = {descriptor("", b)["digest"]: b for b in (layer, config)}
    return blobs, Manifest.from_bytes(json.dumps(doc).encode())


def push_image(registry, blobs: dict[str, bytes], image: Manifest, tag: str) -> None:
    for digest, blob in blobs.items():
        if not registry.has_blob(REPO, digest):
            registry.put_blob(REPO, digest, len(blob), io.BytesIO(blob))
    registry.put_manifest(REPO, tag, image)


def timed(env: dict[str, str], *args: str, count=lambda: 0, reset=lambda: None, ok=(0,)) -> tuple[float, int]:
    """Median wall time of the CLI command, and the registry calls one run makes."""
    times, calls = [], []
    for _ in range(REPEATS):
        reset()
        start = time.perf_counter()
        result = subprocess.run([IMAGECTL, *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        calls.append(count())
        if result.returncode not in ok:
            sys.exit(f"imagectl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return statistics.median(times), max(calls)


def config_text(registry: str, airflow_url: str, environments: list[str]) -> str:
    envs = "".join(
        f'[environments.{name}]\nregistry = "reg"\nairflow_url = "{airflow_url}"\nvariable = "bench_{name}"\nconfirm = false\n'
        for name in environments
    )
    return f"""
[jira]
projects = ["DATA"]
[images.base]
context = "ctx"
repository = "bench/dbt-base"
[images.build]
context = "ctx"
repository = "{REPO}"
{registry}
{envs}"""


# -- 1. ECR --------------------------------------------------------------------------------------------------------


def seed_ecr_history(harness: EcrHarness, ecr, image: Manifest, env: str, count: int) -> None:
    """Revisions 1…count of ``env`` as they stand on ECR after ``count`` deploys: the newest 100 full records; the
    older single records retention keeps, every 100th marker, and a segment per finished block of 100 (one shared
    placeholder record each: nothing measured here reads below the newest 50)."""
    repo = harness._repo(REPO)
    reference = f"{harness.host}/{REPO}:DATA-1-1@{image.digest}"
    for n in range(max(1, count - 99), count + 1):
        draft = Revision(env, n, now(), "deploy", "DATA-1-1", image.digest, reference, "bench", replaces=n - 1 if n > 1 else None)
        record = make_record(image, {**draft.annotations(), NONCE: f"{env}-{n}"}, REVISION_RECORD)
        harness.put_manifest(REPO, history_tag(env, n), record.raw, record.media_type)
    placeholder = make_record(image, {"io.imagectl.bench": "placeholder"}, REVISION_RECORD)
    segment = make_record(None, {"io.imagectl.bench": "placeholder"}, SEGMENT_RECORD)
    for record in (placeholder, segment):
        harness.put_manifest(REPO, record.digest, record.raw, record.media_type)
    with repo.lock:
        for n in range(1, count - 99):
            if n > count - KEEP_SINGLES or n % SEGMENT_SIZE == 0:
                repo.tags[history_tag(env, n)] = placeholder.digest
        for k in range(1, count // SEGMENT_SIZE + 1):
            repo.tags[segment_tag(env, k)] = segment.digest


def add_build_tags(harness: EcrHarness, tags: list[str]) -> None:
    """Build tags on images of their own (as builds are; ECR allows 1,000 tags per image), straight into the
    harness's store: nothing measured here reads them, which is the point."""
    repo = harness._repo(REPO)
    with repo.lock:
        for tag in tags:
            digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
            repo.images[digest] = {"pushed_at": time.time(), "size": 1000, "media_type": "application/vnd.oci.image.manifest.v1+json"}
            repo.tags[tag] = digest


def bench_ecr(work: Path, airflow: stack.Airflow, base_env: dict[str, str]) -> dict:
    moto = stack.start_moto(work)
    backing = stack.start_registry(work)
    # 10,000 build images beside the history exceed ECR's default 10,000 images per repository: as a team with
    # that many would, the benchmark has the (adjustable) quota raised.
    harness = EcrHarness(moto.url, backing.url, limits=Limits(images_per_repository=20_000))
    try:
        aws = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "ap-northeast-2",
            "AWS_ENDPOINT_URL_ECR": harness.url,
            "AWS_ENDPOINT_URL_STS": moto.url,
        }
        os.environ.update(aws)  # for the in-process writes below
        sizes = {"e10": 10, "e1k": 1_000, "e100k": 100_000}
        registry = (
            f'[registries.reg]\nkind = "ecr"\nhost = "{harness.host}"\nregion = "ap-northeast-2"\ninsecure = true\n'
            f'registry_id = "{ACCOUNT}"\n'
        )
        config = work / "ecr.toml"
        config.write_text(config_text(registry, airflow.url, list(sizes)))
        env = {**base_env, **aws, "IMAGECTL_CONFIG": str(config)}
        subprocess.run([IMAGECTL, "registry", "init", "--env", "e10"], env=env, check=True, capture_output=True)
        ecr = open_registry(
            RegistryConfig("reg", "ecr", harness.host, EcrSettings(region="ap-northeast-2", insecure=True, registry_id=ACCOUNT)),
            Credentials(),
        )
        blobs, image = tiny_image()
        ecr.ensure_empty_blob(REPO)
        push_image(ecr, blobs, image, "DATA-1-1")
        push_image(ecr, *tiny_image("two"), "DATA-1-2")
        add_build_tags(harness, [f"DATA-2-{n}" for n in range(18)])  # 20 build tags in all
        print("ECR: writing histories of 10, 1,000 and 100,000 revisions ...", flush=True)
        for name, count in sizes.items():
            seed_ecr_history(harness, ecr, image, name, count)

        def count() -> int:
            return sum(harness.stats().values())

        results: dict = {}
        for build_tags in (20, 10_000):
            if build_tags == 10_000:
                add_build_tags(harness, [f"DATA-3-{n}" for n in range(20, 10_000)])
            for name, revisions in sizes.items():
                row = {}
                harness.reset_stats()
                start = time.perf_counter()
                deploy = [IMAGECTL, "deploy", "DATA-1-2" if build_tags == 20 else "DATA-1-1", "--env", name]
                result = subprocess.run(deploy, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    sys.exit(f"{' '.join(deploy[1:])}: {result.stderr}")
                row["deploy"] = (time.perf_counter() - start, count())
                for what, args in (
                    ("history --limit 20", ("history", "--env", name, "--limit", "20")),
                    ("rollback --dry-run", ("rollback", "--env", name, "--dry-run", "--reason", "bench")),
                    ("deploy --dry-run", ("deploy", "DATA-1-1", "--env", name, "--dry-run")),
                ):
                    row[what] = timed(env, *args, "-o", "json", count=count, reset=harness.reset_stats)
                results[(revisions, build_tags)] = row
        return results
    finally:
        harness.close()
        backing.stop()
        moto.stop()
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_ECR"):
            os.environ.pop(key, None)


# -- 2. OCI --------------------------------------------------------------------------------------------------------


def tag_many(registry_url: str, image: Manifest, tags: list[str]) -> None:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def put(tag: str) -> None:
        url = f"{registry_url}/v2/{REPO}/manifests/{tag}"
        session.put(url, data=image.raw, headers={"Content-Type": image.media_type}, timeout=30).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, tags))


def bench_oci(work: Path, airflow: stack.Airflow, base_env: dict[str, str]) -> tuple[dict, dict]:
    registry = stack.start_registry(work)
    proxy = FaultProxy(registry.url)
    try:
        config = work / "oci.toml"
        config.write_text(
            config_text(f'[registries.reg]\nkind = "oci"\nhost = "{proxy.host}"\ninsecure = true\n', airflow.url, ["small", "big"])
        )
        env = {**base_env, "IMAGECTL_CONFIG": str(config)}
        oci = open_registry(RegistryConfig("reg", "oci", registry.url.removeprefix("http://"), HttpSettings(insecure=True)), Credentials())
        blobs, image = tiny_image()
        push_image(oci, blobs, image, "DATA-1-1")
        push_image(oci, *tiny_image("two"), "DATA-9999-1")  # another image, for deploy and rollback

        def count() -> int:
            return sum(proxy.requests.values())

        print("OCI: tagging 1,000 builds ...", flush=True)
        tag_many(registry.url, image, [f"DATA-{1 + n // 50}-{n}" for n in range(1, 1001)])
        listing = {}

        def tags_list(limit: str) -> tuple[float, int]:
            return timed(env, "tags", "list", "--env", "small", "--limit", limit, "-o", "json", count=count, reset=proxy.requests.clear)

        for label, limit in (("1,000 tags, --limit 20", "20"), ("1,000 tags, --limit 1000", "1000")):
            listing[label] = tags_list(limit)
        print("OCI: tagging 9,000 more ...", flush=True)
        tag_many(registry.url, image, [f"DATA-{1 + n // 50}-{n}" for n in range(1001, 10001)])
        listing["10,000 tags, --limit 20"] = tags_list("20")

        plans = {}
        for name, revisions in (("small", 10), ("big", 1000)):
            print(f"OCI: recording {revisions} revisions ...", flush=True)
            history = History(oci, REPO, name)
            for n in range(revisions - 1):
                tag = f"DATA-{1 + n // 50}-{n + 1}"
                draft = Revision(name, 0, now(), "deploy", tag, image.digest, f"{proxy.host}/{REPO}:{tag}@{image.digest}", "bench")
                history.append(draft, image)
            subprocess.run([IMAGECTL, "deploy", "DATA-9999-1", "--env", name], env=env, check=True, capture_output=True)
            for what, args in (
                ("history --limit 20", ("history", "--env", name, "--limit", "20")),
                ("rollback --dry-run", ("rollback", "--env", name, "--dry-run", "--reason", "bench")),
            ):
                plans[(what, revisions)] = timed(env, *args, "-o", "json", count=count, reset=proxy.requests.clear)
        return listing, plans
    finally:
        proxy.close()
        registry.stop()


# -- 3. in memory --------------------------------------------------------------------------------------------------


def memory_costs() -> list[tuple[str, int, Counter]]:
    rows = []
    for kind, atomic in (("ECR-like", True), ("plain-OCI-like", False)):
        for count in (10, 1_000, 100_000):
            registry = MemoryRegistry(atomic=atomic)
            seed(registry, "prd", count)
            registry.calls.clear()
            History(registry, "dbt-build", "prd").newest(50)
            rows.append((kind, count, Counter(registry.calls)))
    return rows


def wall(command: list[str]) -> float:
    """Median of 5 wall times of ``command``."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="imagectl-bench-registry-"))
    (work / "ctx").mkdir()
    (work / "ctx/Dockerfile").write_text("FROM scratch\n")
    airflow = stack.start_airflow(work, 3)
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IMAGECTL_"))},
        "IMAGECTL_AIRFLOW_USERNAME": "imagectl",
        "IMAGECTL_AIRFLOW_PASSWORD": stack.AIRFLOW_USERS["imagectl"][1],
    }
    try:
        report_ecr(bench_ecr(work, airflow, base_env))  # each part prints as it ends: a later failure loses nothing
        report_oci(*bench_oci(work, airflow, base_env))
        report_memory()
        startup = {args: wall([IMAGECTL, args]) for args in ("--version", "--help")}
        python = wall([sys.executable, "-c", "pass"])
        versions, helps = startup["--version"], startup["--help"]
        print(f"4. CLI start-up (median of 5): --version {versions:.2f} s, --help {helps:.2f} s; `python -c pass` {python:.2f} s")
    finally:
        airflow.stop()
        shutil.rmtree(work, ignore_errors=True)


def report_ecr(ecr: dict) -> None:
    print()
    print("1. ECR harness: seconds (registry API calls) per command")
    ops = ["history --limit 20", "rollback --dry-run", "deploy --dry-run", "deploy"]
    print(f"{'revisions':>10} {'build tags':>10} " + " ".join(f"{op:>22}" for op in ops))
    for (revisions, build_tags), row in ecr.items():
        print(f"{revisions:10,d} {build_tags:10,d} " + " ".join(f"{row[op][0]:14.2f} s ({row[op][1]:3d})" for op in ops))
    for op in ops:
        seconds = [row[op][0] for row in ecr.values()]
        calls = [row[op][1] for row in ecr.values()]
        print(f"   {op:22} largest / smallest: {max(seconds) / min(seconds):.2f}x time, calls {min(calls)}-{max(calls)}")
    print(flush=True)


def report_oci(listing: dict, plans: dict) -> None:
    print("2. OCI registry: seconds (HTTP requests)")
    for what, (seconds, count) in listing.items():
        print(f"   tags list, {what:28} {seconds:6.2f} s ({count:5d})")
    for what in ("history --limit 20", "rollback --dry-run"):
        (s10, c10), (s1k, c1k) = plans[(what, 10)], plans[(what, 1000)]
        print(f"   {what:22} 10 revisions {s10:6.2f} s ({c10:3d})   1,000 revisions {s1k:6.2f} s ({c1k:3d})   {s1k / s10:.2f}x")
    print(flush=True)


def report_memory() -> None:
    print("3. newest 50 revisions, in memory: operations")
    for kind, count, calls in memory_costs():
        print(f"   {kind:16} {count:8,d} revisions: {dict(sorted(calls.items()))}")
    print(flush=True)


if __name__ == "__main__":
    main()
