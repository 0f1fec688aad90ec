"""The HTTP face of every exporter: /metrics from pre-rendered bytes, a landing page, /-/healthy."""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import jinja2
from aiohttp import web

from servicekit.collector import Target
from servicekit.exposition import Exposition, wants_gzip, wants_openmetrics

LANDING = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>{{ name }}</title></head>
<body><h1>{{ name }}</h1><p>{{ description }}</p>
<ul>{% for path, what in links %}<li><a href="{{ path.lstrip('/') }}">{{ path }}</a>{{ " - " + what if what }}</li>
{% endfor %}<li><a href="metrics">/metrics</a></li><li><a href="-/healthy">/-/healthy</a></li></ul>
{% if targets %}<table><tr><th>target</th><th>endpoint</th><th>status</th><th>last error</th></tr>
{% for target in targets %}{% for endpoint, poller in target.pollers.items() %}
<tr><td>{{ target.name }}</td><td>{{ endpoint }}</td><td>{{ "up" if poller.health.up else "down" }}</td>
<td>{{ poller.health.last_error or "" }}</td></tr>{% endfor %}{% endfor %}
</table>{% elif polls %}<p>No targets configured.</p>{% endif %}</body></html>
""")


def metrics_app(name: str, description: str, exposition: Exposition,
                targets: Callable[[], Iterable[Target]] | None = None,
                links: Sequence[tuple[str, str]] = ()) -> web.Application:
    """The aiohttp app; scrapes read `exposition.current` and never wait on an upstream. The landing page
    links `links` ((path, what) pairs, e.g. a component's API) and, for an exporter (`targets` given), shows
    each target's pollers."""

    async def metrics(request: web.Request) -> web.Response:
        gzipped = wants_gzip(request.headers.get("Accept-Encoding", ""))
        body, content_type = exposition.current.body(wants_openmetrics(request.headers.get("Accept", "")), gzipped)
        headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def landing(request: web.Request) -> web.Response:
        page = LANDING.render(name=name, description=description, links=links, polls=targets is not None,
                              targets=list(targets()) if targets is not None else [])
        return web.Response(text=page, content_type="text/html")

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", landing)
    app.router.add_get("/-/healthy", healthy)
    return app
