// Flows between two labellings of the customers (tiers or statuses on two days, or under the active and a
// candidate rule set) as a Plotly Sankey, a table of the same flows and the customer list of the chosen flow.
// Shared by the movement page and the rule editor. A flow is {old, new, customers, revenue} (null old / new: none).
//
//   const view = showFlows({chart, table, list}, flows, {fetchCustomers: (flow, after) => connection,
//                                                        oldName: "2026-06-30", newName: "2026-12-01"});
//
// or the parts alone: drawFlows(container, flows, {onSelect}), flowTable(container, flows, {onSelect}),
// flowCustomers(container, flow, fetchPage). fetchPage / fetchCustomers resolve to a connection whose nodes are
// {revenue, customer {id name externalId}} (Flow.customerList, RulePreview.moverList).

import {chart, clear, customerLink, el, fmt, pagedTable, plotly} from "/static/tiergraph.js";

const PALETTE = ["#1f4e79", "#2e75b6", "#5ba3d9", "#70ad47", "#ed7d31", "#ffc000", "#7f6084", "#a5a5a5", "#264478",
  "#9e480e"];
const STAYED = "rgba(140, 150, 160, 0.22)";

export const flowKey = (f) => JSON.stringify([f.old ?? null, f.new ?? null]);
export const sameFlow = (a, b) => Boolean(a && b) && flowKey(a) === flowKey(b);
export const stayed = (f) => (f.old ?? null) === (f.new ?? null);

// What a missing label means on each side: nobody had one then (e.g. created later) / has none now.
export function labelText(value, side = "old") {
  if (value !== null && value !== undefined) return String(value);
  return side === "old" ? "none (new)" : "none";
}

export function flowText(f) {
  return `${labelText(f.old, "old")} → ${labelText(f.new, "new")}`;
}

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

// Labels in `order` first (e.g. tiers in rule order), then the others by customers, the missing label last.
function orderedLabels(flows, side, order = []) {
  const size = new Map();
  for (const f of flows) size.set(f[side] ?? null, (size.get(f[side] ?? null) || 0) + f.customers);
  const rank = (label) => (label === null ? Infinity : order.includes(label) ? order.indexOf(label) - 1e6 :
    -size.get(label));
  return [...size.keys()].sort((a, b) => rank(a) - rank(b) || String(a).localeCompare(String(b)));
}

function colourOf(labels) {
  const colours = new Map();
  labels.forEach((label) => {
    if (!colours.has(label)) colours.set(label, label === null ? "#bfbfbf" : PALETTE[colours.size % PALETTE.length]);
  });
  return colours;
}

function linkColour(f, colours, selected) {
  const chosen = sameFlow(f, selected);
  if (stayed(f)) return chosen ? "rgba(90, 100, 110, 0.55)" : STAYED;
  return rgba(colours.get(f.old ?? null), chosen ? 0.9 : selected ? 0.3 : 0.5);
}

// Column positions: each side's nodes stacked top to bottom in order, sized by customers, with a small gap.
function positions(labels, flows, side) {
  const total = flows.reduce((s, f) => s + f.customers, 0) || 1;
  const size = (label) => flows.filter((f) => (f[side] ?? null) === label).reduce((s, f) => s + f.customers, 0);
  const gap = labels.length > 1 ? 0.12 / (labels.length - 1) : 0;
  const scale = 0.88;
  let top = 0;
  return labels.map((label) => {
    const h = (size(label) / total) * scale;
    const centre = top + h / 2;
    top += h + gap;
    return Math.min(0.999, Math.max(0.001, centre));
  });
}

// Draws the Sankey: left nodes the old labels, right nodes the new ones, link width = customers, unchanged flows
// muted grey. onSelect(flow) when a link is clicked. Returns {ready, highlight(flow)}: ready resolves when drawn (see
// chart() in tiergraph.js: plotly is loaded after the page's first render), highlight marks the chosen flow.
export function drawFlows(container, flows, {onSelect, oldName = "before", newName = "after", order = [],
  selected = null} = {}) {
  const lefts = orderedLabels(flows, "old", order);
  const rights = orderedLabels(flows, "new", order);
  const colours = colourOf([...lefts, ...rights]);
  // unchanged flows first, so the moves are drawn over them
  const links = [...flows.filter(stayed), ...flows.filter((f) => !stayed(f))];
  const nodeLabels = [...lefts.map((l) => labelText(l, "old")), ...rights.map((l) => labelText(l, "new"))];
  const nodeSide = [...lefts.map(() => oldName), ...rights.map(() => newName)];
  const data = [{
    type: "sankey", arrangement: "fixed", valueformat: ",d",
    node: {
      label: nodeLabels, pad: 14, thickness: 16, line: {width: 0},
      color: [...lefts, ...rights].map((l) => colours.get(l)),
      x: [...lefts.map(() => 0.001), ...rights.map(() => 0.999)],
      y: [...positions(lefts, flows, "old"), ...positions(rights, flows, "new")],
      customdata: nodeSide,
      hovertemplate: "%{label} (%{customdata}): %{value:,} customers<extra></extra>",
    },
    link: {
      source: links.map((f) => lefts.indexOf(f.old ?? null)),
      target: links.map((f) => lefts.length + rights.indexOf(f.new ?? null)),
      value: links.map((f) => f.customers),
      color: links.map((f) => linkColour(f, colours, selected)),
      customdata: links.map((f) => [flowText(f), fmt.int(f.customers), fmt.money(f.revenue),
        stayed(f) ? "stayed" : "moved"]),
      hovertemplate: "%{customdata[0]} (%{customdata[3]})<br>%{customdata[1]} customers<br>" +
        "revenue %{customdata[2]}<extra></extra>",
    },
  }];
  const layout = {
    margin: {l: 10, r: 10, t: 28, b: 10}, height: Math.max(440, 40 * Math.max(lefts.length, rights.length)),
    annotations: [
      {text: `<b>from ${oldName}</b>`, x: 0, y: 1.06, xref: "paper", yref: "paper", xanchor: "left",
        showarrow: false},
      {text: `<b>to ${newName}</b>`, x: 1, y: 1.06, xref: "paper", yref: "paper", xanchor: "right",
        showarrow: false},
    ],
  };
  container.dataset.flows = String(links.length);
  // a node's point carries its links; a link's point is the link (its pointNumber: the index in `links`)
  const drawn = chart(container, data, layout, {config: {displayModeBar: false}, onClick: (point) => {
    if (point.sourceLinks !== undefined || point.targetLinks !== undefined) return;
    const flow = links[point.pointNumber];
    if (flow && onSelect) onSelect(flow);
  }});
  return {
    ready: drawn,
    highlight(flow) {  // once drawn (a flow chosen in the table before may wait for plotly)
      drawn.then((shown) => shown && plotly().then((Plotly) => Plotly.restyle(container,
        {"link.color": [links.map((f) => linkColour(f, colours, flow))]})));
    },
  };
}

// The same flows as a table; each row's button (and a click anywhere on the row) calls onSelect(flow).
// Returns {highlight(flow)} to mark the chosen row.
export function flowTable(container, flows, {onSelect, oldName = "before", newName = "after", caption} = {}) {
  clear(container);
  if (!flows.length) {
    container.append(el("p", {class: "empty"}, "No customers to show."));
    return {highlight() {}};
  }
  const rows = flows.map((f) => {
    const button = el("button", {type: "button", class: "flow-button", "aria-pressed": "false",
      "aria-label": `${flowText(f)}: ${fmt.int(f.customers)} customers, list them`,
      onclick: (event) => { event.stopPropagation(); onSelect && onSelect(f); }}, labelText(f.old, "old"));
    const tr = el("tr", {class: stayed(f) ? "flow stayed" : "flow", dataset: {flow: flowKey(f)},
      onclick: () => onSelect && onSelect(f)},
      el("td", {}, button),
      el("td", {}, labelText(f.new, "new"), stayed(f) ? el("span", {class: "pill"}, "stayed") : null),
      el("td", {class: "num"}, fmt.int(f.customers)),
      el("td", {class: "num"}, fmt.money(f.revenue)));
    return {f, tr, button};
  });
  const total = flows.reduce((s, f) => s + f.customers, 0);
  const moved = flows.filter((f) => !stayed(f)).reduce((s, f) => s + f.customers, 0);
  container.append(el("div", {class: "flow-scroll"}, el("table", {class: "flow-table"},
    el("caption", {}, caption || `${fmt.int(total)} customers, ${fmt.int(moved)} moved`),
    el("thead", {}, el("tr", {}, el("th", {scope: "col"}, `From (${oldName})`),
      el("th", {scope: "col"}, `To (${newName})`), el("th", {scope: "col", class: "num"}, "Customers"),
      el("th", {scope: "col", class: "num"}, "Revenue"))),
    el("tbody", {}, rows.map((r) => r.tr)))));
  return {
    highlight(flow) {
      for (const r of rows) {
        const on = sameFlow(r.f, flow);
        r.tr.classList.toggle("selected", on);
        r.button.setAttribute("aria-pressed", String(on));
        if (on) r.tr.scrollIntoView({block: "nearest"});
      }
    },
  };
}

// One flow's customers, the biggest revenue first, paged with "More".
export function flowCustomers(container, flow, fetchPage, {pageLabel = "customers"} = {}) {
  clear(container);
  const heading = el("h3", {class: "flow-title", tabindex: "-1"},
    `${flowText(flow)}: ${fmt.int(flow.customers)} customers, revenue ${fmt.money(flow.revenue)}`);
  const holder = el("div", {class: "flow-customers"});
  container.append(heading, holder);
  heading.scrollIntoView({block: "nearest"});
  const columns = [
    {label: "Customer", value: (n) => customerLink(n.customer)},
    {label: "Move", value: () => flowText(flow)},
    {label: "Revenue", num: true, value: (n) => fmt.money(n.revenue)},
  ];
  return {heading, done: pagedTable(holder, columns, fetchPage, {pageLabel, empty: "No customers in this flow."})};
}

// Chart, table and list wired together: choosing a flow in either lists its customers in `list`.
export function showFlows({chart, table, list}, flows, {fetchCustomers, oldName, newName, order, onSelect} = {}) {
  let current = null;
  let drawn;
  const select = (flow) => {
    current = flow;
    drawn.highlight(flow);
    rows.highlight(flow);
    const shown = flowCustomers(list, flow, (after) => fetchCustomers(flow, after));
    if (onSelect) onSelect(flow);
    return shown;
  };
  drawn = drawFlows(chart, flows, {onSelect: select, oldName, newName, order});
  const rows = flowTable(table, flows, {onSelect: select, oldName, newName});
  clear(list).append(el("p", {class: "note"}, flows.length ?
    "Choose a flow (a link of the chart or a row of the table) to list its customers." : ""));
  // ready: the chart is drawn (the table and list are there at once)
  return {ready: drawn.ready, select, get selected() { return current; }};
}
