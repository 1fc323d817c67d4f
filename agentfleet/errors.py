"""Turn the errors a user can cause into one-line messages instead of tracebacks."""

import difflib
import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from agentfleet.settings import AgentOverride, ProviderSettings, RateLimit
from agents import AgentError
from ledger.errors import LedgerError
from producer.errors import ProducerError


class FleetError(Exception):
    """Base class of errors of the fleet's own processes: the demo and child processes."""


USER_ERRORS = (AgentError, LedgerError, ProducerError, FleetError)


def describe(exc: BaseException, database_url: str | None) -> str | None:
    """Return a message for an error a user can fix, or None for a bug."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "invalid settings: " + "; ".join(_setting_problem(error) for error in exc.errors())
    if isinstance(exc, SettingsError):
        return _json_setting_problem(exc)
    if isinstance(exc, (OperationalError, ProgrammingError)):
        return _database_problem(exc, database_url)
    return None


def _json_setting_problem(exc: SettingsError) -> str:
    match = re.search(r'field "(\w+)"', str(exc))
    name = f"AGENTFLEET_{match.group(1).upper()}" if match else "a JSON setting"
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return (
            f"invalid settings: {name} is not valid JSON: {cause.msg} at line {cause.lineno} "
            f"column {cause.colno}"
        )
    return f"invalid settings: {name} is not valid JSON"


# Pydantic error types for a number that is out of range or not a number. Their message names
# the limit or the kind of number, so the error adds only the value given.
NUMBER_ERROR_TYPES = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "int_parsing",
        "float_parsing",
    }
)

# Settings whose values are objects with fixed keys, by the model of those objects.
NESTED_SETTINGS: dict[str, type[BaseModel]] = {
    "agent_overrides": AgentOverride,
    "providers": ProviderSettings,
    "rate_limits": RateLimit,
}


def _setting_problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field, *path = (str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden" and field in NESTED_SETTINGS and path:
        message = _unknown_key(path[-1], NESTED_SETTINGS[field])
    if error["type"] == "bool_parsing":
        message = f"{error.get('input')!r} is not true or false; set true or false"
    elif error["type"] in NUMBER_ERROR_TYPES:
        message = f"{error.get('input')!r} is not allowed; {message[0].lower()}{message[1:]}"
    name = f"AGENTFLEET_{field.upper()}"
    if all(re.fullmatch(r"\w+", part) for part in path):
        # Nested values are set as AGENTFLEET_FIELD__KEY__NAME.
        name += "".join(f"__{part.upper()}" for part in path)
    else:
        name += "".join(f"[{part!r}]" for part in path)
    return f"{name}: {message}"


def _unknown_key(key: str, model: type[BaseModel]) -> str:
    known = list(model.model_fields)
    close = difflib.get_close_matches(key.lower(), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}; the keys are {', '.join(known)}{hint}"


def _database_problem(exc: OperationalError | ProgrammingError, database_url: str | None) -> str:
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    where = _redact(database_url) if database_url else "the database"
    if "no such table" in detail or ("does not exist" in detail and "relation" in detail):
        return f"the ledger at {where} has no tables yet; run 'agentfleet db upgrade' first"
    return f"database error at {where}: {detail}"


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
