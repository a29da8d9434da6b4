// Rule editor: diagnostics as you type (validateRules), marked in place and shown under the caret; preview of who
// moves (previewRules); publish and roll back as jobs followed to the end; history with a diff between versions.
import {ApiError, $, clear, el, fmt, gql, showError, table, whenReady} from "/static/tiergraph.js";
import {showFlows, stayed} from "/static/movement_flow.js";

const text = $("#rule-text");
const marks = $("#code-marks");
const gutter = $("#gutter");
const CANDIDATE_KEY = "tiergraph.candidateRules";
const VALIDATE_DELAY_MS = 250;

let active = null;        // the version in force: {version, source}
let diagnostics = [];     // the latest validateRules answer for the text as it is
let checkedText = null;   // the text those diagnostics belong to

// ---- editing and diagnostics --------------------------------------------------------------------------------------

function caret() {
  const before = text.value.slice(0, text.selectionStart);
  const line = before.split("\n").length;
  return {line, column: before.length - before.lastIndexOf("\n")};
}

function moveCaret(line, column) {
  const lines = text.value.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, Math.min(column - 1, (lines[line - 1] || "").length));
  text.focus();
  text.setSelectionRange(offset, offset);
  const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 18;
  text.scrollTop = Math.max(0, (line - 5) * lineHeight);
  showCaret();
}

// The span a diagnostic marks: from its column to the end of the word there (at least one character).
function markedSpan(lineText, column) {
  const start = Math.max(0, Math.min(column - 1, lineText.length));
  let end = start;
  while (end < lineText.length && !/\s/.test(lineText[end])) end++;
  return [start, Math.max(end, start + 1)];
}

function renderMarks() {
  const lines = text.value.split("\n");
  const byLine = new Map();
  for (const d of diagnostics) {
    if (!byLine.has(d.line)) byLine.set(d.line, d);
  }
  clear(marks);
  lines.forEach((lineText, i) => {
    const d = byLine.get(i + 1);
    if (d) {
      const [start, end] = markedSpan(lineText, d.column);
      marks.append(lineText.slice(0, start),
        el("mark", {class: d.severity === "WARNING" ? "warning" : null}, lineText.slice(start, end) || " "),
        lineText.slice(end));
    } else {
      marks.append(lineText);
    }
    marks.append("\n");
  });
  clear(gutter);
  lines.forEach((_, i) => gutter.append(el("span", {class: byLine.has(i + 1) ? "bad" : null}, String(i + 1)), "\n"));
  syncScroll();
}

function syncScroll() {
  marks.scrollTop = text.scrollTop;
  marks.scrollLeft = text.scrollLeft;
  gutter.scrollTop = text.scrollTop;
}

function diagnosticBlock(d) {
  return el("div", {class: d.severity === "WARNING" ? "warning" : "error-diagnostic"},
    el("strong", {}, `${d.severity === "WARNING" ? "Warning" : "Error"} ${d.code}`),
    ` line ${d.line}, column ${d.column}: ${d.message}`,
    el("pre", {}, d.snippet));
}

// The diagnostics of the caret's line, under the editor, so the one being fixed is always in view.
function showCaret() {
  const {line, column} = caret();
  $("#cursor-pos").textContent = `Ln ${line}, Col ${column}`;
  const here = diagnostics.filter((d) => d.line === line);
  clear($("#at-caret")).append(...here.map(diagnosticBlock));
}

function renderDiagnostics() {
  const list = clear($("#diagnostics"));
  $("#diagnostic-count").textContent = String(diagnostics.length);
  for (const d of diagnostics) {
    list.append(el("li", {class: d.severity === "WARNING" ? "warning" : null},
      el("button", {type: "button", onclick: () => moveCaret(d.line, d.column),
        "aria-label": `Go to line ${d.line}, column ${d.column}: ${d.message}`}, diagnosticBlock(d))));
  }
  if (!diagnostics.length && checkedText !== null) list.append(el("li", {class: "ok"}, "No errors or warnings."));
  renderMarks();
  showCaret();
}

let pending = null;
let sequence = 0;

async function validate() {
  const source = text.value;
  const mine = ++sequence;  // answers that arrive out of order are dropped
  try {
    const data = await gql(`query Validate($source: String!) {
      validateRules(source: $source) { code severity message line column snippet } }`, {source});
    if (mine !== sequence) return;
    diagnostics = data.validateRules;
    checkedText = source;
    renderDiagnostics();
  } catch (err) {
    if (mine === sequence) showError($("#at-caret"), err);
  }
}

function changed() {
  sessionStorage.setItem(CANDIDATE_KEY, text.value);
  renderMarks();  // the marks follow the text at once; the next answer moves them where they belong
  clearTimeout(pending);
  pending = setTimeout(validate, VALIDATE_DELAY_MS);
}

// ---- preview ------------------------------------------------------------------------------------------------------

const MOVE_QUERY = `query Movers($source: String!, $kind: MoveKind!, $old: String, $new: String, $after: String) {
  previewRules(source: $source) { moverList(kind: $kind, old: $old, new: $new, first: 25, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { revenue customer { id name externalId } } } } } }`;

// The moves as flows (movement_flow.js, as on the movement page): a Sankey and a table per kind; choosing a flow
// in either lists its customers below.
async function preview() {
  const source = text.value;
  const out = $("#preview");
  const list = $("#preview-customers");
  clear(out).append(el("p", {class: "loading"}, "Computing who would move…"));
  clear(list);
  try {
    const data = await gql(`query Preview($source: String!) { tiers: valueSummary { tier }
      previewRules(source: $source) { asOf customers changedTiers moves { kind old new customers revenue } } }`,
    {source});
    const p = data.previewRules;
    const changed = (kind) => p.moves.filter((m) => m.kind === kind && !stayed(m)).reduce((s, m) => s + m.customers, 0);
    const sections = {};
    const grid = el("div", {class: "grid"});
    for (const kind of ["tier", "status"]) {
      sections[kind] = {chart: el("div", {class: "chart flow-chart", id: `preview-${kind}-chart`}),
        table: el("div", {id: `preview-${kind}-table`})};
      grid.append(el("section", {"aria-label": `${kind} moves`}, el("h3", {}, kind === "tier" ? "Tiers" : "Statuses"),
        sections[kind].chart, sections[kind].table));
    }
    clear(out).append(el("p", {id: "preview-summary"}, `As of ${p.asOf}: ${fmt.int(p.changedTiers)} of `
      + `${fmt.int(p.customers)} customers would change tier; ${fmt.int(changed("status"))} would change status.`),
    grid);
    for (const kind of ["tier", "status"]) {
      showFlows({...sections[kind], list}, p.moves.filter((m) => m.kind === kind), {
        oldName: "in force", newName: "edited", order: data.tiers.map((t) => t.tier),
        fetchCustomers: async (flow, after) => (await gql(MOVE_QUERY, {source, kind: kind.toUpperCase(),
          old: flow.old, new: flow.new, after})).previewRules.moverList,
      });
    }
  } catch (err) {
    showError(out, err);
  }
}

// ---- publish, roll back, jobs -------------------------------------------------------------------------------------

const JOB_QUERY = `query Job($id: Int!) { job(id: $id) { id state done total error ruleSetVersion evaluatedCustomers } }`;

async function follow(jobId, what) {
  const status = $("#publish-status");
  for (;;) {
    const {job} = await gql(JOB_QUERY, {id: jobId});
    if (job.state === "SUCCEEDED") {
      clear(status).append(el("p", {class: "ok", role: "status"},
        `${what}: version ${job.ruleSetVersion} is in force (${fmt.int(job.evaluatedCustomers)} customers evaluated).`));
      return true;
    }
    if (job.state === "FAILED") {
      clear(status).append(el("p", {class: "error", role: "alert"}, `${what} failed: ${job.error}`));
      return false;
    }
    clear(status).append(el("p", {class: "loading"}, `${what}: ${job.state.toLowerCase()}, `
      + `${fmt.int(job.done)}${job.total ? ` of ${fmt.int(job.total)}` : ""} customers…`));
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function publish() {
  const button = $("#publish-button");
  button.disabled = true;
  try {
    const data = await gql(`mutation Publish($source: String!) { publishRules(source: $source) {
      version { version } job { id } } }`, {source: text.value});
    const r = data.publishRules;
    if (await follow(r.job.id, `Publishing version ${r.version.version}`)) await loadRules(false);
  } catch (err) {
    if (err instanceof ApiError && err.code === "RULE_ERROR") {
      diagnostics = err.errors[0].extensions.diagnostics.map((d) => ({severity: "ERROR", ...d}));
      renderDiagnostics();
    }
    showError($("#publish-status"), err);
  } finally {
    button.disabled = false;
  }
}

async function rollback(version) {
  if (!confirm(`Roll back to version ${version}? The base is re-evaluated with it.`)) return;
  try {
    const data = await gql(`mutation Rollback($version: Int!) { rollbackRules(version: $version) {
      version { version } job { id } } }`, {version});
    if (await follow(data.rollbackRules.job.id, `Rolling back to version ${version}`)) await loadRules(true);
  } catch (err) {
    showError($("#publish-status"), err);
  }
}

// ---- history and diff ---------------------------------------------------------------------------------------------

async function showDiff(fromVersion, toVersion) {
  const out = $("#diff");
  try {
    const data = await gql(`query Diff($from: Int!, $to: Int!) { ruleSetDiff(fromVersion: $from, toVersion: $to) {
      kind oldLine newLine text } }`, {from: fromVersion, to: toVersion});
    const lines = data.ruleSetDiff;
    const added = lines.filter((l) => l.kind === "ADDED").length;
    const removed = lines.filter((l) => l.kind === "REMOVED").length;
    clear(out).append(
      el("p", {class: "note"}, `Version ${fromVersion} → ${toVersion}: ${added} line(s) added, ${removed} removed.`),
      el("div", {class: "diff", tabindex: "0", "aria-label": `Diff of version ${fromVersion} and ${toVersion}`},
        lines.map((l) => el("div", {class: l.kind.toLowerCase()},
          el("span", {class: "ln"}, l.kind === "ADDED" ? "+" : l.kind === "REMOVED" ? "-" : " ",
            String(l.oldLine ?? ""), " ", String(l.newLine ?? "")), l.text))));
  } catch (err) {
    showError(out, err);
  }
}

function renderHistory(versions) {
  const out = clear($("#history"));
  out.append(table([
    {label: "Version", value: (v) => v.isActive ? el("span", {}, `${v.version} `, el("span", {class: "pill"},
      "in force")) : String(v.version)},
    {label: "Published", value: (v) => v.publishedAt.slice(0, 16).replace("T", " ")},
    {label: "By", value: (v) => v.publishedBy || "—"},
    {label: "", value: (v) => el("span", {class: "actions"},
      v.isActive ? null : el("button", {type: "button", class: "diff-button",
        onclick: () => showDiff(v.version, active.version)}, `Diff with ${active.version}`),
      el("button", {type: "button", class: "load-button", onclick: () => { text.value = v.source; changed(); }},
        "Edit a copy"),
      v.isActive ? null : el("button", {type: "button", class: "rollback-button",
        onclick: () => rollback(v.version)}, "Roll back to this"))},
  ], versions, {caption: "Every published version, newest first"}));
}

async function loadRules(replaceText) {
  try {
    const data = await gql(`{ ruleSet { version source }
      ruleSetHistory { version name source publishedAt publishedBy isActive } }`);
    active = data.ruleSet;
    $("#active-version").textContent = `version ${active.version}`;
    renderHistory(data.ruleSetHistory);
    if (replaceText) {
      text.value = active.source;
      changed();
    }
  } catch (err) {
    showError($("#history"), err);
    $("#active-version").textContent = "unknown (the admin token is needed)";
  }
}

// ---- wiring -------------------------------------------------------------------------------------------------------

text.addEventListener("input", changed);
text.addEventListener("scroll", syncScroll);
for (const event of ["keyup", "click", "select"]) text.addEventListener(event, showCaret);
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    preview();
  }
});
$("#preview-button").addEventListener("click", preview);
$("#publish-button").addEventListener("click", publish);
$("#reset-button").addEventListener("click", () => { text.value = active ? active.source : ""; changed(); });

const draft = sessionStorage.getItem(CANDIDATE_KEY);
whenReady(loadRules(!draft).then(() => {
  if (draft) {
    text.value = draft;
    changed();
  }
}));
