// Loss: the customers lost in a period by tier at loss, the list of them (paged, filtered), the reasons lost against
// retained, win-back by rep and the monthly revenue bridge as a waterfall whose bars list their customers.
// The period, filters and bridge month live in the URL, so a view can be shared and the back button works.
import {$, addDays, chart, clear, customerLink, el, fmt, gql, isoDay, loading, LOSS_HOW, lossCause, monthStart,
  pagedTable, showError, table, TIER_COLOURS, unchart, whenReady} from "/static/tiergraph.js";

const PAGE_SIZE = 25;
const REASONS_CHARTED = 8;
const STEPS = [  // the bridge's bars between the base and the month, in its order; sign: how each moves the total
  {category: "NEW", label: "New", sign: 1},
  {category: "RETURNING", label: "Returning", sign: 1},
  {category: "EXPANSION", label: "Expansion", sign: 1},
  {category: "CONTRACTION", label: "Contraction", sign: -1},
  {category: "STOPPED_LOST", label: "Stopped: lost", sign: -1},
  {category: "STOPPED_QUIET", label: "Stopped: quiet", sign: -1},
];
const compact = new Intl.NumberFormat("en-US", {notation: "compact", maximumFractionDigits: 1});
const cents = new Intl.NumberFormat("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});

const state = {from: null, to: null, how: "", tier: "", month: null, compare: "PREVIOUS_MONTH"};
let today = null;          // the data's today: the newest evaluation date
const generation = {};     // per section, the latest load; an older answer arriving late is dropped

// ---- dates and the URL --------------------------------------------------------------------------------------------

function addMonths(iso, months) {  // the first day of the month `months` after iso's month
  const d = new Date(`${monthStart(iso)}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + months);
  return isoDay(d);
}

function preset(name, day) {
  const month = monthStart(day);
  if (name === "this-month") return [month, day];
  if (name === "last-month") return [addMonths(day, -1), addDays(month, -1)];
  if (name === "last-quarter") {
    const m = Number(day.slice(5, 7));
    const quarter = addMonths(day, -((m - 1) % 3));
    return [addMonths(quarter, -3), addDays(quarter, -1)];
  }
  if (name === "last-12-months") {  // the same day a year earlier is out, today is in
    const d = new Date(`${day}T00:00:00Z`);
    d.setUTCFullYear(d.getUTCFullYear() - 1);
    return [addDays(isoDay(d), 1), day];
  }
  throw new Error(`unknown preset ${name}`);
}

// The last month that lies whole in the period (or the one before `to`'s month when none does).
function lastCompleteMonth(to) {
  const end = today && to > today ? today : to;
  return addDays(end, 1).endsWith("-01") ? end.slice(0, 7) : addMonths(end, -1).slice(0, 7);
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  const iso = /^\d{4}-\d{2}-\d{2}$/;
  state.from = iso.test(q.get("from") || "") ? q.get("from") : null;
  state.to = iso.test(q.get("to") || "") ? q.get("to") : null;
  state.how = LOSS_HOW[q.get("how")] ? q.get("how") : "";
  state.tier = q.get("tier") || "";
  state.month = /^\d{4}-\d{2}$/.test(q.get("month") || "") ? q.get("month") : null;
  state.compare = q.get("compare") === "SAME_MONTH_LAST_YEAR" ? "SAME_MONTH_LAST_YEAR" : "PREVIOUS_MONTH";
}

function writeUrl(push = true) {
  const q = new URLSearchParams();
  q.set("from", state.from);
  q.set("to", state.to);
  if (state.how) q.set("how", state.how);
  if (state.tier) q.set("tier", state.tier);
  if (state.month) q.set("month", state.month);
  if (state.compare !== "PREVIOUS_MONTH") q.set("compare", state.compare);
  const url = `${location.pathname}?${q}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function showControls() {
  $("#from").value = state.from;
  $("#to").value = state.to;
  $("#how-filter").value = state.how;
  $("#bridge-month").value = state.month;
  $("#bridge-compare").value = state.compare;
  $("#period-label").textContent = `${state.from} to ${state.to}`;
  if (today) {
    $("#today-note").textContent = `The data's today: ${today}. A later "to" means today.`;
    $("#bridge-month").max = today.slice(0, 7);
  }
}

// ---- small helpers ------------------------------------------------------------------------------------------------

function fresh(section) {
  generation[section] = (generation[section] || 0) + 1;
  const mine = generation[section];
  return () => generation[section] === mine;
}

// A chart (drawn when plotly is ready: the section's numbers do not wait for it), or a sentence in its place when
// there is nothing to draw.
function plotOrSay(container, hasData, say, draw) {
  if (!hasData) {
    unchart(container).append(el("p", {class: "empty"}, say));
    return;
  }
  const said = container.querySelector(":scope > p.empty");
  if (said) said.remove();
  draw();
}

function tierLabel(tier) {
  return tier === null || tier === undefined ? "none" : tier;
}

function sum(rows, key) {
  return rows.reduce((s, r) => s + (r[key] || 0), 0);
}

// ---- lost by tier -------------------------------------------------------------------------------------------------

async function loadSummary() {
  const current = fresh("summary");
  loading($("#tier-table"));
  clear($("#kpis"));
  try {
    const data = await gql(`query LossSummary($from: Date, $to: Date) {
      lossSummary(from: $from, to: $to) {
        tierAtLoss customers episodes revenueLost marginLost blocked manual rule
        withOverdueComplaints withLateDeliveries reactivated
      }
    }`, {from: state.from, to: state.to});
    if (!current()) return;
    showSummary(data.lossSummary);
  } catch (err) {
    if (!current()) return;
    showError($("#tier-table"), err);
    unchart($("#tier-chart"));
  }
}

function showSummary(rows) {
  const marginKnown = rows.every((r) => r.marginLost !== null);
  const kpi = (value, name) => el("div", {class: "kpi"}, el("div", {class: "value"}, value),
    el("div", {class: "name"}, name));
  clear($("#kpis")).append(
    kpi(fmt.int(sum(rows, "episodes")), "loss episodes"),
    kpi(fmt.money(sum(rows, "revenueLost")), "revenue lost (12 months before each loss)"),
    kpi(marginKnown ? fmt.money(sum(rows, "marginLost")) : "—", "margin lost"),
    kpi(fmt.int(sum(rows, "reactivated")), "reactivated since"));

  const columns = [
    {label: "Tier at loss", value: (r) => tierLabel(r.tierAtLoss)},
    {label: "Customers", num: true, value: (r) => fmt.int(r.customers)},
    {label: "Episodes", num: true, value: (r) => fmt.int(r.episodes)},
    {label: "Revenue lost", num: true, value: (r) => fmt.money(r.revenueLost)},
    {label: "Margin lost", num: true, value: (r) => fmt.money(r.marginLost)},
    {label: "By rule", num: true, value: (r) => fmt.int(r.rule)},
    {label: "Blocked", num: true, value: (r) => fmt.int(r.blocked)},
    {label: "By hand", num: true, value: (r) => fmt.int(r.manual)},
    {label: "Overdue complaints", num: true, value: (r) => fmt.int(r.withOverdueComplaints)},
    {label: "Late deliveries", num: true, value: (r) => fmt.int(r.withLateDeliveries)},
    {label: "Reactivated", num: true, value: (r) => fmt.int(r.reactivated)},
  ];
  const holder = clear($("#tier-table"));
  const tableNode = table(columns, rows, {caption: `Loss episodes from ${state.from} to ${state.to}`,
    empty: "No customer was lost in this period."});
  tableNode.id = "tier-summary";
  if (rows.length) {
    const total = {tierAtLoss: "all", customers: null, episodes: sum(rows, "episodes"),
      revenueLost: sum(rows, "revenueLost"), marginLost: marginKnown ? sum(rows, "marginLost") : null};
    for (const key of ["rule", "blocked", "manual", "withOverdueComplaints", "withLateDeliveries", "reactivated"]) {
      total[key] = sum(rows, key);
    }
    tableNode.append(el("tfoot", {}, el("tr", {}, columns.map((c, i) => el("td", {class: c.num ? "num" : null},
      i === 0 ? "All tiers" : c.label === "Customers" ? "" : c.value(total))))));
  }
  holder.append(tableNode);
  if (rows.some((r) => r.tierAtLoss === null)) {
    holder.append(el("p", {class: "note"}, "none: no tier was in force on the loss date (e.g. before the first ",
      "evaluation). Customers are counted once per tier; episodes once each."));
  }

  const tiers = rows.map((r) => r.tierAtLoss).filter((t) => t !== null);
  const select = $("#tier-filter");
  clear(select).append(el("option", {value: ""}, "any"), ...tiers.map((t) => el("option", {value: t}, t)));
  if (state.tier && !tiers.includes(state.tier)) select.append(el("option", {value: state.tier}, state.tier));
  select.value = state.tier;

  const container = $("#tier-chart");
  const labels = rows.map((r) => tierLabel(r.tierAtLoss));
  plotOrSay(container, rows.length > 0, "No customer was lost in this period.", () => drawTiers(container, rows,
    labels));
}

function drawTiers(container, rows, labels) {
  chart(container, [
    {type: "bar", name: "customers", x: labels, y: rows.map((r) => r.customers), offsetgroup: 1,
      marker: {color: TIER_COLOURS[0]}, hovertemplate: "%{x}: %{y} customers<extra></extra>"},
    {type: "bar", name: "revenue lost", x: labels, y: rows.map((r) => r.revenueLost), offsetgroup: 2, yaxis: "y2",
      marker: {color: TIER_COLOURS[2]}, hovertemplate: "%{x}: %{y:,.0f} revenue lost<extra></extra>"},
  ], {barmode: "group", xaxis: {type: "category"}, yaxis: {title: {text: "customers"}, rangemode: "tozero"},
    yaxis2: {title: {text: "revenue lost"}, overlaying: "y", side: "right", rangemode: "tozero", showgrid: false},
    legend: {orientation: "h", y: 1.18}, margin: {l: 60, r: 70, t: 40, b: 40}},
  {onClick: (point) => {  // a tier's bar lists its losses
    const tier = rows[point.pointNumber] && rows[point.pointNumber].tierAtLoss;
    if (tier === null || tier === undefined) return;
    state.tier = tier;
    $("#tier-filter").value = tier;
    writeUrl();
    loadLost();
    $("#lost-title").scrollIntoView({block: "start"});
  }});
}

// ---- the lost customers -------------------------------------------------------------------------------------------

const LOST_COLUMNS = [
  {label: "Customer", value: (e) => customerLink(e.customer)},
  {label: "Lost on", value: (e) => e.lostOn},
  {label: "How", value: (e) => LOSS_HOW[e.how] || e.how},
  {label: "Rule / reason", value: (e) => lossCause(e)},
  {label: "Tier at loss", value: (e) => fmt.label(e.tierAtLoss)},
  {label: "Revenue lost", num: true, value: (e) => fmt.money(e.revenueLost)},
  {label: "Margin lost", num: true, value: (e) => fmt.money(e.marginLost)},
  {label: "Reactivated on", value: (e) => e.reactivatedOn || "still lost"},
];

function loadLost() {
  const container = $("#lost-list");
  const variables = {from: state.from, to: state.to, how: state.how || null, tier: state.tier || null};
  return pagedTable(container, LOST_COLUMNS, async (after) => {
    const data = await gql(`query Lost($from: Date, $to: Date, $how: LossHow, $tier: String, $after: String) {
      lostCustomers(from: $from, to: $to, how: $how, tierAtLoss: $tier, first: ${PAGE_SIZE}, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { lostOn how ruleLine ruleText reason tierAtLoss revenueLost marginLost reactivatedOn
                       customer { id name externalId } } }
      }
    }`, {...variables, after});
    return data.lostCustomers;
  }, {caption: "Loss episodes of the period (a customer lost twice is listed twice)",
    empty: "No loss episode matches.", pageLabel: "loss episodes"});
}

// ---- reasons and win-back -----------------------------------------------------------------------------------------

async function loadReasons() {
  const current = fresh("reasons");
  const holder = $("#reasons-table");
  loading(holder);
  try {
    const data = await gql(`query Reasons($from: Date, $to: Date) {
      lossReasons(from: $from, to: $to) {
        from to lostCustomers retainedCustomers
        reasons { reason kind value lostShare retainedShare lostCount retainedCount ratio summary }
      }
    }`, {from: state.from, to: state.to});
    if (!current()) return;
    showReasons(data.lossReasons);
  } catch (err) {
    if (!current()) return;
    showError(holder, err);
  }
}

function byRatio(a, b) {
  if (a.ratio === null && b.ratio === null) return 0;
  if (a.ratio === null) return 1;
  if (b.ratio === null) return -1;
  return b.ratio - a.ratio;
}

function showReasons(answer) {
  if (answer.to !== state.to) {
    $("#period-label").textContent = `${state.from} to ${answer.to} (the data's today)`;
  }
  const reasons = [...answer.reasons].sort(byRatio);
  const holder = clear($("#reasons-table"));
  holder.append(el("p", {class: "note"}, `${fmt.int(answer.lostCustomers)} customers lost in the period against `,
    `${fmt.int(answer.retainedCustomers)} retained over it; each share is of its own group (12 months before the `,
    "loss, or before the period's end for the retained)."));
  const tableNode = table([
    {label: "Reason", value: (r) => el("span", {title: r.summary}, r.reason)},
    {label: "Lost", num: true, value: (r) => `${fmt.pct(r.lostShare)} (${fmt.int(r.lostCount)})`},
    {label: "Retained", num: true, value: (r) => `${fmt.pct(r.retainedShare)} (${fmt.int(r.retainedCount)})`},
    {label: "Ratio", num: true, value: (r) => fmt.ratio(r.ratio)},
  ], reasons, {caption: "Highest ratio first: how much more often lost customers had the reason",
    empty: "No complaints or late deliveries in either group."});
  tableNode.id = "reasons";
  holder.append(tableNode);

  const top = reasons.slice(0, REASONS_CHARTED);
  const container = $("#reasons-chart");
  const names = top.map((r) => r.reason.replace(/^late deliveries because of /, "late: ")
    .replace(/^complaints about /, "complaint: "));
  plotOrSay(container, top.length > 0, "No reasons to compare.", () => chart(container, [
    {type: "bar", name: "lost", x: names, y: top.map((r) => r.lostShare), marker: {color: "#b3261e"},
      customdata: top.map((r) => fmt.ratio(r.ratio)),
      hovertemplate: "%{x}: %{y:.1%} of lost (ratio %{customdata})<extra></extra>"},
    {type: "bar", name: "retained", x: names, y: top.map((r) => r.retainedShare), marker: {color: TIER_COLOURS[1]},
      hovertemplate: "%{x}: %{y:.1%} of retained<extra></extra>"},
  ], {barmode: "group", yaxis: {tickformat: ".0%", rangemode: "tozero"}, legend: {orientation: "h", y: 1.12},
    xaxis: {type: "category", tickangle: -25, automargin: true}}));
}

async function loadWinBack() {
  const current = fresh("winback");
  const holder = $("#winback");
  loading(holder);
  try {
    const data = await gql(`query WinBack($from: Date, $to: Date) {
      winBack(from: $from, to: $to) {
        reps { lostCustomers withAttempt withoutAttempt reactivatedWithin90DaysOfAttempt attempts
               rep { externalId name } }
      }
    }`, {from: state.from, to: state.to});
    if (!current()) return;
    const reps = data.winBack.reps;
    const tableNode = table([
      {label: "Rep", value: (r) => (r.rep ? `${r.rep.name} (${r.rep.externalId})` : "no owner")},
      {label: "Lost", num: true, value: (r) => fmt.int(r.lostCustomers)},
      {label: "With an attempt", num: true, value: (r) => fmt.int(r.withAttempt)},
      {label: "Without", num: true, value: (r) => fmt.int(r.withoutAttempt)},
      {label: "Attempts", num: true, value: (r) => fmt.int(r.attempts)},
      {label: "Won back ≤ 90 d", num: true, value: (r) => fmt.int(r.reactivatedWithin90DaysOfAttempt)},
    ], reps, {caption: "Per owner rep, the customers lost in the period; won back: reactivated at most 90 days "
      + "after an attempt",
      empty: "Nobody was lost in this period."});
    tableNode.id = "winback-table";
    clear(holder).append(tableNode);
  } catch (err) {
    if (!current()) return;
    showError(holder, err);
  }
}

// ---- revenue bridge -----------------------------------------------------------------------------------------------

const BRIDGE_QUERY = `query Bridge($month: String!, $compareTo: BridgeComparison!) {
  revenueBridge(month: $month, compareTo: $compareTo) {
    month baseMonth total baseTotal unchanged categories { category customers revenue margin }
  }
}`;

async function loadBridge() {
  const current = fresh("bridge");
  const holder = $("#bridge-table");
  loading(holder);
  clear($("#bridge-customers"));
  try {
    const data = await gql(BRIDGE_QUERY, {month: state.month, compareTo: state.compare});
    if (!current()) return;
    showBridge(data.revenueBridge);
  } catch (err) {
    if (!current()) return;
    showError(holder, err);
    unchart($("#bridge-chart"));
  }
}

function showBridge(bridge) {
  const byCategory = Object.fromEntries(bridge.categories.map((c) => [c.category, c]));
  const steps = STEPS.map((s) => ({...s, ...(byCategory[s.category] || {customers: 0, revenue: 0, margin: 0})}));
  const baseLabel = `${bridge.baseMonth} (base)`;
  const x = [baseLabel, ...steps.map((s) => s.label), bridge.month];
  const y = [bridge.baseTotal, ...steps.map((s) => s.sign * s.revenue), bridge.total];

  const rows = [{kind: "base", label: baseLabel, amount: bridge.baseTotal},
    ...steps.map((s) => ({kind: "step", label: s.label, step: s, amount: s.sign * s.revenue})),
    {kind: "total", label: `${bridge.month} total`, amount: bridge.total}];
  const tableNode = table([
    {label: "Step", value: (r) => r.label},
    {label: "Customers", num: true, value: (r) => (r.kind === "step" ? fmt.int(r.step.customers) : "")},
    {label: "Revenue", num: true, value: (r) => el("span", {class: "amount"}, cents.format(r.amount || 0))},
    {label: "Margin", num: true, value: (r) => (r.kind === "step" ? fmt.money(r.step.margin === null ? null :
      r.step.sign * r.step.margin || 0) : "")},
    {label: "Customers of the step", value: (r) => (r.kind === "step" ? el("button", {type: "button",
      class: "list-step", "data-category": r.step.category, onclick: (ev) => showStep(bridge, r.step, ev.target)},
    `List ${fmt.int(r.step.customers)}`) : "")},
  ], rows, {caption: `${bridge.month} against ${bridge.baseMonth}: base + steps = month total`});
  tableNode.id = "bridge-steps";
  rows.forEach((r, i) => {
    const tr = tableNode.tBodies[0].rows[i];
    tr.dataset.kind = r.kind;
    if (r.kind === "step") tr.dataset.category = r.step.category;
  });
  clear($("#bridge-table")).append(tableNode,
    el("p", {class: "note"}, `${fmt.int(bridge.unchanged)} customers ordered the same in both months (in no step).`));

  chart($("#bridge-chart"), [{
    type: "waterfall", x, y, measure: ["absolute", ...steps.map(() => "relative"), "total"],
    text: y.map((v) => compact.format(v || 0)), textposition: "outside", cliponaxis: false,
    connector: {line: {color: "#a5a5a5"}},
    increasing: {marker: {color: "#1e7b34"}}, decreasing: {marker: {color: "#b3261e"}},
    totals: {marker: {color: TIER_COLOURS[0]}},
    hovertemplate: "%{x}: %{y:,.0f}<extra></extra>",
  }], {showlegend: false, yaxis: {rangemode: "tozero"},
    xaxis: {type: "category", tickangle: -20, automargin: true}},
  {onClick: (point) => {
    const index = point.pointNumber - 1;  // bar 0 is the base, the last the month's total
    if (index >= 0 && index < steps.length) showStep(bridge, steps[index]);
  }});
}

function showStep(bridge, step, fromButton = null) {
  for (const tr of $("#bridge-steps").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.category === step.category);
  }
  const holder = clear($("#bridge-customers"));
  const title = el("h3", {tabindex: "-1", id: "bridge-step-title"},
    `${step.label}: ${fmt.int(step.customers)} customers (${bridge.baseMonth} → ${bridge.month})`);
  const list = el("div", {id: "bridge-step-list"});
  holder.append(title, list);
  const query = `query Step($month: String!, $compareTo: BridgeComparison!, $only: [BridgeCategory!], $after: String) {
    revenueBridge(month: $month, compareTo: $compareTo) {
      categories(only: $only) {
        customerList(first: ${PAGE_SIZE}, after: $after) {
          totalCount pageInfo { hasNextPage endCursor }
          edges { node { revenue baseRevenue effect customer { id name externalId } } }
        }
      }
    }
  }`;
  pagedTable(list, [
    {label: "Customer", value: (n) => customerLink(n.customer)},
    {label: bridge.baseMonth, num: true, value: (n) => fmt.money(n.baseRevenue)},
    {label: bridge.month, num: true, value: (n) => fmt.money(n.revenue)},
    {label: "Effect", num: true, value: (n) => fmt.money(n.effect)},
  ], async (after) => {
    const data = await gql(query, {month: bridge.month, compareTo: state.compare, only: [step.category], after});
    return data.revenueBridge.categories[0].customerList;
  }, {caption: `Customers of ${step.label}, the biggest effect first`, empty: "No customer in this step.",
    pageLabel: "customers"});
  if (fromButton) title.focus();
  else title.scrollIntoView({block: "nearest"});
}

// ---- wiring -------------------------------------------------------------------------------------------------------

// Every section of the period, each with its own request so each shows as soon as it is answered.
function loadPeriod() {
  showControls();
  return [loadSummary(), loadLost(), loadReasons(), loadWinBack()];
}

async function start() {
  readUrl();
  try {
    const data = await gql("{ evaluationDates }");
    today = data.evaluationDates.length ? data.evaluationDates[0] : null;
  } catch (err) {
    showError($("#kpis"), err);
  }
  const day = today || isoDay(new Date());
  if (!state.from || !state.to) [state.from, state.to] = preset("last-quarter", day);
  if (!state.month) state.month = lastCompleteMonth(state.to);
  writeUrl(false);
  return [...loadPeriod(), loadBridge()];
}

$("#period-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const from = $("#from").value;
  const to = $("#to").value;
  if (!from || !to) return;
  const periodMonthChanged = state.to !== to;
  state.from = from;
  state.to = to;
  if (periodMonthChanged) state.month = lastCompleteMonth(to);
  writeUrl();
  loadPeriod();
  if (periodMonthChanged) loadBridge();
});

for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => {
    [state.from, state.to] = preset(button.dataset.preset, today || isoDay(new Date()));
    state.month = lastCompleteMonth(state.to);
    writeUrl();
    loadPeriod();
    loadBridge();
  });
}

$("#how-filter").addEventListener("change", (event) => {
  state.how = event.target.value;
  writeUrl();
  loadLost();
});

$("#tier-filter").addEventListener("change", (event) => {
  state.tier = event.target.value;
  writeUrl();
  loadLost();
});

$("#bridge-month").addEventListener("change", (event) => {
  if (!/^\d{4}-\d{2}$/.test(event.target.value)) return;
  state.month = event.target.value;
  writeUrl();
  loadBridge();
});

$("#bridge-compare").addEventListener("change", (event) => {
  state.compare = event.target.value;
  writeUrl();
  loadBridge();
});

window.addEventListener("popstate", () => {
  readUrl();
  if (!state.from || !state.to) return;
  if (!state.month) state.month = lastCompleteMonth(state.to);
  loadPeriod();
  loadBridge();
});

whenReady(start().then((renders) => Promise.allSettled(renders)));
