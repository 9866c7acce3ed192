import os

from imagectl.context_hash import context_hash, declared_args


def make(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nCOPY . /x\n")
    (ctx / "requirements.txt").write_text("dbt-core==1.11.16\n")
    return ctx


def h(ctx, **args):
    return context_hash(ctx, ctx / "Dockerfile", args)


def test_stable_and_sensitive_to_content(tmp_path):
    ctx = make(tmp_path)
    first = h(ctx)
    assert h(ctx) == first
    (ctx / "requirements.txt").write_text("dbt-core==1.11.17\n")
    assert h(ctx) != first


def test_new_file_and_exec_bit_change_it(tmp_path):
    ctx = make(tmp_path)
    first = h(ctx)
    (ctx / "x.sh").write_text("echo\n")
    second = h(ctx)
    assert second != first
    os.chmod(ctx / "x.sh", 0o755)
    assert h(ctx) != second


def test_dockerignored_files_do_not_count(tmp_path):
    ctx = make(tmp_path)
    (ctx / ".dockerignore").write_text("*.log\n")
    first = h(ctx)
    (ctx / "debug.log").write_text("noise\n")
    assert h(ctx) == first


def test_only_declared_build_args_count(tmp_path):
    ctx = make(tmp_path)
    assert declared_args((ctx / "Dockerfile").read_text()) == {"PYTHON_IMAGE"}
    base = h(ctx)
    assert h(ctx, UNRELATED="1") == base
    assert h(ctx, PYTHON_IMAGE="mirror/python:3.11") != base
