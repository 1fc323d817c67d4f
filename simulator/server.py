"""Run the simulator under uvicorn."""

import logging

import uvicorn

from simulator.app import SimulatorConfig, create_app


def serve(host: str, port: int, config: SimulatorConfig, log_level: str = "warning") -> None:
    """Serve until interrupted; ``log_level`` is uvicorn's (debug, info, warning, error)."""
    logging.getLogger(__name__).info("simulator listening on http://%s:%d", host, port)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=False)
