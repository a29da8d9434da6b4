"""Benchmark: how long each page takes to show its data, and then its charts, on the demo base in Debian's Chromium.

    .venv/bin/python bench/bench_pages.py                    # the 5,000-customer demo base of `make demo`
    .venv/bin/python bench/bench_pages.py --customers 20000  # a bigger one

A demo base is built once with `tiergraph demo --no-serve` (seed 7, six month-end evaluations) into
/tmp/tiergraph_bench_pages_<N>/ and reused; `tiergraph serve` runs it in its own process, as `make demo` does.

Two times per visit, from navigation start to the moment the page sets a mark on <body> (read off the page's own
clock by a MutationObserver, so Playwright's polling adds nothing):
- content: body[data-ready=true], set by `whenReady` in web/static/tiergraph.js once every first section (numbers,
  tables, lists) has rendered or shown its error;
- charts: body[data-charts=true], set once every chart of that render is drawn. Plotly (4.8 MB, about a second of
  main thread to start) is loaded only after the content, so charts - content is mostly plotly's start-up. The rule
  editor draws no chart before a preview: its charts time is its content time.
Cold: the first visit in a fresh browser context (empty HTTP cache: every script fetched, plotly.min.js included).
Warm: the median of --repeat more visits in that context (scripts from the HTTP cache, plotly's compiled code cached
by V8 after a visit or two).

The baseline, measured in the same run for the same page, cold and warm the same way: the page with every GraphQL
request answered at once by the page itself with an error (so it renders its error states). It costs what the page
costs without its data: HTML, its scripts, layout; it draws no chart, so plotly is not loaded. The answer is stubbed
by an init script replacing window.fetch for /graphql, not by a Playwright route: Playwright turns the HTTP cache off
in a context with routes, which would make every baseline visit cold. The ratio content / baseline (warm) is what the
data adds; the target is content under a second on the demo base (warm).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-pages-admin-token"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# the times the page set its marks, on its own clock (performance.now(): from navigation start)
MARKS = """
window.__marks = {};
new MutationObserver(() => {
  const d = document.body ? document.body.dataset : {};
  if (d.ready === "true" && window.__marks.content === undefined) window.__marks.content = performance.now();
  if (d.charts === "true" && window.__marks.charts === undefined) window.__marks.charts = performance.now();
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-ready", "data-charts"]});
"""
# the baseline: /graphql answered at once with an error, inside the page (no route: the HTTP cache stays on)
STUB = """
const stubbed = JSON.stringify({data: null, errors: [{message: "baseline", extensions: {code: "BASELINE"}}]});
const realFetch = window.fetch.bind(window);
window.fetch = (input, init) => {
  const url = new URL(typeof input === "string" ? input : input.url, location.href);
  if (url.pathname !== "/graphql") return realFetch(input, init);
  return Promise.resolve(new Response(stubbed, {status: 200, headers: {"Content-Type": "application/json"}}));
};
"""

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_base(customers: int) -> str:
    work = Path(f"/tmp/tiergraph_bench_pages_{customers}")
    url = f"sqlite:///{work / 'demo.db'}"
    if not (work / "ready").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"building the demo base ({customers:,} customers) in {work} ...", flush=True)
        subprocess.run([sys.executable, "-m", "cli", "demo", "--no-serve", "--customers", str(customers), "--seed", "7",
                        "--data-dir", str(work / "data")], cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                       check=True, stdout=subprocess.DEVNULL)
        (work / "ready").touch()
    return url


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = _port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": url, "TIERGRAPH_ADMIN_TOKEN": TOKEN,
                                 "TIERGRAPH_TICK": "off", "TIERGRAPH_WEBHOOKS": "off"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("the server did not start")


def a_lost_customer(base: str) -> str:
    query = '{ customers(first: 1, status: "lost") { edges { node { id } } } }'
    body = httpx.post(f"{base}/graphql", json={"query": query}, timeout=30).json()
    return body["data"]["customers"]["edges"][0]["node"]["id"]


def visit(context, url: str) -> tuple[float, float]:
    """(content ms, charts ms) of one visit."""
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("window.__marks.content !== undefined && window.__marks.charts !== undefined",
                               timeout=120_000)
        marks = page.evaluate("window.__marks")
        return marks["content"], marks["charts"]
    finally:
        page.close()


def new_context(browser, *, stub_api: bool):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(f"localStorage.setItem('tiergraph.token', {json.dumps(TOKEN)});")
    context.add_init_script(MARKS)
    if stub_api:
        context.add_init_script(STUB)
    return context


def measure(browser, url: str, repeat: int, *, stub_api: bool) -> dict[str, float]:
    """Content and charts ms of the cold visit and the median of the warm ones."""
    context = new_context(browser, stub_api=stub_api)
    try:
        cold = visit(context, url)
        warm = [visit(context, url) for _ in range(repeat)]
        return {"content cold": cold[0], "charts cold": cold[1],
                "content warm": statistics.median(w[0] for w in warm),
                "charts warm": statistics.median(w[1] for w in warm)}
    finally:
        context.close()


def screenshots(browser, base: str, pages: dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    context = new_context(browser, stub_api=False)
    try:
        for name, path in pages.items():
            page = context.new_page()
            page.goto(base + path)
            page.wait_for_function("window.__marks.charts !== undefined", timeout=120_000)
            target = folder / f"{name.replace(' ', '-')}.png"
            page.screenshot(path=str(target), full_page=True)
            page.close()
            print(f"saved {target}")
    finally:
        context.close()


COLUMNS = ["content cold", "content warm", "charts cold", "charts warm", "baseline cold", "baseline warm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="also save each page, charts drawn, as DIR/<page>.png (the README's pictures)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("TIERGRAPH_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("Chromium is not installed (Debian: apt-get install chromium)")
    proc, base = serve(demo_base(args.customers))
    try:
        pages = {"overview": "/", "movement": "/movement", "loss": "/loss",
                 "customer": f"/customers/{a_lost_customer(base)}", "rule editor": "/rules"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            print(f"\ndemo base of {args.customers:,} customers, Chromium headless at 1280x800; warm = median of "
                  f"{args.repeat} visits; ratio = content warm / baseline warm; under 1 s: content warm; "
                  f"load average {os.getloadavg()[0]:.1f}\n")
            print("| page         | " + " | ".join(f"{c} ms" for c in COLUMNS) + " | ratio | under 1 s |")
            print("| ------------ | " + " | ".join("-" * (len(c) + 3) for c in COLUMNS) + " | ----- | --------- |")
            for name, path in pages.items():
                shell = measure(browser, base + path, args.repeat, stub_api=True)
                full = measure(browser, base + path, args.repeat, stub_api=False)
                row = {**full, "baseline cold": shell["content cold"], "baseline warm": shell["content warm"]}
                cells = " | ".join(f"{row[c]:{len(c) + 3}.0f}" for c in COLUMNS)
                ratio = row["content warm"] / row["baseline warm"]
                print(f"| {name:<12} | {cells} | {ratio:5.1f} | {'yes' if row['content warm'] < 1000 else 'NO':>9} |",
                      flush=True)
            if args.screenshots:
                screenshots(browser, base, pages, args.screenshots)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
