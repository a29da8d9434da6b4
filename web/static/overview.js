// Overview: for one evaluation date, the customer pyramid beside the profit pyramid, customers per tier and status,
// and the three value classes (most valuable, fastest growing, negative value). One GraphQL request per date.

import {$, chart, clear, customerLink, el, fmt, gql, loading, showError, table, TIER_COLOURS, whenReady}
  from "/static/tiergraph.js";

const CLASS_SIZE = 10;

// Without asOf every field takes its default (the latest evaluation), so the first view needs no date first.
const QUERY = `query Overview($asOf: Date, $first: Int!) {
  evaluationDates
  tiers: valueSummary(includeTotal: true, asOf: $asOf) {
    tier customers shareOfCustomers revenue profit shareOfProfit asOf
  }
  statuses: statusCounts(asOf: $asOf) { label customers }
  valuable: topCustomers(by: PROFIT, to: $asOf, first: $first) { ...top }
  growing: topCustomers(by: GROWTH, to: $asOf, first: $first) { ...top }
  negative: topCustomers(by: NEGATIVE_VALUE, to: $asOf, first: $first) { ...top }
}
fragment top on TopCustomer { id externalId name region revenue previousRevenue growth profit from to }`;

const picker = $("#as-of");

function askedDate() {
  return new URLSearchParams(location.search).get("asOf") || null;
}

function fillPicker(dates, chosen) {
  clear(picker);
  for (const day of dates) picker.append(el("option", {value: day}, day));
  if (chosen && !dates.includes(chosen)) picker.append(el("option", {value: chosen}, `${chosen} (not evaluated)`));
  picker.value = chosen || dates[0] || "";
}

const tierName = (t) => (t === null || t === undefined ? "no tier" : t);

// A centred horizontal bar per tier (the top tier at the top), so the bars stack into a pyramid.
function pyramid(container, rows, share, title, colour) {
  const names = rows.map((r) => tierName(r.tier));
  const values = rows.map((r) => share(r) || 0);
  chart(container, [{
    type: "bar", orientation: "h", y: names, x: values, base: values.map((v) => -v / 2),
    marker: {color: rows.map((_, i) => colour(i))},
    text: values.map((v) => fmt.pct(v)), textposition: "outside", cliponaxis: false,
    customdata: rows.map((r) => [fmt.int(r.customers), fmt.money(r.profit)]),
    hovertemplate: "%{y}: %{text}<br>%{customdata[0]} customers, profit %{customdata[1]}<extra></extra>",
  }], {
    title: {text: title, font: {size: 13}},
    xaxis: {range: [-0.62, 0.62], showticklabels: false, zeroline: false, showgrid: false, fixedrange: true},
    yaxis: {autorange: "reversed", fixedrange: true},
    margin: {l: 90, r: 10, t: 34, b: 10}, showlegend: false, bargap: 0.08,
  });
}

function pyramidTable(tiers, total) {
  const columns = [
    {label: "Tier", value: (r) => (r === total ? "Total" : tierName(r.tier))},
    {label: "Customers", num: true, value: (r) => fmt.int(r.customers)},
    {label: "Share of customers", num: true, value: (r) => fmt.pct(r.shareOfCustomers)},
    {label: "Revenue", num: true, value: (r) => fmt.money(r.revenue)},
    {label: "Profit", num: true, value: (r) => fmt.money(r.profit)},
    {label: "Share of profit", num: true, value: (r) => fmt.pct(r.shareOfProfit)},
  ];
  const node = table(columns, total ? [...tiers, total] : tiers,
    {caption: `Per tier as of ${(total || tiers[0] || {}).asOf || "—"} (revenue and profit: 12 months)`,
      empty: "No tier is in force on that day."});
  node.id = "pyramid-numbers";
  const last = node.querySelector && node.querySelector("tbody tr:last-child");
  if (total && last) last.classList.add("total");
  return node;
}

function kpis(container, items, kind) {
  clear(container).append(el("h3", {class: "kpi-group"}, kind),
    ...items.map((item) => el("div", {class: "kpi", dataset: {label: item.name}},
      el("div", {class: "value"}, fmt.int(item.customers)), el("div", {class: "name"}, item.name))));
}

const CLASSES = {
  valuable: {container: "#class-profit", empty: "No customer made a profit in the period.",
    figures: [{label: "Profit", num: true, value: (c) => fmt.money(c.profit)},
      {label: "Revenue", num: true, value: (c) => fmt.money(c.revenue)}]},
  growing: {container: "#class-growth", empty: "No customer grew in the period.",
    figures: [{label: "Growth", num: true, value: (c) => fmt.pct(c.growth, 0)},
      {label: "Revenue", num: true, value: (c) => fmt.money(c.revenue)},
      {label: "Before", num: true, value: (c) => fmt.money(c.previousRevenue)}]},
  negative: {container: "#class-negative", empty: "No customer cost more than it earned in the period.",
    figures: [{label: "Profit", num: true, value: (c) => fmt.money(c.profit)},
      {label: "Revenue", num: true, value: (c) => fmt.money(c.revenue)}]},
};

function valueClass(key, customers) {
  const spec = CLASSES[key];
  const box = $(spec.container);
  const period = box.parentElement.querySelector(".period");
  period.textContent = customers.length ? `${customers[0].from} to ${customers[0].to}` : "";
  const columns = [{label: "#", num: true, value: (c) => String(customers.indexOf(c) + 1)},
    {label: "Customer", value: (c) => customerLink(c)}, ...spec.figures];
  clear(box).append(table(columns, customers, {empty: spec.empty}));
}

function render(data) {
  const rows = data.tiers;
  const total = rows.length ? rows[rows.length - 1] : null;  // includeTotal: the total comes last
  const tiers = rows.slice(0, -1);
  pyramid($("#customer-pyramid"), tiers, (r) => r.shareOfCustomers, "Share of customers",
    (i) => TIER_COLOURS[i % TIER_COLOURS.length]);
  pyramid($("#profit-pyramid"), tiers, (r) => r.shareOfProfit, "Share of profit",
    (i) => TIER_COLOURS[i % TIER_COLOURS.length]);
  clear($("#pyramid-table")).append(pyramidTable(tiers, total));
  kpis($("#tier-kpis"), tiers.map((t) => ({name: tierName(t.tier), customers: t.customers})), "Tiers");
  kpis($("#status-kpis"), data.statuses.map((s) => ({name: s.label === null ? "no status" : s.label,
    customers: s.customers})), "Statuses");
  valueClass("valuable", data.valuable);
  valueClass("growing", data.growing);
  valueClass("negative", data.negative);
}

const SECTIONS = ["#pyramid-table", "#tier-kpis", "#class-profit", "#class-growth", "#class-negative"];

async function load() {
  const asOf = askedDate();
  document.body.dataset.loaded = "";
  clear($("#overview-error"));
  for (const s of SECTIONS) loading($(s));
  try {
    const data = await gql(QUERY, {asOf, first: CLASS_SIZE});
    fillPicker(data.evaluationDates, asOf);
    render(data);
    document.body.dataset.loaded = asOf || data.evaluationDates[0] || "";
  } catch (err) {
    for (const s of SECTIONS) clear($(s));
    showError($("#overview-error"), err);
    // the picker still offers the evaluated days, so a bad link can be corrected
    try {
      fillPicker((await gql("query { evaluationDates }")).evaluationDates, asOf);
    } catch { /* the error above says why */ }
    document.body.dataset.loaded = "error";
  }
}

picker.addEventListener("change", () => {
  const url = new URL(location.href);
  url.searchParams.set("asOf", picker.value);
  history.pushState(null, "", url);
  load();
});
window.addEventListener("popstate", load);
$("#overview-controls").addEventListener("submit", (event) => event.preventDefault());

whenReady(load());
