"""A local LLM provider for demos, tests and benchmarks; it counts every call it serves."""

from simulator.app import SimulatorConfig, create_app

__all__ = ["SimulatorConfig", "create_app"]
