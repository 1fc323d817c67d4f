"""httpx clients shared by a worker process's threads, each thread keeping to one client.

httpx's connection pool scans all of its connections on every request, and for each
idle one it counts all of them again, so its CPU cost per request grows with the square
of its size. Several small pools keep hundreds of calls in flight for a fraction of the
CPU that one large pool takes.
"""

import itertools
import math
import select
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import httpcore._backends.sync as httpcore_sync
import httpx

CONNECTIONS_PER_CLIENT = 32


def _readable_by_native_poll(poll: Callable[[], Any]) -> Callable[[socket.socket | None], bool]:
    def is_socket_readable(sock: socket.socket | None) -> bool:
        fileno = -1 if sock is None else sock.fileno()
        if fileno < 0:
            return True
        poller = poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))

    return is_socket_readable


def check_idle_connections_without_the_hub() -> None:
    """Make httpcore check its idle connections with the system's poll under gevent.

    Before each request, httpcore polls every idle pooled connection with a zero timeout
    to find closed ones. gevent's poll starts and stops a hub watcher for each check,
    about a sixth of a gevent worker's profile samples with 500 calls in flight. A
    zero-timeout poll never blocks, so the system's poll is safe in a greenlet.

    NOTE: this replaces a name in httpcore's private module ``_backends.sync``. If a
    later httpcore drops that name, the check is left as it is, and so is its cost.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("select"):
        return
    if not hasattr(httpcore_sync, "is_socket_readable"):
        return
    httpcore_sync.is_socket_readable = _readable_by_native_poll(
        monkey.get_original("select", "poll")
    )


class ClientPool:
    """``connections`` connections in all, split over clients of at most 32 each."""

    def __init__(self, connections: int, timeout_s: float = 60.0) -> None:
        check_idle_connections_without_the_hub()
        count = max(1, math.ceil(connections / CONNECTIONS_PER_CLIENT))
        per_client = math.ceil(connections / count)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        self.clients = [
            httpx.Client(limits=limits, timeout=httpx.Timeout(timeout_s)) for _ in range(count)
        ]
        self._next = itertools.count()
        self._local = threading.local()

    def client(self) -> httpx.Client:
        """Return this thread's client; threads are spread over the clients in turn."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self.clients[next(self._next) % len(self.clients)]
            self._local.client = client
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
