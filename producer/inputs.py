"""Reading job inputs from JSON Lines files, with errors that name the line."""

import json
import sys
from pathlib import Path
from typing import Any

from agents import AgentSpec, InvalidInput, validate_input
from producer.client import JobRequest
from producer.errors import ProducerError


class InputFileError(ProducerError):
    """Raised when a JSONL input file is unreadable or one of its lines is not a valid input."""


def read_job_requests(
    path: Path, agent: AgentSpec, key_field: str | None = None, key_prefix: str = ""
) -> list[JobRequest]:
    """Read one job input per non-blank line and check each against the agent's input schema.

    A path of ``-`` reads standard input. With ``key_field``, ``key_prefix`` plus that
    field of each input becomes the job's idempotency key, so submitting the same file
    twice creates each job once.
    """
    requests = []
    for number, line in _lines(path):
        job_input = _parse_line(path, number, line)
        try:
            validate_input(agent, job_input)
        except InvalidInput as exc:
            raise InputFileError(f"{path} line {number}: {exc}") from None
        key = _key(path, number, job_input, key_field)
        requests.append(JobRequest(job_input, None if key is None else key_prefix + key))
    if not requests:
        raise InputFileError(f"{path}: no job inputs found; write one JSON object per line")
    return requests


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        # utf-8-sig also reads files that start with a byte order mark.
        if str(path) == "-":
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        else:
            text = path.read_text(encoding="utf-8-sig")
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
    if key_field not in job_input:
        raise InputFileError(
            f"{path} line {number}: has no {key_field!r} field, "
            "which --key-field needs in every line"
        )
    value = job_input[key_field]
    if value is None or isinstance(value, (dict, list, bool)) or str(value) == "":
        raise InputFileError(
            f"{path} line {number}: --key-field {key_field!r} must be a non-empty string or "
            f"number, got {json.dumps(value)}"
        )
    return str(value)
