"""Redis and PostgreSQL servers of a test's own, on loopback, that the test may stop and
start without touching the machine's services."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis

from agentfleet.processes import free_port

REQUIRE_SERVICES = os.environ.get("AGENTFLEET_TEST_REQUIRE_SERVICES") == "1"
START_TIMEOUT_S = 30.0


def unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AGENTFLEET_TEST_REQUIRE_SERVICES=1, so this is a failure)")
    pytest.skip(reason)


class PrivateRedis:
    """A redis-server without persistence, like the machine's: a restart loses every key."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed, so Redis cannot be restarted by a test")
        self.binary = str(binary)
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Redis did not start in {START_TIMEOUT_S:g} s") from None
                time.sleep(0.1)
        client.close()

    def kill(self) -> None:
        """Stop the server at once, as a crash or a restart without persistence would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class PrivatePostgres:
    """A PostgreSQL cluster in a test folder, made with initdb and run with pg_ctl."""

    def __init__(self) -> None:
        bindir = _postgres_bindir()
        if bindir is None:
            unavailable("PostgreSQL's initdb and pg_ctl are not installed")
        self.bindir = Path(str(bindir))
        # Its own folder under the system temp folder: a pytest tmp_path is private to
        # the user running the tests, and the server may run as another user.
        self.folder = Path(tempfile.mkdtemp(prefix="agentfleet-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/agentfleet"

    def create(self) -> None:
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; its own system user owns the cluster.
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE agentfleet")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        log = str(self.folder / "pg.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log_text(self) -> str:
        log = self.folder / "pg.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


def _postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None
