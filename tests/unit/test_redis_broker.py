"""The Redis transport: restoring unacknowledged messages on a connection that is gone,
and waking a consumer that waits for a free pool slot."""

import threading
import time
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from agentfleet.fleet import broker_config
from agentfleet.redis_broker import Poller, QoS, Transport
from agentfleet.settings import Settings


class ClosedChannel:
    """Channel whose transport lost its client, as kombu leaves it mid-close."""

    do_restore = True

    def conn_or_acquire(self, client: Any = None) -> Any:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def test_restore_on_closed_connection_warns(caplog: pytest.LogCaptureFixture) -> None:
    qos = QoS(ClosedChannel())
    qos._delivered["tag-1"] = object()
    qos.restore_unacked_once()
    assert (
        "broker connection already closed; 1 unacknowledged message(s) will be delivered "
        "again after the visibility timeout"
    ) in caplog.text


def test_redis_broker_uses_this_transport() -> None:
    config = broker_config(Settings(broker_url="redis://127.0.0.1:6379/3"))
    connection = Connection(config["broker_url"], transport=config["broker_transport"])
    try:
        assert type(connection.transport) is Transport
        assert (connection.hostname, connection.port) == ("127.0.0.1", 6379)
        assert connection.virtual_host == "3"
    finally:
        connection.release()


def test_ack_on_closed_connection_warns(caplog: pytest.LogCaptureFixture) -> None:
    qos = QoS(ClosedChannel())
    qos.ack("tag-2")
    qos.reject("tag-3", requeue=True)
    assert "message tag-2 stays unacknowledged" in caplog.text
    assert "message tag-3 stays unacknowledged" in caplog.text


def test_wake_ends_consumer_wait() -> None:
    """A consumer without an event loop waits in ``get``, and ``wake`` ends the wait."""
    poller = Poller()
    ended: list[str] = []

    def wait() -> None:
        try:
            poller.get(callback=None, timeout=60)
        except Empty:
            ended.append("empty")

    waiter = threading.Thread(target=wait, daemon=True)
    try:
        waiter.start()
        while not poller._in_protected_read:
            time.sleep(0.01)
        poller.wake()
        waiter.join(timeout=20)
        assert ended == ["empty"]
        poller.wake()
        assert ended == ["empty"]
    finally:
        poller.close()


def test_wake_before_any_wait_is_ignored() -> None:
    poller = Poller()
    poller.wake()
    assert poller.fds == {}
    poller.close()
