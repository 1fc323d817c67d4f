"""The Redis transport's restore of unacknowledged messages on a connection that is gone."""

from typing import Any

import pytest
from kombu import Connection

from agentfleet.fleet import broker_config
from agentfleet.redis_broker import QoS, Transport
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
