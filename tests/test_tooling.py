"""The install path and the demo's tooling: find-python, the test script, embedded services."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parent.parent
FIND_PYTHON = ROOT / "scripts" / "find-python.sh"


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def run_find_python(tmp_path: Path, path_dirs: list[str], **env) -> subprocess.CompletedProcess:
    environment = {
        "PATH": os.pathsep.join(path_dirs),
        "HOME": str(tmp_path),
        "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        **env,
    }
    return subprocess.run(
        ["/bin/sh", str(FIND_PYTHON)], env=environment, capture_output=True, text=True, timeout=60
    )


def test_find_python_skips_a_failing_interpreter_and_takes_a_working_one(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # What a pyenv shim does when no version is selected.
    write_script(
        bin_dir / "python3.13", 'echo "pyenv: python3.13: command not found" >&2; exit 127'
    )
    (bin_dir / "python3.12").symlink_to(sys.executable)

    result = run_find_python(tmp_path, [str(bin_dir), os.environ["PATH"]])

    assert result.returncode == 0, result.stderr
    assert "python3.13: skipped" in result.stderr
    chosen = result.stdout.strip()
    version = subprocess.run(
        [chosen, "-c", "import sys; print(sys.version_info >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == "True"
    assert "using Python 3." in result.stderr and "found as python3.12" in result.stderr


def test_find_python_prefers_a_working_PYTHON(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(bin_dir / "python3.13", "exit 1")

    result = run_find_python(tmp_path, [str(bin_dir), os.environ["PATH"]], PYTHON=sys.executable)

    assert result.returncode == 0, result.stderr
    assert "found as $PYTHON" in result.stderr
    assert "python3.13" not in result.stderr, "later candidates are not even tried"


def test_find_python_falls_back_to_versions_pyenv_installed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python3.13", "python3.12", "python3"):
        write_script(bin_dir / name, "exit 127")
    version_bin = tmp_path / "pyenv" / "versions" / "3.12.9" / "bin"
    version_bin.mkdir(parents=True)
    (version_bin / "python3").symlink_to(sys.executable)

    result = run_find_python(
        tmp_path, [str(bin_dir), os.environ["PATH"]], PYENV_ROOT=str(tmp_path / "pyenv")
    )

    assert result.returncode == 0, result.stderr
    assert "found as pyenv 3.12.9" in result.stderr


def test_find_python_says_what_to_install_when_nothing_works(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python3.13", "python3.12", "python3"):
        write_script(bin_dir / name, "exit 1")
    # The script's own tools, and nothing else: no real Python is reachable.
    for tool in ("ls", "sort", "basename", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))

    result = run_find_python(tmp_path, [str(bin_dir)], PYTHON=str(bin_dir / "python3"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no working Python 3.12 or newer" in result.stderr
    assert "apt-get install python3.12" in result.stderr


def test_test_script_counts_no_tests_as_a_pass_but_says_so_loudly():
    env = {**os.environ, "PYTEST_WORKERS": "0"}
    result = subprocess.run(
        [str(ROOT / "scripts" / "test.sh"), "tests/test_tooling.py", "-k", "no_test_has_this_name"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "collected NO TESTS" in result.stdout


@pytest.mark.django_db
def test_seed_demo_refuses_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", "--players", "0")
    call_command("seed_demo", "--players", "0", "--force", stdout=io.StringIO())


def test_demo_refuses_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo")


def test_embedded_redis_starts_on_loopback_and_stops(tmp_path):
    import redis

    from backoffice.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        assert url.startswith("redis://127.0.0.1:")
        assert redis.Redis.from_url(url).ping()
        process = server.process
    finally:
        server.stop()
    assert process.poll() is not None
    assert server.process is None


@pytest.mark.slow
def test_embedded_postgres_has_the_extensions_the_migrations_need(tmp_path):
    import environ
    import psycopg

    from backoffice.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path / "pgdata", database="demo_check")
    url = server.start()
    try:
        config = environ.Env.db_url_config(url)
        assert config["NAME"] == "demo_check"
        with psycopg.connect(
            host=config["OPTIONS"]["host"], user="postgres", dbname="demo_check"
        ) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            assert conn.execute("SELECT similarity('aurora', 'aurore') > 0.3").fetchone()[0]
    finally:
        server.stop()
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
