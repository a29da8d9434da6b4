// One customer: who it is, its tier and status with the rules behind them, its satisfaction, pipeline, payments,
// spend by category, anniversary and consent, its revenue per month, its value at the last evaluations, the history
// of its tier and status with causes, complaints, deliveries and loss episodes.
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
const WHOLE_FIELDS = `
  consent consentAt customerSince nextAnniversary daysUntilAnniversary relationshipYears
  satisfaction { answers detractors promoters latestScore latestKind latestAnsweredAt averageNpsScore averageCsatScore
                 nps }
  pipeline { openCount openAmount weightedAmount stalledCount wonAmount12m }
  payment { termsDays creditGrade creditLimit outstanding overdueCount overdueAmount creditUtilisation averageDaysLate }
  spendByCategory { category revenue margin orders share shareOfWallet }`;
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
  deliveries(first: ${LIST_SIZE}) { ${DELIVERY_FIELDS} }
  ${WHOLE_FIELDS}`;

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
    c.owner ? `owner ${c.owner.name} (${c.owner.externalId})` : "no owner", `customer since ${c.customerSince}`];
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
    el("dd", {}, c.tags.length ? c.tags.flatMap((t) => [el("span", {class: "pill"}, t.name), " "]) : "none"));

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

// ---- satisfaction, pipeline, payments, spend, anniversary (all on the data's now) ----------------------------------

// A compact list of [label, value, field]: each value's <dd> carries data-field for tests and scripts.
function facts(id, rows) {
  return el("dl", {class: "facts", id}, rows.flatMap(([label, value, field]) => [
    el("dt", {}, label), el("dd", {"data-field": field}, value)]));
}

const plural = (n, one, many = `${one}s`) => `${fmt.int(n)} ${n === 1 ? one : many}`;

function showSatisfaction(s) {
  const holder = clear($("#satisfaction"));
  if (!s.answers) {
    holder.append(el("p", {class: "empty"}, "No survey answers in the last 12 months."));
    return;
  }
  holder.append(facts("satisfaction-facts", [
    ["NPS", s.nps === null ? "no NPS answers" : fmt.num(s.nps, 1), "nps"],
    ["Answers", fmt.int(s.answers), "answers"],
    ["Detractors", fmt.int(s.detractors), "detractors"],
    ["Promoters", fmt.int(s.promoters), "promoters"],
    ["Average NPS score", fmt.num(s.averageNpsScore, 1), "averageNpsScore"],
    ["Average CSAT score", fmt.num(s.averageCsatScore, 1), "averageCsatScore"],
    ["Latest", `${fmt.num(s.latestScore, 1)} ${s.latestKind.toUpperCase()} on ${s.latestAnsweredAt}`, "latest"],
  ]), el("p", {class: "note"}, "Answers of the last 12 months; NPS = promoters % − detractors % of NPS answers."));
}

function showPipeline(p) {
  const holder = clear($("#pipeline"));
  if (!p.openCount && !p.stalledCount && !p.wonAmount12m) {
    holder.append(el("p", {class: "empty"}, "No open deals and none won in the last 12 months."));
    return;
  }
  holder.append(facts("pipeline-facts", [
    ["Open deals", fmt.int(p.openCount), "openCount"],
    ["Open amount", fmt.money(p.openAmount), "openAmount"],
    ["Weighted", fmt.money(p.weightedAmount), "weightedAmount"],
    ["Stalled", fmt.int(p.stalledCount), "stalledCount"],
    ["Won in 12 months", fmt.money(p.wonAmount12m), "wonAmount12m"],
  ]), el("p", {class: "note"}, "Weighted: amount × probability of the open deals; stalled: past the expected close."));
}

function showPayments(p) {
  const holder = clear($("#payments"));
  if (p.termsDays === null && p.creditGrade === null && p.creditLimit === null && !p.outstanding
      && p.averageDaysLate === null) {
    holder.append(el("p", {class: "empty"}, "No payment terms, credit or invoices."));
    return;
  }
  holder.append(facts("payment-facts", [
    ["Terms", p.termsDays === null ? "—" : plural(p.termsDays, "day"), "termsDays"],
    ["Credit grade", p.creditGrade || "—", "creditGrade"],
    ["Credit limit", fmt.money(p.creditLimit), "creditLimit"],
    ["Outstanding", fmt.money(p.outstanding), "outstanding"],
    ["Overdue", p.overdueCount ? [el("span", {class: "pill overdue"}, plural(p.overdueCount, "invoice")), " ",
      fmt.money(p.overdueAmount)] : "none", "overdue"],
    ["Credit used", fmt.pct(p.creditUtilisation), "creditUtilisation"],
    ["Average days late", fmt.num(p.averageDaysLate, 1), "averageDaysLate"],
  ]), el("p", {class: "note"}, "Days late: invoices of the last 12 months paid so far, on time counting 0."));
}

function showSpend(rows) {
  const tableNode = table([
    {label: "Category", value: (r) => r.category || "no category"},
    {label: "Revenue", num: true, value: (r) => fmt.money(r.revenue)},
    {label: "Margin", num: true, value: (r) => (r.margin === null ? "unknown" : fmt.money(r.margin))},
    {label: "Orders", num: true, value: (r) => fmt.int(r.orders)},
    {label: "Share", num: true, value: (r) => fmt.pct(r.share)},
    {label: "Share of wallet", num: true, value: (r) => fmt.pct(r.shareOfWallet)},
  ], rows, {caption: "Order lines of the last 12 months, the largest first; share of wallet needs the attribute " +
    "wallet.<category>", empty: "No order lines in the last 12 months."});
  tableNode.id = "spend-by-category";
  clear($("#spend")).append(tableNode);
}

function showAnniversary(c) {
  const next = c.daysUntilAnniversary === 0 ? "today" : `in ${plural(c.daysUntilAnniversary, "day")}`;
  clear($("#anniversary")).append(facts("anniversary-facts", [
    ["Customer since", c.customerSince, "customerSince"],
    ["Relationship", plural(c.relationshipYears, "year"), "relationshipYears"],
    ["Next anniversary", `${c.nextAnniversary} (${next})`, "nextAnniversary"],
    ["Consent to contact", c.consent ? `yes${c.consentAt ? ` since ${c.consentAt}` : ""}`
      : `no${c.consentAt ? ` (withdrawn ${c.consentAt})` : ""}`, "consent"],
  ]));
}

function showWhole(c) {
  showSatisfaction(c.satisfaction);
  showPipeline(c.pipeline);
  showPayments(c.payment);
  showSpend(c.spendByCategory);
  showAnniversary(c);
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
  showWhole(c);
  await Promise.allSettled([showMonthlyRevenue(c.monthlyRevenue), showLists(c), loadHistory(c, data.evaluationDates)]);
}

whenReady(start());
