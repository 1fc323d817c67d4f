"""Errors raised while loading the agent catalog or preparing an agent's job."""


class AgentError(Exception):
    """Base class of every error the agents package raises."""


class CatalogError(AgentError):
    """Raised when the agent catalog file is missing, unreadable or invalid."""


class UnknownAgent(AgentError):
    """Raised when a job names an agent that the catalog does not define."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown agent {name!r}; known agents: {', '.join(known)}")


class InvalidInput(AgentError):
    """Raised when a job's input does not match its agent's input schema."""

    def __init__(self, agent: str, problems: list[str]) -> None:
        self.agent = agent
        self.problems = problems
        super().__init__(f"invalid input for agent {agent!r}: {'; '.join(problems)}")


class InvalidOutput(AgentError):
    """Raised when a model's reply does not match its agent's output schema."""
