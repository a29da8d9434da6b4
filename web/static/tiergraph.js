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

// Plotly (served from the installed plotly package) with the settings every chart shares.
export function chart(container, data, layout = {}) {
  const base = {margin: {l: 60, r: 20, t: 30, b: 40}, font: {family: "system-ui, sans-serif", size: 12},
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"};
  return window.Plotly.react(container, data, {...base, ...layout},
    {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]});
}

// ---- readiness ----------------------------------------------------------------------------------------------------

// A page calls this with the promises of its first render; when all have settled (shown or failed in place) the
// body carries data-ready="true", which tests and bench/bench_pages.py wait for.
export function whenReady(...renders) {
  return Promise.allSettled(renders).then(() => { document.body.dataset.ready = "true"; });
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
