// Movement: customers moving between tiers (or statuses) from one evaluation date to another, or from the active
// rule set to a candidate (previewRules). The Sankey, the flow table and the flow's customer list come from
// movement_flow.js (the rule editor shows its preview with the same code).

import {$, clear, el, fmt, gql, loading, showError, unchart, whenReady} from "/static/tiergraph.js";
import {showFlows, stayed} from "/static/movement_flow.js";

const CANDIDATE_KEY = "tiergraph.candidateRules";
const PAGE = 25;

const CUSTOMERS = "totalCount pageInfo { hasNextPage endCursor } edges { node { revenue customer { id name externalId } } }";

const MOVEMENT = `query Movement($from: Date!, $to: Date!, $kind: MoveKind!, $withTiers: Boolean!,
    $withDates: Boolean!) {
  evaluationDates @include(if: $withDates)
  tiers: valueSummary @include(if: $withTiers) { tier }
  movement(from: $from, to: $to, kind: $kind) { from to kind customers flows { old new customers revenue } }
}`;

// The API lists a flow's customers per flow; the one asked for is picked out by (old, new).
const FLOW_CUSTOMERS = `query FlowCustomers($from: Date!, $to: Date!, $kind: MoveKind!, $old: String, $new: String,
    $first: Int!, $after: String) {
  movement(from: $from, to: $to, kind: $kind) {
    flow(old: $old, new: $new) { customerList(first: $first, after: $after) { ${CUSTOMERS} } } }
}`;

const PREVIEW = `query Preview($source: String!) {
  tiers: valueSummary { tier }
  previewRules(source: $source) { asOf customers changedTiers moves { kind old new customers revenue } }
}`;

const PREVIEW_MOVERS = `query PreviewMovers($source: String!, $kind: MoveKind!, $old: String, $new: String, $first: Int!,
    $after: String) {
  previewRules(source: $source) { moverList(kind: $kind, old: $old, new: $new, first: $first, after: $after) { ${CUSTOMERS} } }
}`;

const form = $("#movement-controls");
const controls = {mode: $("#mode"), kind: $("#kind"), from: $("#from"), to: $("#to")};
const candidate = {box: $("#candidate"), text: $("#candidate-text"), button: $("#preview")};
const out = {error: $("#movement-error"), summary: $("#movement-summary"), chart: $("#flow-chart"),
  table: $("#flow-table"), list: $("#flow-list")};
let evaluationDates = null;

function fromUrl() {
  const q = new URLSearchParams(location.search);
  return {
    mode: q.get("mode") === "candidate" ? "candidate" : "dates",
    kind: (q.get("kind") || "TIER").toUpperCase() === "STATUS" ? "STATUS" : "TIER",
    from: q.get("from"), to: q.get("to"),
  };
}

function toUrl(state) {
  const url = new URL(location.href);
  url.search = "";
  if (state.mode === "candidate") url.searchParams.set("mode", "candidate");
  url.searchParams.set("kind", state.kind);
  if (state.mode === "dates") {
    url.searchParams.set("from", state.from);
    url.searchParams.set("to", state.to);
  }
  return url;
}

function fillDates(select, dates, chosen) {
  clear(select);
  for (const day of dates) select.append(el("option", {value: day}, day));
  if (chosen && !dates.includes(chosen)) select.append(el("option", {value: chosen}, `${chosen} (not evaluated)`));
  select.value = chosen;
}

function showMode(mode) {
  form.dataset.mode = mode;
  candidate.box.hidden = mode !== "candidate";
  controls.mode.value = mode;
}

function resetOutput() {
  clear(out.error);
  clear(out.summary);
  clear(out.table);
  clear(out.list);
  unchart(out.chart);
  delete out.chart.dataset.flows;
}

function render(flows, {oldName, newName, order, summary, fetchCustomers}) {
  out.summary.textContent = summary;
  showFlows(out, flows, {oldName, newName, order, fetchCustomers});  // the Sankey follows when plotly is ready
}

async function loadDates(state) {
  const kind = state.kind;
  const data = await gql(MOVEMENT, {from: state.from, to: state.to, kind, withTiers: kind === "TIER",
    withDates: evaluationDates === null});
  if (data.evaluationDates) showDates(data.evaluationDates, state);
  const m = data.movement;
  const flows = m.flows;
  const sum = (keep) => flows.filter(keep).reduce((s, f) => s + f.customers, 0);
  const what = kind === "TIER" ? "tier" : "status";
  render(flows, {
    oldName: m.from, newName: m.to, order: (data.tiers || []).map((t) => t.tier),
    summary: `${fmt.int(m.customers)} customers by ${m.to}, ${fmt.int(sum((f) => f.old !== null))} of them ` +
      `with a ${what} on ${m.from}: ${fmt.int(sum((f) => f.old !== null && !stayed(f)))} changed ${what}, ` +
      `${fmt.int(sum((f) => f.old === null))} had none then (new since).`,
    fetchCustomers: async (flow, after) => {
      const page = await gql(FLOW_CUSTOMERS, {from: m.from, to: m.to, kind, old: flow.old, new: flow.new,
        first: PAGE, after});
      const found = page.movement.flow;
      if (!found) throw new Error(`the flow ${flow.old} → ${flow.new} is gone: reload the page`);
      return found.customerList;
    },
  });
}

async function loadCandidate(state) {
  const source = candidate.text.value;
  if (!source.trim()) {
    out.summary.textContent = "Write or paste a rule set above (or send one from the rule editor), then preview.";
    return;
  }
  sessionStorage.setItem(CANDIDATE_KEY, source);
  const kind = state.kind;
  const data = await gql(PREVIEW, {source});
  const p = data.previewRules;
  const flows = p.moves.filter((m) => m.kind === kind.toLowerCase());
  const moved = flows.filter((f) => !stayed(f)).reduce((s, f) => s + f.customers, 0);
  const what = kind === "TIER" ? "tier" : "status";
  render(flows, {
    oldName: "active rules", newName: "candidate", order: data.tiers.map((t) => t.tier),
    summary: `As of ${p.asOf}: ${fmt.int(p.customers)} customers; ${fmt.int(moved)} would change ${what} ` +
      "under the candidate.",
    fetchCustomers: async (flow, after) => (await gql(PREVIEW_MOVERS, {source, kind, old: flow.old, new: flow.new,
      first: PAGE, after})).previewRules.moverList,
  });
}

// The pickers offer the evaluated days; a date missing from the URL is the oldest (from) or newest (to) one.
function showDates(dates, state) {
  evaluationDates = dates;
  state.from = state.from || dates[dates.length - 1] || "";
  state.to = state.to || dates[0] || "";
  fillDates(controls.from, dates, state.from);
  fillDates(controls.to, dates, state.to);
  if (state.mode === "dates" && state.from && state.to) history.replaceState(null, "", toUrl(state));
}

const DATES = "query { evaluationDates }";

async function load() {
  const state = fromUrl();
  document.body.dataset.loaded = "";
  showMode(state.mode);
  controls.kind.value = state.kind;
  resetOutput();
  loading(out.table);
  try {
    // dates in the URL: the movement query brings the evaluated days along (one request)
    if (evaluationDates === null && !(state.mode === "dates" && state.from && state.to)) {
      showDates((await gql(DATES)).evaluationDates, state);
    } else if (evaluationDates !== null) {
      showDates(evaluationDates, state);
    }
    clear(out.table);
    if (state.mode === "candidate") await loadCandidate(state);
    else if (!state.from || !state.to) out.summary.textContent = "Nothing has been evaluated yet.";
    else await loadDates(state);
    document.body.dataset.loaded = JSON.stringify(state);
  } catch (err) {
    clear(out.table);
    showError(out.error, err);
    if (evaluationDates === null) {  // the pickers still offer the evaluated days, so a bad link can be corrected
      try {
        showDates((await gql(DATES)).evaluationDates, state);
      } catch { /* the error shown says why */ }
    }
    document.body.dataset.loaded = "error";
  }
}

function navigate() {
  const state = {mode: controls.mode.value, kind: controls.kind.value, from: controls.from.value,
    to: controls.to.value};
  history.pushState(null, "", toUrl(state));
  load();
}

for (const select of Object.values(controls)) select.addEventListener("change", navigate);
form.addEventListener("submit", (event) => event.preventDefault());
candidate.button.addEventListener("click", () => {
  if (fromUrl().mode !== "candidate") navigate();
  else load();
});
window.addEventListener("popstate", load);

candidate.text.value = sessionStorage.getItem(CANDIDATE_KEY) || "";
whenReady(load());
