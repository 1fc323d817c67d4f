"""httpx clients shared by a worker process's threads, each thread keeping to one client.

httpx's connection pool scans all of its connections on every request, and for each
idle one it counts all of them again, so its CPU cost per request grows with the square
of its size. Several small pools keep hundreds of calls in flight for a fraction of the
CPU that one large pool takes.
"""

import itertools
import math
import threading

import httpx

CONNECTIONS_PER_CLIENT = 32


class ClientPool:
    """``connections`` connections in all, split over clients of at most 32 each."""

    def __init__(self, connections: int, timeout_s: float = 60.0) -> None:
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
