"""HTTP hardening shared by every page of the web channel, mounted ones
included: strict security headers on every response, same-origin checks for
state-changing requests, and a guard that answers failures without logging
who connected or what they sent."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("confidant.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
        "interest-cohort=(), browsing-topics=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Nothing the chat shows should survive in the browser's disk cache.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: runs for pages, errors and WebSocket upgrades alike."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    # Do not advertise the server software.
    response.headers.pop("Server", None)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, the form browsers send in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(listen: str, port: int, public_url: str | None) -> set[str]:
    """Origins whose pages may post to us or open our WebSockets."""
    host = listen.rsplit(":", 1)[0] or "127.0.0.1"
    origins = {f"http://{host}:{port}"}
    if host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        origins |= {f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
    if public_url:
        origins.add(origin_of(public_url))
    return origins


def same_origin(request: web.Request, origins: Iterable[str], strict: bool) -> bool:
    """True when the request comes from one of our own pages.

    Browsers always send ``Origin`` on POST and WebSocket requests, so a missing
    one is refused too.  Without a configured public URL (``strict`` False) the
    page's own host is accepted as well, so a LAN deployment still works.
    """
    origin = request.headers.get("Origin")
    if not origin:
        return False
    origin = origin.lower()
    if origin in origins:
        return True
    return not strict and origin == f"{request.scheme}://{request.host}".lower()


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unexpected failures ourselves: aiohttp's own error log would
    write the remote address, and tracebacks can quote personal data."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.error("web: request failed (%s)", type(exc).__name__)
        return web.Response(
            status=500,
            text="Something went wrong. Nothing is lost; please try again later.",
        )
