"""Third-party browser assets, served from the Python packages that ship them (no CDN, no npm at install time).

- plotly (the charting library; its Python package carries plotly.min.js): pyramids, Sankey, waterfall.
- graphene-django-graphiql-static (a package that carries GraphiQL's browser bundle: GraphiQL 3, React 18,
  graphql-ws and the explorer plugin; we read its files only, Django is neither needed nor imported).

Only the files named here are served: an allow-list, so no other file of those packages is reachable.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

__all__ = ["ASSETS", "asset_path", "serve_vendor"]

_GRAPHIQL = ("graphene_django_graphiql_static", "static/graphene_django_graphiql_static")

# public name -> (package, directory inside the package, file name)
ASSETS: dict[str, tuple[str, str, str]] = {
    "plotly.min.js": ("plotly", "package_data", "plotly.min.js"),
    "graphiql.min.js": (*_GRAPHIQL, "graphiql.min.js"),
    "graphiql.min.css": (*_GRAPHIQL, "graphiql.min.css"),
    "graphiql-explorer.css": (*_GRAPHIQL, "style.css"),
    "graphiql-explorer.umd.js": (*_GRAPHIQL, "graphiql-plugin-explorer.umd.js"),
    "react.production.min.js": (*_GRAPHIQL, "react.production.min.js"),
    "react-dom.production.min.js": (*_GRAPHIQL, "react-dom.production.min.js"),
    "graphql-ws.min.js": (*_GRAPHIQL, "graphql-ws.min.js"),
}


def asset_path(name: str) -> Path | None:
    """Where the installed package keeps the asset `name`, or None (unknown name, package missing)."""
    entry = ASSETS.get(name)
    if entry is None:
        return None
    package, directory, file = entry
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / directory / file
    return path if path.is_file() else None


async def serve_vendor(request: Request) -> Response:
    path = asset_path(request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    # the files change only with an upgrade of their package, so browsers may keep them for a day
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
