// One customer: who it is, its tier and status with the rules behind them, its revenue per month, its value at the
// last evaluations, the history of its tier and status with causes, complaints, deliveries and loss episodes.
// The path holds a global id (as the API issues) or the customer's own external id.
import {$, ApiError, chart, clear, el, fmt, gql, loading, LOSS_HOW, lossCause, pagedTable, showError, table,
  TIER_COLOURS, whenReady} from "/static/tiergraph.js";

const VALUE_DATES = 6;
const LIST_SIZE = 10;
const HISTORY_SIZE = 50;

const requested = decodeURIComponent(location.pathname.replace(/^\/customers\//, ""));

// A global id is base64 of "Customer:<external id>"; anything else is taken as an external id.
function isGlobalId(id) {
  try {
    return atob(id).startsWith("Customer:");
  } catch {
    return false;
  }
}

const COMPLAINT_FIELDS = `totalCount pageInfo { hasNextPage endCursor }
  edges { node { externalId openedAt dueAt resolvedAt category cost open overdue } }`;
const DELIVERY_FIELDS = `totalCount pageInfo { hasNextPage endCursor }
  edges { node { externalId promisedAt deliveredAt delayReason cost late } }`;
const CUSTOMER_FIELDS = `
  id externalId name region industry size seasonal blockedFrom createdAt
  owner { name externalId email }
  tier { name line rule since explanation }
  status { name line rule since explanation }
  tags { name }
  evaluation { asOf ruleVersion explanation upcoming }
  monthlyRevenue(months: 24) { month revenue margin orders }
  lossHistory { lostOn how ruleLine ruleText reason reactivatedOn reactivationNote lastOrderAt tierAtLoss
                revenueLost marginLost complaints { count overdue } deliveries { count late } }
  complaints(first: ${LIST_SIZE}) { ${COMPLAINT_FIELDS} }
  deliveries(first: ${LIST_SIZE}) { ${DELIVERY_FIELDS} }`;

// ---- header: who, tier and status ---------------------------------------------------------------------------------

function notFound(message) {
  document.title = "Customer not found · Tiergraph";
  $("#customer-title").textContent = "Customer not found";
  clear($("#customer-facts"));
  clear($("#customer-message")).append(
    el("p", {class: "error", role: "alert"}, `No customer has the id or external id “${requested}”.`,
      message ? ` (${message})` : ""),
    el("p", {}, "Check the id, or find the customer from the ", el("a", {href: "/"}, "overview"), " or the ",
      el("a", {href: "/loss"}, "loss page"), "."));
}

function showHeader(c) {
  document.title = `${c.name} · Tiergraph`;
  $("#customer-title").textContent = c.name;
  const facts = [`external id ${c.externalId}`, `region ${fmt.label(c.region)}`,
    c.owner ? `owner ${c.owner.name} (${c.owner.externalId})` : "no owner", `customer since ${c.createdAt}`];
  if (c.industry) facts.push(c.industry);
  if (c.seasonal) facts.push("seasonal");
  if (c.blockedFrom) facts.push(`blocked from ${c.blockedFrom}`);
  $("#customer-facts").textContent = facts.join(" · ");

  const assignment = (label, a, cls) => [
    el("dt", {}, label),
    el("dd", {id: `${label}-assignment`},
      a ? [el("span", {class: `pill ${cls ? cls(a.name) : ""}`, "data-value": a.name}, a.name),
        a.since ? ` since ${a.since}` : "",
        el("div", {class: "note"}, a.explanation || (a.rule ? `line ${a.line}: ${a.rule}` : ""))]
        : el("span", {class: "note"}, "not evaluated yet")),
  ];
  clear($("#assignments")).append(
    ...assignment("tier", c.tier),
    ...assignment("status", c.status, (name) => (name === "lost" ? "lost" : name === "active" ? "ok" : "")),
    el("dt", {}, "tags"),
    el("dd", {}, c.tags.length ? c.tags.map((t) => [el("span", {class: "pill"}, t.name), " "]) : "none"));

  const why = clear($("#why"));
  if (!c.evaluation) {
    why.append(el("p", {class: "note"}, "Not evaluated yet."));
    return;
  }
  const upcoming = new Set(c.evaluation.upcoming);
  why.append(
    el("p", {class: "note"}, `Evaluated as of ${c.evaluation.asOf}` +
      (c.evaluation.ruleVersion ? ` with rule set version ${c.evaluation.ruleVersion}` : "") + "."),
    el("ul", {class: "lines", id: "explanation"},
      c.evaluation.explanation.filter((line) => !upcoming.has(line)).map((line) => el("li", {}, line))),
    el("h3", {}, "If nothing changes"),
    c.evaluation.upcoming.length
      ? el("ul", {class: "lines", id: "upcoming"}, c.evaluation.upcoming.map((line) => el("li", {}, line)))
      : el("p", {class: "note", id: "upcoming"}, "Nothing changes by itself."));
}

// ---- revenue per month --------------------------------------------------------------------------------------------

function showMonthlyRevenue(months) {
  const container = $("#revenue-chart");
  const x = months.map((m) => m.month);
  chart(container, [  // drawn when plotly is ready; the table below does not wait for it
    {type: "bar", name: "revenue", x, y: months.map((m) => m.revenue), marker: {color: TIER_COLOURS[0]},
      hovertemplate: "%{x}: %{y:,.0f} revenue<extra></extra>"},
    {type: "bar", name: "margin", x, y: months.map((m) => m.margin), marker: {color: TIER_COLOURS[2]},
      hovertemplate: "%{x}: %{y:,.0f} margin<extra></extra>"},
  ], {barmode: "group", xaxis: {type: "category", tickangle: -45, automargin: true}, yaxis: {rangemode: "tozero"},
    legend: {orientation: "h", y: 1.12}});
  const tableNode = table([
    {label: "Month", value: (m) => m.month},
    {label: "Orders", num: true, value: (m) => fmt.int(m.orders)},
    {label: "Revenue", num: true, value: (m) => fmt.money(m.revenue)},
    {label: "Margin", num: true, value: (m) => (m.margin === null ? "unknown" : fmt.money(m.margin))},
  ], [...months].reverse(), {
    caption: "Order amounts per calendar month, newest first (margin unknown when an order's is)",
    empty: "No months."});
  tableNode.id = "monthly-revenue";
  clear($("#revenue-table")).append(tableNode);
}

// ---- value at the last evaluations --------------------------------------------------------------------------------

function showValues(values) {
  const rows = values.filter((v) => v !== null);
  const holder = clear($("#value-table"));
  const container = $("#value-chart");
  if (!rows.length) {
    holder.append(el("p", {class: "empty"}, "No value scores yet (run `tiergraph evaluate`)."));
    return;
  }
  const x = rows.map((v) => v.asOf);
  chart(container, [  // drawn when plotly is ready; the table below does not wait for it
    {type: "scatter", mode: "lines+markers", name: "profit 12m", x, y: rows.map((v) => v.profit12m),
      line: {color: TIER_COLOURS[0]}},
    {type: "scatter", mode: "lines+markers", name: "CLV", x, y: rows.map((v) => v.clv), line: {color: TIER_COLOURS[1]}},
    {type: "scatter", mode: "lines+markers", name: "P(alive)", x, y: rows.map((v) => v.pAlive), yaxis: "y2",
      line: {color: "#b3261e", dash: "dot"}},
  ], {xaxis: {type: "category"}, yaxis: {title: {text: "amount"}},
    yaxis2: {title: {text: "P(alive)"}, overlaying: "y", side: "right", range: [0, 1], dtick: 0.25, tickformat: ".0%",
      showgrid: false},
    legend: {orientation: "h", y: 1.12}, margin: {l: 60, r: 60, t: 30, b: 40}});
  const tableNode = table([
    {label: "As of", value: (v) => v.asOf},
    {label: "Revenue 12m", num: true, value: (v) => fmt.money(v.revenue12m)},
    {label: "Profit 12m", num: true, value: (v) => fmt.money(v.profit12m)},
    {label: "CLV", num: true, value: (v) => fmt.money(v.clv)},
    {label: "P(alive)", num: true, value: (v) => (v.pAlive === null
      ? el("span", {title: v.modelUnavailableReason || ""}, "—") : fmt.pct(v.pAlive))},
  ], [...rows].reverse(), {caption: "Newest first; profit is margin minus cost to serve"});
  tableNode.id = "value-history";
  holder.append(tableNode);
}

// ---- tier and status history --------------------------------------------------------------------------------------

function cause(event) {
  const c = event.cause;
  if (!c) return "—";
  if (c.kind === "NEW_DATA" && c.recordKind) {
    return `new ${c.recordKind}${c.recordExternalId ? ` ${c.recordExternalId}` : ""}`;
  }
  if (c.kind === "RULES" && c.ruleSetVersion) return `rules version ${c.ruleSetVersion}`;
  return {TIME: "time passed", CUTOFFS: "cut-offs moved", MANUAL: "by hand", NEW_DATA: "new data"}[c.kind] || c.kind;
}

const HISTORY_FIELDS = `endCursor hasMore events { kind oldValue newValue asOf effectiveOn exact ruleLine ruleText
  cause { kind recordKind recordExternalId ruleSetVersion } }`;

const HISTORY_COLUMNS = [
  {label: "Effective", value: (e) => (!e.effectiveOn ? "—"
    : e.exact === false ? `${e.effectiveOn} (at evaluation)` : e.effectiveOn)},
  {label: "What", value: (e) => e.kind},
  {label: "Change", value: (e) => `${fmt.label(e.oldValue)} → ${fmt.label(e.newValue)}`},
  {label: "Cause", value: (e) => cause(e)},
  {label: "Rule", value: (e) => (e.ruleLine ? `line ${e.ruleLine}: ${(e.ruleText || "").replace(/\s+/g, " ")}` : "—")},
  {label: "Recorded by the evaluation of", value: (e) => e.asOf},
];

function historyList(id, first) {
  const container = clear($("#history"));
  const summary = el("p", {class: "count", "aria-live": "polite"});
  const holder = el("div");
  const more = el("button", {type: "button", class: "more", hidden: true}, "More");
  container.append(summary, holder, more);
  let events = [];
  let after = null;
  function show(page) {
    events = events.concat(page.events);
    after = page.endCursor;
    const tableNode = table(HISTORY_COLUMNS, events, {caption: "Oldest first",
      empty: "No tier or status change recorded (the first evaluation's values are not changes)."});
    tableNode.id = "changes";
    clear(holder).append(tableNode);
    summary.textContent = `${fmt.int(events.length)} changes${page.hasMore ? " so far" : ""}`;
    more.hidden = !page.hasMore;
  }
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const data = await gql(`query More($id: String!, $after: String) {
        tierChanges(customer: $id, kinds: ["tier", "status"], first: ${HISTORY_SIZE}, after: $after) {
          ${HISTORY_FIELDS}
        }
      }`, {id, after});
      show(data.tierChanges);
    } catch (err) {
      showError(holder, err);
    } finally {
      more.disabled = false;
    }
  });
  show(first);
}

// ---- complaints, deliveries, loss history -------------------------------------------------------------------------

function pill(text, cls) {
  return el("span", {class: `pill ${cls}`}, text);
}

function complaintState(c) {
  if (c.open) return c.overdue ? pill("open, overdue", "overdue") : pill("open", "open");
  return c.overdue ? pill(`resolved late`, "late") : pill("resolved", "ok");
}

function deliveryState(d) {
  if (!d.deliveredAt) return d.late ? pill("not delivered, late", "late") : pill("on its way", "open");
  return d.late ? pill("late", "late") : pill("on time", "ok");
}

// A paged list whose first page came with the customer; later pages ask for more of the same connection.
function connectionList(container, columns, firstPage, field, fields, id, options) {
  let initial = firstPage;
  return pagedTable(container, columns, async (after) => {
    if (initial && after === null) {
      const page = initial;
      initial = null;
      return page;
    }
    const data = await gql(`query More($id: ID!, $after: String) {
      customer(id: $id) { ${field}(first: ${LIST_SIZE}, after: $after) { ${fields} } }
    }`, {id, after});
    return data.customer[field];
  }, options);
}

// The paged lists and the loss history; resolves when both lists show their first page.
function showLists(c) {
  const complaints = connectionList($("#complaints"), [
    {label: "Complaint", value: (x) => x.externalId},
    {label: "Opened", value: (x) => x.openedAt},
    {label: "Due", value: (x) => x.dueAt || "—"},
    {label: "Resolved", value: (x) => x.resolvedAt || "—"},
    {label: "Category", value: (x) => fmt.label(x.category)},
    {label: "State", value: complaintState},
    {label: "Cost", num: true, value: (x) => fmt.money(x.cost)},
  ], c.complaints, "complaints", COMPLAINT_FIELDS, c.id,
  {caption: "Newest first", empty: "No complaints.", pageLabel: "complaints"});
  const deliveries = connectionList($("#deliveries"), [
    {label: "Delivery", value: (x) => x.externalId},
    {label: "Promised", value: (x) => x.promisedAt},
    {label: "Delivered", value: (x) => x.deliveredAt || "—"},
    {label: "State", value: deliveryState},
    {label: "Delay reason", value: (x) => x.delayReason || (x.late ? "none given" : "")},
  ], c.deliveries, "deliveries", DELIVERY_FIELDS, c.id,
  {caption: "By promised date, newest first", empty: "No deliveries.", pageLabel: "deliveries"});

  const losses = c.lossHistory;
  const tableNode = table([
    {label: "Lost on", value: (e) => e.lostOn},
    {label: "How", value: (e) => LOSS_HOW[e.how] || e.how},
    {label: "Rule / reason", value: lossCause},
    {label: "Tier at loss", value: (e) => fmt.label(e.tierAtLoss)},
    {label: "Last order", value: (e) => e.lastOrderAt || "—"},
    {label: "Revenue lost", num: true, value: (e) => fmt.money(e.revenueLost)},
    {label: "Margin lost", num: true, value: (e) => fmt.money(e.marginLost)},
    {label: "Overdue complaints", num: true,
      value: (e) => `${fmt.int(e.complaints.overdue)} of ${fmt.int(e.complaints.count)}`},
    {label: "Late deliveries", num: true,
      value: (e) => `${fmt.int(e.deliveries.late)} of ${fmt.int(e.deliveries.count)}`},
    {label: "Reactivated on", value: (e) => (!e.reactivatedOn ? "still lost"
      : `${e.reactivatedOn}${e.reactivationNote ? ` (${e.reactivationNote})` : ""}`)},
  ], losses, {caption: "Newest first; complaints and deliveries of the 12 months before each loss",
    empty: "Never lost."});
  tableNode.id = "loss-episodes";
  clear($("#loss-history")).append(tableNode);
  return Promise.allSettled([complaints, deliveries]);
}

// ---- loading ------------------------------------------------------------------------------------------------------

async function loadHistory(c, dates) {
  loading($("#history"));
  loading($("#value-table"));
  const picked = dates.slice(0, VALUE_DATES);
  const declared = picked.map((_, i) => `$d${i}: Date`).join(" ");
  const aliases = picked.map((_, i) => `v${i}: value(asOf: $d${i}) {
    asOf revenue12m profit12m clv pAlive modelUnavailableReason }`).join("\n");
  const variables = {id: c.id, ref: c.id};
  picked.forEach((d, i) => { variables[`d${i}`] = d; });
  try {
    const data = await gql(`query History($id: ID!, $ref: String! ${declared}) {
      customer(id: $id) { id ${aliases} }
      tierChanges(customer: $ref, kinds: ["tier", "status"], first: ${HISTORY_SIZE}) { ${HISTORY_FIELDS} }
    }`, variables);
    historyList(c.id, data.tierChanges);
    showValues(picked.map((_, i) => data.customer[`v${i}`]).reverse());  // oldest first
  } catch (err) {
    showError($("#history"), err);
    showError($("#value-table"), err);
  }
}

async function start() {
  if (!requested) {
    notFound("");
    return;
  }
  const global = isGlobalId(requested);
  let data;
  try {
    data = await gql(global
      ? `query Customer($id: ID!) { evaluationDates customer(id: $id) { ${CUSTOMER_FIELDS} } }`
      : `query Customer($id: String!) { evaluationDates customer: customerByExternalId(externalId: $id) {
          ${CUSTOMER_FIELDS} } }`, {id: requested});
  } catch (err) {
    if (err instanceof ApiError && (err.code === "BAD_ID" || err.code === "NOT_FOUND")) {
      notFound(err.message);
    } else {
      $("#customer-title").textContent = "Customer";
      showError($("#customer-message"), err);
    }
    return;
  }
  const c = data.customer;
  if (!c) {
    notFound("");
    return;
  }
  clear($("#customer-message"));
  $("#customer-page").hidden = false;
  showHeader(c);
  await Promise.allSettled([showMonthlyRevenue(c.monthlyRevenue), showLists(c), loadHistory(c, data.evaluationDates)]);
}

whenReady(start());
