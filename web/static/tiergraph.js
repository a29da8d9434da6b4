// What every page shares: the GraphQL call (with the user's token), formatting, small DOM helpers, paged tables,
// charts and the header (customer search, token dialog). Pages import what they need from here.

const TOKEN_KEY = "tiergraph.token";

export class ApiError extends Error {
  constructor(message, code, errors) {
    super(message);
    this.code = code;        // the first error's extensions.code (BAD_ARGUMENT, NOT_FOUND, FORBIDDEN, ...)
    this.errors = errors;    // every GraphQL error as sent
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

// One GraphQL request. Resolves to `data`; rejects with ApiError (the server's message and code) on any error, so a
// page shows what the server said. UNAUTHENTICATED / FORBIDDEN open the token dialog.
export async function gql(query, variables = {}) {
  const headers = {"Content-Type": "application/json", "Accept": "application/json"};
  if (token()) headers["Authorization"] = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch("/graphql", {method: "POST", headers, body: JSON.stringify({query, variables})});
  } catch (err) {
    throw new ApiError(`the server did not answer (${err.message})`, "NETWORK", []);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without JSON`, "BAD_RESPONSE", []);
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = (first.extensions && first.extensions.code) || "ERROR";
    if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") askForToken(first.message);
    throw new ApiError(body.errors.map((e) => e.message).join("; "), code, body.errors);
  }
  return body.data;
}

// ---- formatting -------------------------------------------------------------------------------------------------

const money0 = new Intl.NumberFormat("en-US", {maximumFractionDigits: 0});
const int0 = new Intl.NumberFormat("en-US");

export const fmt = {
  money: (x) => (x === null || x === undefined ? "—" : money0.format(x)),
  int: (x) => (x === null || x === undefined ? "—" : int0.format(x)),
  pct: (x, digits = 1) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`),
  ratio: (x) => (x === null || x === undefined ? "—" : `${x.toFixed(1)}×`),
  num: (x, digits = 2) => (x === null || x === undefined ? "—" : Number(x).toFixed(digits)),
  label: (x) => (x === null || x === undefined ? "none" : String(x)),
};

// ---- dates --------------------------------------------------------------------------------------------------------

export function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

export function addDays(iso, days) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return isoDay(d);
}

export function monthStart(iso) {
  return `${iso.slice(0, 7)}-01`;
}

// ---- DOM ----------------------------------------------------------------------------------------------------------

// el("a", {href: "/x", class: "c"}, "text", child) — attributes starting with "on" become listeners.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function customerLink(customer) {
  if (!customer) return "—";
  return el("a", {href: `/customers/${encodeURIComponent(customer.id)}`}, customer.name || customer.externalId);
}

// A loss episode's how and why in words: LossEpisode {how ruleLine ruleText reason}.
export const LOSS_HOW = {RULE: "rule", BLOCKED: "blocked", MANUAL: "by hand"};

export function lossCause(episode) {
  if (episode.how === "RULE") {
    const text = (episode.ruleText || "").replace(/\s+/g, " ").trim();
    return episode.ruleLine ? `line ${episode.ruleLine}: ${text}` : text;
  }
  if (episode.how === "MANUAL") return episode.reason || "—";
  return "blocked";
}

// Shows what went wrong in place of a section's content (role=alert so screen readers read it).
export function showError(container, err) {
  clear(container).append(el("p", {class: "error", role: "alert"},
    err instanceof ApiError ? `${err.message} (${err.code})` : String(err && err.message ? err.message : err)));
}

export function loading(container, what = "Loading") {
  clear(container).append(el("p", {class: "loading", "aria-live": "polite"}, `${what}…`));
}

// A table: columns = [{label, value: row => node|text, num: bool}], rows = array.
export function table(columns, rows, {caption, empty = "Nothing here."} = {}) {
  if (!rows.length) return el("p", {class: "empty"}, empty);
  const head = el("tr", {}, columns.map((c) => el("th", {scope: "col", class: c.num ? "num" : null}, c.label)));
  const body = rows.map((row) => el("tr", {}, columns.map((c) => el("td", {class: c.num ? "num" : null},
    c.value(row)))));
  return el("table", {}, caption ? el("caption", {}, caption) : null, el("thead", {}, head), el("tbody", {}, body));
}

// A paged list over a Relay connection. fetchPage(after) resolves to the connection ({edges, pageInfo,
// totalCount}); rows are the edges' nodes. Pages go forward with "More" and the list keeps what it showed.
export function pagedTable(container, columns, fetchPage, {caption, empty, pageLabel = "rows"} = {}) {
  clear(container);
  const summary = el("p", {class: "count", "aria-live": "polite"});
  const holder = el("div");
  const more = el("button", {type: "button", class: "more"}, "More");
  container.append(summary, holder, more);
  let rows = [];
  let after = null;
  async function next() {
    more.disabled = true;
    try {
      const conn = await fetchPage(after);
      rows = rows.concat(conn.edges.map((e) => e.node));
      after = conn.pageInfo.endCursor;
      clear(holder).append(table(columns, rows, {caption, empty}));
      const total = conn.totalCount;
      summary.textContent = total === undefined ? `${rows.length} ${pageLabel}` :
        `${fmt.int(rows.length)} of ${fmt.int(total)} ${pageLabel}`;
      more.hidden = !conn.pageInfo.hasNextPage;
    } catch (err) {
      showError(holder, err);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", next);
  return next();
}

// ---- charts -------------------------------------------------------------------------------------------------------

export const TIER_COLOURS = ["#1f4e79", "#2e75b6", "#9dc3e6", "#deebf7", "#c9c9c9", "#a5a5a5"];

// Plotly (4.8 MB, served from the installed plotly package) is no page's script: running it takes about a second of
// the browser's main thread, so it is loaded on demand, once, as an async script. Charts wait until the page's first
// render has settled and been painted (whenReady below), so numbers and tables never wait for the charting library.
const PLOTLY_SRC = "/vendor/plotly.min.js";
let plotlyLoad = null;

// Resolves to window.Plotly, adding <script async src=/vendor/plotly.min.js> on the first call; rejects with an Error
// saying so when the script cannot be loaded (a later call tries again).
export function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoad) {
    plotlyLoad = new Promise((resolve, reject) => {
      const failed = (why) => {
        script.remove();
        plotlyLoad = null;
        reject(new Error(`the charting library ${PLOTLY_SRC} ${why}`));
      };
      const script = el("script", {src: PLOTLY_SRC, async: true});
      script.addEventListener("load", () => (window.Plotly ? resolve(window.Plotly) : failed("did not define Plotly")));
      script.addEventListener("error", () => failed("could not be loaded"));
      document.head.append(script);
    });
  }
  return plotlyLoad;
}

let whenReadyCalled = false;
let firstRenderSettled;
const firstRender = new Promise((resolve) => { firstRenderSettled = resolve; });
// after the first render is on screen (a frame, then a task), or at once for a page that never calls whenReady
const chartsMayStart = firstRender.then(() => new Promise((resolve) => {
  requestAnimationFrame(() => setTimeout(resolve, 0));
  setTimeout(resolve, 100);  // no frame comes in a hidden tab
}));
document.addEventListener("DOMContentLoaded", () => {  // every module has run by now
  if (!whenReadyCalled) firstRenderSettled();
});

const drawing = new Set();          // the draws not finished yet
const latestDraw = new WeakMap();   // container -> token of its latest chart()/unchart(): an older draw gives way
const clickListener = new WeakMap();

const CHART_LAYOUT = {margin: {l: 60, r: 20, t: 30, b: 40}, font: {family: "system-ui, sans-serif", size: 12},
  paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"};
const CHART_CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]};

// Draws (or redraws) a Plotly chart in `container` with the settings every chart shares; until it is drawn the
// container says "drawing chart…". onClick(point, event) on a click on the chart's data (Plotly's plotly_click,
// point = event.points[0]); a redraw replaces the previous handler. Resolves to the container once drawn, or to
// null when it was not: a later chart()/unchart() of the container took over, the container left the page, or
// Plotly could not be loaded (the error is then shown in place). Never rejects.
export function chart(container, data, layout = {}, {config = {}, onClick} = {}) {
  const token = {};
  latestDraw.set(container, token);
  const drawnBefore = container.querySelector(":scope > .plot-container");
  if (!drawnBefore && !container.querySelector(":scope > .chart-note")) {
    clear(container).append(el("p", {class: "chart-note", "aria-live": "polite"}, "drawing chart…"));
  }
  const drawn = (async () => {
    let Plotly;
    try {
      await chartsMayStart;
      Plotly = await plotly();
    } catch (err) {
      if (latestDraw.get(container) === token) showError(container, `the chart could not be drawn: ${err.message}`);
      return null;
    }
    if (latestDraw.get(container) !== token || !container.isConnected) return null;  // replaced meanwhile
    const note = container.querySelector(":scope > .chart-note");
    if (note) note.remove();
    try {
      await Plotly.react(container, data, {...CHART_LAYOUT, ...layout}, {...CHART_CONFIG, ...config});
    } catch (err) {  // a bug of ours or plotly's: said in place and on the console
      console.error(err);
      unchart(container);
      showError(container, err);
      return null;
    }
    const before = clickListener.get(container);
    if (before && container.removeListener) container.removeListener("plotly_click", before);
    clickListener.delete(container);
    if (onClick) {
      const listener = (event) => {
        if (event && event.points && event.points.length) onClick(event.points[0], event);
      };
      container.on("plotly_click", listener);
      clickListener.set(container, listener);
    }
    return container;
  })();
  drawing.add(drawn);
  markCharts();
  drawn.finally(() => {
    drawing.delete(drawn);
    markCharts();
  });
  return drawn;
}

// Removes the container's chart (and a draw still waiting for Plotly) with its listeners; empties the container.
export function unchart(container) {
  latestDraw.set(container, {});
  clickListener.delete(container);
  if (window.Plotly) window.Plotly.purge(container);
  return clear(container);
}

// ---- readiness ----------------------------------------------------------------------------------------------------

// body[data-charts]: "true" once the page is ready and every chart asked for is drawn (or failed in place); "false"
// while one is being drawn after that.
function markCharts() {
  if (document.body.dataset.ready === "true") document.body.dataset.charts = drawing.size ? "false" : "true";
}

// A page calls this once with the promises of its first render (its content: numbers, tables, lists — never a
// chart's promise, since charts wait for this). When all have settled (shown or failed in place) the body carries
// data-ready="true", then charts start and data-charts="true" marks them drawn; tests and bench/bench_pages.py wait
// for these.
export function whenReady(...renders) {
  whenReadyCalled = true;
  return Promise.allSettled(renders).then(() => {
    document.body.dataset.ready = "true";
    markCharts();
    firstRenderSettled();
  });
}

// ---- header: customer search and token dialog ---------------------------------------------------------------------

function askForToken(reason) {
  const dialog = $("#token-dialog");
  if (!dialog || dialog.open) return;
  if (reason) $("#token-reason").textContent = reason;
  $("#token-input").value = token();
  dialog.showModal();
}

function wireHeader() {
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
  }
  $("#find-customer").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#find-customer-id").value.trim();
    if (id) location.href = `/customers/${encodeURIComponent(id)}`;
  });
  $("#token-button").addEventListener("click", () => askForToken());
  $("#token-cancel").addEventListener("click", () => $("#token-dialog").close());
  $("#token-form").addEventListener("submit", () => {
    setToken($("#token-input").value.trim());
    location.reload();
  });
}

wireHeader();
