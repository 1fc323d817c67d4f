"""State shared by every command: settings with command-line overrides, the ledger, the client."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.settings import Settings
from ledger.db import make_engine, session_factory
from producer import JobClient


@dataclass
class CliContext:
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return Settings(**self.overrides)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def client(self) -> JobClient:
        return JobClient(self.settings, sessions=self.sessions)

    def close(self) -> None:
        """Close the client and engine, if a command created them."""
        if "client" in self.__dict__:
            self.client.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


pass_context = click.make_pass_decorator(CliContext)
