"""Run the simulator under uvicorn."""

import logging
import socket

import uvicorn

from simulator.app import SimulatorConfig, create_app


def serve(host: str, port: int, config: SimulatorConfig, log_level: str = "warning") -> None:
    """Serve until interrupted; ``log_level`` is uvicorn's (debug, info, warning, error)."""
    logging.getLogger(__name__).info("simulator listening on http://%s:%d", host, port)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=False)


def listen_error(host: str, port: int) -> tuple[str, str] | None:
    """Return the option at fault and why the simulator could not listen on
    ``host``:``port``, or None if it can.

    The probe sets SO_REUSEADDR as uvicorn does, so a port left in TIME_WAIT by an
    earlier run counts as free, while a port that another process listens on does not.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return (
            "--host",
            f"cannot resolve {host!r}: {exc.strerror}; give a name or address of this machine",
        )
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return "--port", (
                f"cannot listen on {host}:{port}: {exc.strerror}; stop the process that uses "
                "it or choose another port"
            )
    return None
