"""Send the `opower` library's requests to one base URL (the simulator), without touching the library.

The library builds absolute ``https://<host>/...`` URLs itself (the utility's login host, the Azure
B2C tenant it redirects to, ``eudapi.comed.com``, ``cec.opower.com``) and takes the caller's
``aiohttp.ClientSession``. An aiohttp client middleware rewrites each request's scheme, host and port
to ``base_url`` and keeps everything else: the path and query, and the ``Host`` header (built from the
original URL), which the simulator routes on. Redirects pass through the middleware again, and
``response.real_url`` stays the original URL, so the library sees the hosts it expects.

Only for simulated upstreams: with real credentials no base URL is configured and the session goes
to the utility directly.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from yarl import URL

Middleware = Callable[[ClientRequest, ClientHandlerType], Awaitable[ClientResponse]]


def route_to(base_url: str) -> Middleware:
    """A client middleware sending every https request to ``base_url`` (scheme://host:port)."""
    base = URL(base_url)
    if not base.scheme or not base.host:
        raise ValueError(f"base URL {base_url!r} has no scheme or host")

    async def middleware(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        if request.url.scheme == "https":
            request.url = request.url.with_scheme(base.scheme).with_host(base.host).with_port(base.port)
        return await handler(request)

    return middleware


def session_for(base_url: str | None, timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """The session the library gets: routed to ``base_url`` when one is set, with a cookie jar that
    keeps the login flow's cookies across hosts as a browser would."""
    middlewares = (route_to(base_url),) if base_url else ()
    return aiohttp.ClientSession(middlewares=middlewares, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 timeout=aiohttp.ClientTimeout(total=timeout_s))
