"""Run the whole demo casino on one machine: `manage.py demo` (what `make demo` calls).

1. PostgreSQL: DATABASE_URL if set, else an embedded server with its data in `.demo/pgdata`.
2. Redis: REDIS_URL if set, else an embedded server on a free port on 127.0.0.1.
3. `migrate`, then `seed_demo` (idempotent: a restart keeps the casino as it was).
4. Children: the web server, a Celery worker, Celery beat and, when the payments app has the
   `psp_simulate` command, `psp_simulate --base-url http://HOST:PORT --every S --count N`: a
   small batch of payment flows with signed PSP callbacks every few seconds. If the simulator
   exits, it is restarted; after three exits it stays off and the demo goes on without it.
5. Prints the URL and the demo logins, then watches: Ctrl-C or SIGTERM stops the children
   (SIGTERM, SIGKILL after a grace period), then the embedded services. If a child dies on its
   own, everything stops and the command exits non-zero.

The children run in sessions of their own, so a Ctrl-C reaches only this runner, which stops
them in order; on Linux they also get SIGTERM if the runner itself is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError

from backoffice import demo
from backoffice.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    demo_dir,
    die_with_parent,
    port_is_free,
)

STOP_GRACE_SECONDS = 15


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived: stop everything."""


class Child:
    """A child process whose output is relayed line by line with a name in front."""

    def __init__(self, name: str, argv: list[str], *, env: dict, out, lock: threading.RLock):
        self.name = name
        self.argv = argv
        self.env = env
        self.out = out
        self.lock = lock
        self.proc: subprocess.Popen | None = None
        self._relay: threading.Thread | None = None

    def start(self) -> Child:
        self.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            self.argv,
            cwd=settings.BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._relay = threading.Thread(target=self._relay_output, daemon=True)
        self._relay.start()
        return self

    def _relay_output(self) -> None:
        prefix = f"{self.name:<8}| "
        for line in self.proc.stdout:
            with self.lock:
                self.out.write(prefix + line.rstrip("\n") + "\n")
                self.out.flush()

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        """SIGTERM to the child's whole process group (runserver, Celery pool processes)."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with self.lock:
                self.out.write(f"{self.name} did not stop in time: killing it\n")
            self._signal(signal.SIGKILL)
            self.proc.wait()
        # Pool processes left in the group after the leader exited.
        self._signal(signal.SIGKILL)
        if self._relay is not None:
            self._relay.join(timeout=2)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


class Command(BaseCommand):
    help = (
        "Run the demo casino: embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are "
        "set, migrate, seed, then the web server, a Celery worker, Celery beat and simulated PSP "
        "traffic. Ctrl-C stops everything."
    )
    requires_system_checks = []  # the web server child runs them against the real database

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to serve on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on.")
        parser.add_argument(
            "--players", type=int, help="Players to seed on a fresh database (seed_demo's default)."
        )
        parser.add_argument("--seed", type=int, help="Random seed for seed_demo.")
        parser.add_argument(
            "--simulate-every",
            type=float,
            default=5.0,
            help="Seconds between two batches of simulated PSP traffic (0 switches it off).",
        )
        parser.add_argument(
            "--simulate-count",
            type=int,
            default=3,
            help="Payment flows per batch of simulated PSP traffic.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (passed to seed_demo)."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "The demo runs with DEBUG on (the dev settings): its logins have a published "
                "password. Pass --force to run it anyway."
            )
        self.options = options
        self.lock = threading.RLock()  # re-entrant: a signal may land while we hold it
        self.stopping = threading.Event()
        self.children: list[Child] = []
        self.services: list = []
        self.base_url = f"http://{options['host']}:{options['port']}"
        if not port_is_free(options["port"], options["host"]):
            raise CommandError(
                f"Port {options['port']} on {options['host']} is in use: is a demo already "
                "running? Stop it, or pick another port with --port."
            )

        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        exit_code = 0
        try:
            env = self._start_services()
            self._run_step("migrate", ["migrate", "--noinput", "--verbosity", "1"], env)
            self._run_step("seed", ["seed_demo", *self._seed_args()], env)
            self._start_children(env)
            self._wait_until_up()
            self._print_banner(env)
            exit_code = self._watch(env)
        except Interrupted:
            self._say("\nStopping the demo...")
        except EmbeddedServiceError as exc:
            self._say(self.style.ERROR(str(exc)))
            exit_code = 1
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self._stop_everything()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if exit_code:
            sys.exit(exit_code)

    # Signals and output

    def _on_signal(self, signum, frame):
        if not self.stopping.is_set():
            self.stopping.set()
            raise Interrupted

    def _say(self, message: str) -> None:
        with self.lock:
            self.stdout.write(message)
            self.stdout.flush()

    # Services

    def _start_services(self) -> dict:
        env = os.environ.copy()
        env["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
        env["PYTHONUNBUFFERED"] = "1"
        workdir = demo_dir(settings.BASE_DIR)
        workdir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("DATABASE_URL"):
            self._say(f"Starting the embedded PostgreSQL (data in {workdir / 'pgdata'})...")
            postgres = EmbeddedPostgres(workdir / "pgdata")
            self.services.append(postgres)
            env["DATABASE_URL"] = postgres.start()
        else:
            self._say("Using the PostgreSQL at DATABASE_URL.")
        if not os.environ.get("REDIS_URL"):
            self._say("Starting the embedded Redis...")
            redis_server = EmbeddedRedis(workdir / "redis", port=6380)
            self.services.append(redis_server)
            env["REDIS_URL"] = redis_server.start()
            # Settings derive the broker and result backend from REDIS_URL unless told otherwise.
            env.pop("CELERY_BROKER_URL", None)
            env.pop("CELERY_RESULT_BACKEND", None)
        else:
            self._say("Using the Redis at REDIS_URL.")
        return env

    # Children

    def _manage(self, *args: str) -> list[str]:
        return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]

    def _celery(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "backoffice", *args]

    def _seed_args(self) -> list[str]:
        args = []
        if self.options["players"] is not None:
            args += ["--players", str(self.options["players"])]
        if self.options["seed"] is not None:
            args += ["--seed", str(self.options["seed"])]
        if self.options["force"]:
            args.append("--force")
        return args

    def _child(self, name: str, argv: list[str], env: dict) -> Child:
        return Child(name, argv, env=env, out=self.stdout, lock=self.lock)

    def _run_step(self, name: str, args: list[str], env: dict) -> None:
        """Run a manage.py command to completion; a failure stops the demo."""
        self._say(f"Running {args[0]}...")
        child = self._child(name, self._manage(*args), env).start()
        self.children.append(child)
        while child.poll() is None:
            time.sleep(0.2)
        child.wait_or_kill(time.monotonic() + 2)
        self.children.remove(child)
        if child.poll() != 0:
            raise CommandError(f"{args[0]} failed (exit code {child.poll()}): see above.")

    def _start_children(self, env: dict) -> None:
        workdir = demo_dir(settings.BASE_DIR)
        host, port = self.options["host"], self.options["port"]
        runserver = self._manage("runserver", f"{host}:{port}", "--noreload")
        self.web = self._child("web", runserver, env)
        self.worker = self._child(
            "worker",
            self._celery(
                "worker", "--loglevel", "INFO", "--concurrency", "2", "--hostname", "demo@%h",
                "--without-gossip", "--without-mingle",
            ),
            env,
        )  # fmt: skip
        self.beat = self._child(
            "beat",
            self._celery(
                "beat", "--loglevel", "INFO", "--schedule", str(workdir / "celerybeat-schedule")
            ),
            env,
        )
        for child in (self.web, self.worker, self.beat):
            self.children.append(child.start())

    def _wait_until_up(self, timeout: float = 120.0) -> None:
        """Wait until /health/ answers 200 (database, Redis and a worker all up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_children()
            try:
                with urllib.request.urlopen(f"{self.base_url}/health/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1)
        self._say(
            self.style.WARNING(f"{self.base_url}/health/ is still not healthy: see the log above.")
        )

    def _check_children(self) -> None:
        for child in (self.web, self.worker, self.beat):
            code = child.poll()
            if code is not None:
                raise CommandError(f"{child.name} stopped on its own (exit code {code}).")

    def _simulating(self) -> bool:
        return self.options["simulate_every"] > 0 and "psp_simulate" in get_commands()

    def _watch(self, env: dict) -> int:
        """Keep the simulator going and watch the children until a signal or a death."""
        interval = self.options["simulate_every"]
        simulate = self._simulating()
        simulator: Child | None = None
        exits = 0
        next_start = time.monotonic()
        while True:
            try:
                self._check_children()
            except CommandError as exc:
                self._say(self.style.ERROR(f"{exc} Stopping the demo."))
                return 1
            if simulator is not None and simulator.poll() is not None:
                exits += 1
                code = simulator.poll()
                self.children.remove(simulator)
                simulator = None
                if exits >= 3:
                    self._say(
                        self.style.WARNING(
                            f"psp_simulate exited (code {code}) for the third time: simulated "
                            "PSP traffic is off until the demo restarts."
                        )
                    )
                    simulate = False
                else:
                    self._say(f"psp_simulate exited (code {code}): restarting it.")
                    next_start = time.monotonic() + max(interval, 5)
            if simulate and simulator is None and time.monotonic() >= next_start:
                argv = self._manage(
                    "psp_simulate",
                    "--base-url", self.base_url,
                    "--every", f"{interval:g}",
                    "--count", str(self.options["simulate_count"]),
                    "--concurrency", "1",
                )  # fmt: skip
                simulator = self._child("psp", argv, env).start()
                self.children.append(simulator)
            time.sleep(0.5)

    def _stop_everything(self) -> None:
        for child in reversed(self.children):
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            child.wait_or_kill(deadline)
        self.children.clear()
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - report and go on stopping the others
                self._say(self.style.ERROR(f"Could not stop {type(service).__name__}: {exc}"))
        if self.services:
            self._say("Embedded services stopped.")
        self.services.clear()
        self._say("Demo stopped.")

    # The banner

    def _print_banner(self, env: dict) -> None:
        width = max(len(login.username) for login in demo.DEMO_LOGINS) + 2
        lines = [
            "",
            "=" * 72,
            f"  The demo casino is running at {self.base_url}/",
            "",
            f"  Sign in with any of these logins; the password is {demo.DEMO_PASSWORD}",
            "  (skip the second-factor enrolment when it is offered).",
            "",
        ]
        for login in demo.DEMO_LOGINS:
            if login.superuser:
                scope = "every brand, every permission"
            elif login.brands:
                scope = ", ".join(demo.BRAND_SPECS[code].name for code in login.brands)
            else:
                scope = "every brand"
            role = login.role or "superuser"
            lines.append(f"    {login.username:<{width}}{role:<17}{scope}")
        postgres = "embedded" if not os.environ.get("DATABASE_URL") else "DATABASE_URL"
        redis_where = env["REDIS_URL"] if not os.environ.get("REDIS_URL") else "REDIS_URL"
        simulate = self._simulating()
        lines += [
            "",
            f"  PostgreSQL: {postgres}   Redis: {redis_where}",
            "  Simulated PSP traffic: "
            + (
                f"{self.options['simulate_count']} payment flows every "
                f"{self.options['simulate_every']:g} s"
                if simulate
                else "off"
            ),
            "  Health: " + f"{self.base_url}/health/",
            "",
            "  Press Ctrl-C to stop everything.",
            "=" * 72,
            "",
        ]
        self._say("\n".join(lines))
