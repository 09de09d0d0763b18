"""The command line's client of the worker's HTTP API.

Every command that asks the worker (``leaderboard``, ``statement``, ``report``,
``reconcile``, ``audit``, ``payroll``) goes through :func:`call`: it sends the bearer
token (``--token`` or ``$COMSTREAM_TOKEN``) and turns an HTTP error into a message that
says what to do: for a 401 how to get and set a token, otherwise the server's own
message from the JSON body (``{"error": ...}``) instead of "HTTP Error 400: Bad Request".
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from .errors import ComstreamError

TOKEN_ENV = "COMSTREAM_TOKEN"

HOW_TO_GET_A_TOKEN = (
    "`comstream users add --name NAME --role admin|manager|finance|rep` prints a new "
    "user's token once; `./run demo` prints a sign-in link for each of its users, "
    "ending in #token=TOKEN"
)


class WorkerUnavailable(ComstreamError):
    """The worker's HTTP API did not answer, or answered with an error (:class:`ApiError`)."""


class ApiError(WorkerUnavailable):
    """The worker answered with an HTTP error: ``status``, the server's ``message`` and
    machine ``code`` (empty when the body had none); ``str()`` says what to do."""

    def __init__(self, status: int, message: str, code: str = "", advice: str = "") -> None:
        super().__init__(advice or message)
        self.status = status
        self.message = message
        self.code = code


def token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def server_message(body: bytes) -> tuple[str, str]:
    """(message, code) of an error body ``{"error": ..., "code": ...}``; empty strings
    when the body is not such JSON."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    message = doc.get("error") or doc.get("message") or ""
    return str(message), str(doc.get("code") or "")


def advice(status: int, message: str, url: str, token_sent: bool) -> str:
    """What the person at the terminal reads for an HTTP error ``status`` with the
    server's ``message`` (or its reason phrase)."""
    if status == HTTPStatus.UNAUTHORIZED:
        if token_sent:
            return (
                f"the worker refused the token ({message}): ${TOKEN_ENV} (or --token) must be "
                f"the token of an active user; {HOW_TO_GET_A_TOKEN}"
            )
        return (
            f"the worker asks for a sign-in token ({message}): set {TOKEN_ENV}=TOKEN "
            f"(or pass --token TOKEN where the command has it); {HOW_TO_GET_A_TOKEN}"
        )
    if status == HTTPStatus.FORBIDDEN:
        return f"not allowed: {message} (use the token of a user who may: ${TOKEN_ENV})"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return f"{message} (HTTP {status} {phrase} from {url})"


def call(
    base_url: str,
    path: str,
    token: str | None = None,
    body: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> Any:
    """GET (or POST ``body`` as JSON) ``base_url + path`` with the bearer token (``token``,
    else ``$COMSTREAM_TOKEN``) and return the parsed JSON answer, decimals exact.

    Raises :class:`ApiError` for an HTTP error, :class:`WorkerUnavailable` when the
    worker does not answer or the answer is not JSON."""
    token = token or token_from_env()
    url = base_url + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:  # the worker's API asks for one once users exist (docs/payouts.md)
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read()
        except OSError:
            raw = b""
        message, code = server_message(raw)
        message = message or str(exc.reason)
        raise ApiError(
            exc.code, message, code, advice(exc.code, message, url, bool(token))
        ) from None
    except urllib.error.URLError as exc:
        raise WorkerUnavailable(
            f"{url}: {exc.reason} (is the worker running? `comstream worker` starts one; "
            "COMSTREAM_WEB_HOST/COMSTREAM_WEB_PORT say where it listens)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise WorkerUnavailable(f"{url}: {exc}") from exc
