"""Reading job inputs from JSON Lines files, with errors that name the line."""

import json
from pathlib import Path
from typing import Any

from agents import AgentSpec, InvalidInput, validate_input
from producer.client import JobRequest
from producer.errors import ProducerError


class InputFileError(ProducerError):
    """Raised when a JSONL input file is unreadable or one of its lines is not a valid input."""


def read_job_requests(
    path: Path, agent: AgentSpec, key_field: str | None = None
) -> list[JobRequest]:
    """Read one job input per non-blank line and check each against the agent's input schema.

    With ``key_field``, that field of each input becomes the job's idempotency key, so
    submitting the same file twice creates each job once.
    """
    requests = []
    for number, line in _lines(path):
        job_input = _parse_line(path, number, line)
        try:
            validate_input(agent, job_input)
        except InvalidInput as exc:
            raise InputFileError(f"{path} line {number}: {exc}") from None
        requests.append(JobRequest(job_input, _key(path, number, job_input, key_field)))
    if not requests:
        raise InputFileError(f"{path}: no job inputs found; write one JSON object per line")
    return requests


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory; give a .jsonl file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read it: {exc.strerror}") from None
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _parse_line(path: Path, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{path} line {number}: invalid JSON: {exc.msg} at column {exc.colno}"
        ) from None


def _key(path: Path, number: int, job_input: dict[str, Any], key_field: str | None) -> str | None:
    if key_field is None:
        return None
    value = job_input.get(key_field)
    if value is None or isinstance(value, (dict, list)) or str(value) == "":
        raise InputFileError(
            f"{path} line {number}: --key-field {key_field!r} needs a non-empty string or "
            f"number in every line, got {value!r}"
        )
    return str(value)
