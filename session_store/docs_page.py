"""/api/docs: the store's OpenAPI description (/api/openapi.json) rendered by Swagger UI, every route with
its parameters and answers, and "Try it out" against the store itself.

Swagger UI's files come from the installed `swagger-ui-py` package (its static distribution), served
by the store under /api/docs/static: the page loads nothing from any other host (no CDN, and
`validatorUrl: null` keeps Swagger UI from sending the description to its public validator). Paths
are relative, so the page also works behind a reverse proxy that mounts the store under a prefix.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>session-store API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""
INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  docExpansion: "list"
});
"""


def swagger_ui_files() -> Path:
    """The static Swagger UI distribution the `swagger-ui-py` package ships."""
    from swagger_ui.utils import SWAGGER_UI_PY_ROOT
    return SWAGGER_UI_PY_ROOT / "static"


def add_docs_routes(app: web.Application) -> None:
    """/api/docs (the page), /api/docs/init.js (its set-up) and /api/docs/static/ (Swagger UI's files)."""
    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text=PAGE, content_type="text/html")

    async def init(request: web.Request) -> web.StreamResponse:
        return web.Response(text=INIT, content_type="application/javascript")

    async def slash(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("../docs")   # relative paths on the page assume no trailing slash

    app.router.add_get("/api/docs", page)
    app.router.add_get("/api/docs/", slash)
    app.router.add_get("/api/docs/init.js", init)
    app.router.add_static("/api/docs/static", swagger_ui_files())
