"""httpcore's check of idle pooled connections, made with the system's poll when gevent
has patched the select module."""

import select
import socket
import subprocess
import sys

from workers.providers.pool import _readable_by_native_poll


def test_native_check_finds_readable_sockets() -> None:
    is_readable = _readable_by_native_poll(select.poll)
    ours, peer = socket.socketpair()
    try:
        assert is_readable(ours) is False
        peer.sendall(b"x")
        assert is_readable(ours) is True
        ours.recv(1)
        peer.close()
        assert is_readable(ours) is True
        assert is_readable(None) is True
    finally:
        ours.close()


CHECK = """
import sys
{patch}
import httpcore._backends.sync as sync
before = sync.is_socket_readable
from workers.providers.pool import ClientPool
ClientPool(4).close()
print(sync.is_socket_readable is before)
"""


def _unchanged(patch: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", CHECK.format(patch=patch)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip() == "True"


def test_check_replaced_only_under_gevent() -> None:
    assert _unchanged("") is True
    assert _unchanged("from gevent import monkey; monkey.patch_all()") is False
