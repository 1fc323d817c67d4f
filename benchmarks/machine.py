"""A description of the machine and the servers a run measured."""

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

PACKAGES = ("celery", "kombu", "redis", "httpx", "sqlalchemy", "psycopg", "uvicorn")


def describe_machine(pg_url: str, redis_url: str) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "redis": _redis_version(redis_url),
        "postgresql": _postgresql_version(pg_url),
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average_at_start": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def _postgresql_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
