"""Request bodies of the API's POST routes, read with limits.

A body is read whole only up to a size limit (:data:`MAX_COMMAND_BYTES` for statement
commands, :data:`MAX_PLAN_BYTES` for plan documents); a longer one is refused with 413
before it is parsed. A command body must be ``Content-Type: application/json`` (or
``...+json``), UTF-8, one JSON object; numbers are read as ``Decimal`` (never float),
``NaN``/``Infinity`` are refused, and so is nesting deeper than :data:`MAX_DEPTH` (a
100,000-deep array would exhaust the parser's recursion). Every refusal is a
:class:`BadBody` with the HTTP status and a message meant for the sender.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from processors.errors import ComstreamError

MAX_COMMAND_BYTES = 64 * 1024
MAX_PLAN_BYTES = 256 * 1024
MAX_DEPTH = 32

JSON_TYPES = ("application/json",)


class BadBody(ComstreamError):
    """A request body refused before it became a command: ``status`` (400 or 413) and
    a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_limited(request: Any, limit: int) -> bytes:
    """The body of the aiohttp ``request``, at most ``limit`` bytes; :class:`BadBody`
    (413) for a longer one, whether or not it declares its length."""
    length = request.content_length
    if length is not None and length > limit:
        raise BadBody(413, f"the body is {length} bytes; at most {limit} bytes are accepted")
    if not request.can_read_body:
        return b""
    data: bytes = await request.content.read(limit + 1)
    if len(data) > limit:
        raise BadBody(413, f"the body is over {limit} bytes; at most {limit} are accepted")
    return data


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the API accepts")


def json_object(data: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object of a command body (an empty body is ``{}``). Raises
    :class:`BadBody` (400) with a message that names what is wrong."""
    if not data.strip():
        return {}
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype not in JSON_TYPES and not ctype.endswith("+json"):
        raise BadBody(
            400,
            f"the body must be JSON sent as Content-Type: application/json, "
            f"not {ctype or 'no content type'}",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(400, f"the body is not UTF-8 (byte {exc.start})") from None
    if _depth(text) > MAX_DEPTH:
        raise BadBody(400, f"the body nests arrays or objects deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise BadBody(400, "the body nests arrays or objects too deeply") from None
    except ValueError as exc:  # JSONDecodeError, a constant, an int of over 4300 digits
        raise BadBody(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadBody(400, f"the body must be a JSON object, not a {type(value).__name__}")
    return value
