"""Headers every answer of the worker's web server carries, for browsers.

- ``Content-Security-Policy``: nothing loads but the worker's own scripts, stylesheets,
  images and API (``'self'``); no inline script or style but the printable statement's
  stylesheet and print button, allowed by their SHA-256 (``comstream.statements``); no
  plugins, no ``<base>``, forms only to the worker, and no framing (``frame-ancestors
  'none'``).
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``: a response is only what its content type says.
- ``Referrer-Policy: no-referrer``: no address (which may hold a sign-in ``?token=``
  until the page's script removes it) leaves in a ``Referer`` header.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiohttp import web as aioweb

from comstream.statements import INLINE_STYLE, PRINT_HANDLER


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src 'self' 'unsafe-hashes' {_sha256(PRINT_HANDLER)}",
        f"style-src 'self' {_sha256(INLINE_STYLE)}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _add_headers(request: aioweb.Request, response: aioweb.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def add_security_headers(web_app: Any) -> None:
    """Make every response of the aiohttp application ``web_app`` (pages, assets, the
    API, the event stream, errors) carry :data:`SECURITY_HEADERS`."""
    web_app.on_response_prepare.append(_add_headers)
