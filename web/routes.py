"""The routes of the pages: each page is the layout around its body, plus its script; assets are static files.

Pages carry no data: their scripts ask the GraphQL API (with the token the user gives, when the server wants one).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Template

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles

from web.vendor import serve_vendor

__all__ = ["PAGES", "page_routes", "graphiql_html"]

HERE = Path(__file__).parent
PAGE_DIR = HERE / "pages"

# path -> (page name: its body file and script, title, extra scripts in order). Plotly is none of them: it takes about
# a second of the browser's main thread to start, so web/static/tiergraph.js loads it once the page's data is shown.
PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "/": ("overview", "Overview", ()),
    "/movement": ("movement", "Movement", ()),
    "/loss": ("loss", "Loss", ()),
    "/customers/{id:path}": ("customer", "Customer", ()),
    "/rules": ("rules", "Rule editor", ()),
}


@lru_cache(maxsize=None)
def render_page(name: str, title: str, scripts: tuple[str, ...]) -> str:
    layout = Template((PAGE_DIR / "layout.html").read_text(encoding="utf-8"))
    tags = [f'<script src="{src}"></script>' for src in scripts]
    tags.append(f'<script type="module" src="/static/{name}.js"></script>')
    return layout.substitute(title=title, page=name, head="", body=(PAGE_DIR / f"{name}.html").read_text("utf-8"),
                             scripts="\n  ".join(tags))


def _page(name: str, title: str, scripts: tuple[str, ...]):
    async def endpoint(_: Request) -> HTMLResponse:
        return HTMLResponse(render_page(name, title, scripts))

    return endpoint


@lru_cache(maxsize=None)
def graphiql_html() -> str:
    return (PAGE_DIR / "graphiql.html").read_text(encoding="utf-8")


def page_routes() -> list:
    """The page routes, /static (this package's scripts and styles) and /vendor (installed packages' assets).
    Assets are compressed: plotly.min.js is 4.8 MB as a file and about 1.4 MB on the wire."""
    vendor = GZipMiddleware(Router([Route("/{name}", serve_vendor)]), minimum_size=1024)
    static = GZipMiddleware(StaticFiles(packages=[("web", "static")]), minimum_size=1024)
    routes: list = [Route(path, _page(name, title, scripts), methods=["GET"])
                    for path, (name, title, scripts) in PAGES.items()]
    routes += [Mount("/static", app=static, name="static"), Mount("/vendor", app=vendor, name="vendor")]
    return routes
