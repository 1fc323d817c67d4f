"""Start and stop the fleet's processes on this machine: the simulator and Celery workers."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from agentfleet.errors import FleetError

READY_TIMEOUT_S = 60.0
CELERY = [sys.executable, "-m", "celery", "-A", "workers"]
STOP_TIMEOUT_S = 15.0


class ProcessStartError(FleetError):
    """Raised when a child process exits or stays unready past its start-up timeout."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL after a grace period); return its exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT_S)
        return self.popen.returncode


def _spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return ManagedProcess(name, popen, log_path)


def start_simulator(
    port: int,
    log_dir: Path,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> ManagedProcess:
    """Start ``agentfleet simulator`` on 127.0.0.1:port and wait until /health returns 200."""
    command = [
        sys.executable,
        "-m",
        "agentfleet",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--jitter-ms",
        str(jitter_ms),
        *(extra_args or []),
    ]
    process = _spawn("simulator", command, env or dict(os.environ), log_dir)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        _check_alive(process)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.stop()
    raise ProcessStartError(
        f"simulator did not respond on port {port} within {READY_TIMEOUT_S:g} s"
    )


def start_worker(
    queue: str,
    env: dict[str, str],
    log_dir: Path,
    concurrency: int = 16,
    name: str | None = None,
    pool: str = "threads",
) -> ManagedProcess:
    """Start ``celery -A workers worker`` on one queue with a ``threads`` or ``gevent`` pool;
    call ``wait_ready`` before relying on it."""
    name = name or queue.replace(".", "-")
    command = [
        *CELERY,
        "worker",
        "-Q",
        queue,
        "--pool",
        pool,
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    return _spawn(name, command, env, log_dir)


def start_beat(env: dict[str, str], log_dir: Path, name: str) -> ManagedProcess:
    """Start ``celery -A workers beat`` with its schedule file in ``log_dir``."""
    command = [
        *CELERY,
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(log_dir / f"{name}-schedule"),
    ]
    return _spawn(name, command, env, log_dir)


def wait_ready(process: ManagedProcess, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait for a Celery worker's "ready." log line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(process)
        if " ready." in process.log_text():
            return
        time.sleep(0.2)
    process.stop()
    raise ProcessStartError(
        f"worker {process.name} not ready after {timeout_s:g} s; see {process.log_path}"
    )


def _check_alive(process: ManagedProcess) -> None:
    if process.popen.poll() is not None:
        tail = "\n".join(process.log_text().splitlines()[-15:])
        raise ProcessStartError(
            f"{process.name} exited with code {process.popen.returncode}; last log lines:\n{tail}"
        )
