// brainrank leaderboard site: plain JavaScript and the vendored Chart.js (static/vendor/),
// no external resources. Every number shown comes from the JSON API (/api/): the page
// reshapes and colours it but computes no leaderboard arithmetic of its own.
"use strict";

// ------------------------------------------------------------------ state and helpers

const state = {
  options: null,
  ranking: null,            // the /api/ranking answer
  sortKey: "rank", sortAsc: true, search: "",
  expanded: new Set(),      // column keys shown by region, "column|region" by subject
  filters: {},              // the URL's filters (dataset, metric, where...)
};
// Okabe-Ito: eight colours told apart with colour-blind vision; more series use viridis
const QUALITATIVE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                     "#F0E442", "#000000"];
// viridis (matplotlib, CC0), 9 stops from dark to light
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                 [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
const RANK_FILTERS = ["dataset", "metric", "config", "region", "selection", "value"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : value.toFixed(digits === undefined ? 3 : digits);
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function getJSON(url) {
  const response = await fetch(url);
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return c;
}

function cellColour(value, low, high) {
  if (value === null || value === undefined || !(high > low)) return null;
  const [r, g, b] = viridis((value - low) / (high - low));
  const light = 0.299 * r + 0.587 * g + 0.114 * b > 140;
  return { background: `rgb(${r},${g},${b})`, color: light ? "#111" : "#fff" };
}

function seriesColours(n) {
  // distinct qualitative colours up to 8; beyond, a continuous scale (never repeats)
  if (n <= QUALITATIVE.length) return QUALITATIVE.slice(0, n);
  return Array.from({ length: n }, (_, i) => {
    const [r, g, b] = viridis(i / Math.max(1, n - 1) * 0.92);
    return `rgb(${r},${g},${b})`;
  });
}

function modelLook(family, kind) {
  // one model drawn as in the report: its family's colour, filled when trained, hollow when
  // randomly initialised; a baseline is a grey diamond
  const palette = (state.options && state.options.palette) || null;
  if (!palette) return { shape: "circle", edge: QUALITATIVE[0], fill: QUALITATIVE[0] };
  if (kind === "baseline") return { shape: "rectRot", edge: palette.baseline, fill: palette.baseline };
  const colour = palette.family[family] || palette.unknown_family;
  const filled = (palette.kind[kind] || palette.kind.trained).filled;
  return { shape: "circle", edge: colour, fill: filled ? colour : "#ffffff" };
}

function kindBadge(kind) {
  if (!kind || kind === "trained") return null;
  return el("span", { class: `badge kind-${kind}`, title: kind === "baseline"
    ? "a baseline (no trained network), not a randomly initialised one"
    : "randomly initialised weights" }, kind);
}

function simulatedBadge() {
  return el("span", { class: "badge simulated", title: "simulated data, ranked apart from real data" },
            "simulated");
}

// ------------------------------------------------------------------ URL state

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || "ranking", arg: parts.slice(1).join("/"), params };
}

function rankingHash() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.filters)) {
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else if (value) params.set(key, value);
  }
  if (state.sortKey !== "rank" || !state.sortAsc) {
    params.set("sort", state.sortKey);
    params.set("asc", state.sortAsc ? "1" : "0");
  }
  if (state.search) params.set("q", state.search);
  for (const key of state.expanded) params.append("open", key);
  const text = params.toString();
  return "#/" + (text ? "?" + text : "");
}

function readRankingState(params) {
  state.filters = {};
  for (const key of RANK_FILTERS) if (params.get(key)) state.filters[key] = params.get(key);
  const where = params.getAll("where").filter(Boolean);
  if (where.length) state.filters.where = where;
  state.sortKey = params.get("sort") || "rank";
  state.sortAsc = params.has("asc") ? params.get("asc") === "1" : true;
  state.search = params.get("q") || "";
  state.expanded = new Set(params.getAll("open"));
}

function apiParams() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.filters)) {
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else if (value) params.set(key, value);
  }
  return params;
}

function pushRankingState(reload) {
  // the URL holds the filters, sorting, search and expanded columns: reload keeps them
  const hash = rankingHash();
  if (reload) {
    if (location.hash !== hash) location.hash = hash;  // hashchange loads the ranking
    else loadRanking();
    return;
  }
  if (location.hash !== hash) history.replaceState(null, "", hash);
  renderRanking();
}

// ------------------------------------------------------------------ filters

function fillSelect(select, values, label) {
  select.textContent = "";
  select.append(el("option", { value: "" }, label || "all"));
  for (const value of values) select.append(el("option", { value: String(value) }, String(value)));
}

function buildFilters() {
  const o = state.options;
  fillSelect(document.getElementById("f-dataset"), o.datasets);
  fillSelect(document.getElementById("f-metric"), o.metrics);
  fillSelect(document.getElementById("f-config"), o.configs || []);
  fillSelect(document.getElementById("f-region"), o.regions);
  const policies = o.selections.filter((s) => s !== "layer" && s !== "significance");
  // the default is the ranking's headline: 'heldout' where the metric stores it, else 'max'
  fillSelect(document.getElementById("f-selection"), policies, "declared leak-free row");
  const box = document.getElementById("taxonomy-filters");
  box.textContent = "";
  for (const [field, values] of Object.entries(o.taxonomy || {})) {
    const select = el("select", { id: "f-tax-" + field, "data-field": field });
    fillSelect(select, values);
    if (field === "kind") {
      // trained / random / baseline, in that order
      const order = ["trained", "random", "baseline"];
      fillSelect(select, values.slice().sort((a, b) => order.indexOf(a) - order.indexOf(b)));
    }
    select.addEventListener("change", onFilterChange);
    box.append(el("label", {}, field.replace(/_/g, " ") + " ", select));
  }
  for (const select of document.querySelectorAll("#controls select[data-filter]")) {
    select.addEventListener("change", onFilterChange);
  }
}

function showFilters() {
  for (const select of document.querySelectorAll("#controls select[data-filter]")) {
    const key = select.dataset.filter;
    select.value = state.filters[key] || (key === "value" ? "auto" : "");
  }
  const where = {};
  for (const item of state.filters.where || []) {
    const [field, value] = item.split(/:(.*)/s);
    where[field] = value;
  }
  for (const select of document.querySelectorAll("#taxonomy-filters select")) {
    select.value = where[select.dataset.field] || "";
  }
  document.getElementById("f-search").value = state.search;
  const active = Object.keys(state.filters).filter((k) => k !== "value" || state.filters[k] !== "auto");
  const n = active.reduce((sum, k) => sum + (Array.isArray(state.filters[k]) ? state.filters[k].length : 1), 0);
  document.getElementById("filter-count").textContent = n ? `(${n} active)` : "";
}

function onFilterChange() {
  const filters = {};
  for (const select of document.querySelectorAll("#controls select[data-filter]")) {
    const key = select.dataset.filter;
    if (select.value && !(key === "value" && select.value === "auto")) filters[key] = select.value;
  }
  const where = [];
  for (const select of document.querySelectorAll("#taxonomy-filters select")) {
    if (select.value) where.push(`${select.dataset.field}:${select.value}`);
  }
  if (where.length) filters.where = where;
  state.filters = filters;
  pushRankingState(true);
}

// ------------------------------------------------------------------ the ranking table

async function loadRanking() {
  setStatus("loading…");
  showFilters();
  const key = apiParams().toString();
  try {
    state.ranking = await getJSON("/api/ranking?" + key);
    state.loadedKey = key;
  } catch (error) {
    state.ranking = { rows: [], column_info: [], notes: [], groups: [] };
    renderRanking();
    setStatus("error: " + error.message);
    return;
  }
  renderRanking();
}

function leafColumns(group) {
  // the visible leaf columns of one ranking group, dataset by dataset
  const leaves = [];
  for (const info of state.ranking.column_info.filter((c) => c.data === group)) {
    // a configuration that is not calibrated is marked in its header (its cells show chance)
    const label = info.calibrated === false ? info.label + " *" : info.label;
    leaves.push({ type: "column", info, key: info.key, label, title: info.title });
    if (!state.expanded.has(info.key)) continue;
    for (const region of info.regions) {
      const rkey = `${info.key}|${region}`;
      leaves.push({ type: "region", info, region, key: rkey, label: region,
                    title: `${info.title}, region ${region} (mean over subjects)` });
      if (!state.expanded.has(rkey)) continue;
      for (const subject of info.subjects) {
        leaves.push({ type: "subject", info, region, subject, key: `${rkey}|${subject}`,
                      label: subject, title: `${info.title}, ${region}, ${subject}` });
      }
    }
  }
  return leaves;
}

function leafValue(row, leaf) {
  if (leaf.type === "column") return row[leaf.key];
  const cells = (row.cells || {})[leaf.info.key] || {};
  if (leaf.type === "region") return (cells.regions || {})[leaf.region];
  return ((cells.subjects || {})[leaf.region] || {})[leaf.subject];
}

function leafFlags(row, leaf) {
  const cells = (row.cells || {})[leaf.info.key] || {};
  if (leaf.type === "column") return cells.flags || [];
  if (leaf.type === "region") return (cells.region_flags || {})[leaf.region] || [];
  return ((cells.subject_flags || {})[leaf.region] || {})[leaf.subject] || [];
}

function leafExtra(row, leaf) {
  const cells = (row.cells || {})[leaf.info.key] || {};
  if (leaf.type === "column") {  // a configuration that is not calibrated: its chance level
    const name = leaf.info.chance_column;
    return name && typeof row[name] === "number" ? { chance: row[name] } : {};
  }
  if (leaf.type === "region") {
    const subjects = Object.values((cells.extra || {})[leaf.region] || {});
    const values = subjects.map((e) => e.chance).filter((v) => typeof v === "number");
    return values.length ? { chance: values.reduce((a, b) => a + b, 0) / values.length } : {};
  }
  return ((cells.extra || {})[leaf.region] || {})[leaf.subject] || {};
}

function sortValue(row, key, leaves) {
  const leaf = leaves.find((l) => l.key === key);
  return leaf ? leafValue(row, leaf) : row[key];
}

function visibleRows(group, leaves) {
  const needle = state.search.toLowerCase();
  const rows = state.ranking.rows.filter((row) => row.data === group &&
    (!needle || row.model.toLowerCase().includes(needle)));
  const key = state.sortKey;
  const sign = state.sortAsc ? 1 : -1;
  return rows.slice().sort((a, b) => {
    const x = sortValue(a, key, leaves);
    const y = sortValue(b, key, leaves);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;  // missing values last, either direction
    if (y === null || y === undefined) return -1;
    if (typeof x === "number" && typeof y === "number") return sign * (x - y);
    return sign * String(x).localeCompare(String(y));
  });
}

function sortBy(key, text) {
  if (state.sortKey === key) state.sortAsc = !state.sortAsc;
  else { state.sortKey = key; state.sortAsc = key === "rank" || text; }
  pushRankingState(false);
}

function headerCell(key, label, attrs, text) {
  const th = el("th", Object.assign({ "data-key": key, scope: "col" }, attrs || {}));
  const button = el("button", { type: "button", class: "sort" }, label);
  button.addEventListener("click", () => sortBy(key, text));
  th.append(button);
  if (state.sortKey === key) th.setAttribute("aria-sort", state.sortAsc ? "ascending" : "descending");
  return th;
}

function toggle(key) {
  if (state.expanded.has(key)) {
    for (const k of [...state.expanded]) if (k === key || k.startsWith(key + "|")) state.expanded.delete(k);
  } else {
    state.expanded.add(key);
  }
  pushRankingState(false);
}

function renderTable(group, groupInfo) {
  const leaves = leafColumns(group);
  const rows = visibleRows(group, leaves);
  const withCi = groupInfo && groupInfo.with_ci;
  const table = el("table", { class: "ranking", "data-group": group });
  const head = el("thead");
  const top = el("tr", { class: "groups" });
  const second = el("tr", { class: "leaves" });
  const fixed = [["rank", "#", false], ["model", "model", true], ["mean", "mean", false]];
  for (const [key, label, text] of fixed) {
    top.append(headerCell(key, label, { rowspan: 2, class: `fixed fixed-${key}` }, text));
  }
  const ci = el("th", { rowspan: 2, class: "fixed fixed-ci", scope: "col", "data-key": "ci",
                        title: withCi ? "95% bootstrap confidence interval of the mean"
                                      : "no confidence interval (see the notes)" }, "95% CI");
  top.append(ci);
  // one group header per dataset, spanning its visible leaves
  const datasets = [];
  for (const leaf of leaves) {
    const last = datasets[datasets.length - 1];
    if (last && last.dataset === leaf.info.dataset) last.span += 1;
    else datasets.push({ dataset: leaf.info.dataset, span: 1, simulated: leaf.info.simulated });
  }
  for (const d of datasets) {
    const columns = state.ranking.column_info.filter((c) => c.data === group && c.dataset === d.dataset);
    const open = columns.every((c) => state.expanded.has(c.key));
    const button = el("button", { type: "button", class: "expand", "data-dataset": d.dataset,
                                  "aria-expanded": String(open),
                                  title: open ? "collapse the regions" : "show every metric by region" },
                      open ? "▾" : "▸");
    button.addEventListener("click", () => {
      for (const c of columns) {
        if (open) toggle(c.key);
        else if (!state.expanded.has(c.key)) state.expanded.add(c.key);
      }
      pushRankingState(false);
    });
    const link = el("a", { href: "#/dataset/" + encodeURIComponent(d.dataset), title: "about this dataset" },
                    d.dataset);
    top.append(el("th", { colspan: d.span, class: "dataset" + (d.simulated ? " sim" : ""), scope: "colgroup" },
                  button, " ", link, d.simulated ? simulatedBadge() : null));
  }
  for (const leaf of leaves) {
    const th = headerCell(leaf.key, leaf.label, { title: leaf.title, class: "leaf leaf-" + leaf.type });
    if (leaf.type !== "subject") {
      const open = state.expanded.has(leaf.key);
      const more = el("button", { type: "button", class: "expand", "data-expand": leaf.key,
                                  "aria-expanded": String(open),
                                  title: open ? "collapse" : (leaf.type === "column" ? "by region" : "by subject") },
                      open ? "▾" : "▸");
      more.addEventListener("click", () => toggle(leaf.key));
      th.prepend(more);
    }
    second.append(th);
  }
  head.append(top, second);
  table.append(head);
  // colour scale: each leaf column spans its own range over the rows shown
  const ranges = new Map();
  for (const leaf of [{ key: "mean" }, ...leaves]) {
    const values = rows.map((r) => (leaf.type ? leafValue(r, leaf) : r.mean)).filter((v) => typeof v === "number");
    ranges.set(leaf.key, [Math.min(...values), Math.max(...values)]);
  }
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr", { "data-model": row.model, "data-kind": row.kind || "" });
    tr.append(el("td", { class: "fixed fixed-rank num" }, fmt(row.rank)));
    const link = el("a", { href: "#/model/" + encodeURIComponent(row.model), class: "model-link",
                           title: [row.model, row.family, row.kind].filter(Boolean).join(" · ") }, row.model);
    tr.append(el("td", { class: "fixed fixed-model text" }, link, kindBadge(row.kind)));
    tr.append(colouredCell(row.mean, ranges.get("mean"), "fixed fixed-mean num", []));
    const interval = row.ci_low === null || row.ci_low === undefined ? "–"
      : `${fmt(row.ci_low)}–${fmt(row.ci_high)}`;
    tr.append(el("td", { class: "fixed fixed-ci num" }, interval));
    for (const leaf of leaves) {
      tr.append(colouredCell(leafValue(row, leaf), ranges.get(leaf.key), "num", leafFlags(row, leaf),
                             leafExtra(row, leaf), leaf.key));
    }
    body.append(tr);
  }
  table.append(body);
  return { table, rows, leaves };
}

function colouredCell(value, range, cls, flags, extra, key) {
  const td = el("td", { class: cls, "data-key": key });
  const colour = range ? cellColour(value, range[0], range[1]) : null;
  if (colour) td.setAttribute("style", `background:${colour.background};color:${colour.color}`);
  td.append(fmt(value));
  const lines = [...(flags || [])];
  for (const [name, v] of Object.entries(extra || {})) lines.push(`${name.replace(/_/g, " ")}: ${fmt(v)}`);
  const chance = Object.entries(extra || {}).filter(([name]) => name.startsWith("chance"));
  if (chance.length) td.append(el("span", { class: "chance" }, " (chance " + chance.map(([, v]) => fmt(v, 2)).join(" ± ") + ")"));
  if (lines.length) {
    td.classList.add("flagged");
    td.setAttribute("title", lines.join("\n"));
    td.append(el("sup", { class: "flag", "aria-label": lines.join("; ") }, "†"));
  }
  return td;
}

function renderRanking() {
  if (!state.ranking) return;
  const box = document.getElementById("tables");
  box.textContent = "";
  state.shown = [];
  const groups = state.ranking.groups || [];
  const names = groups.length ? groups.map((g) => g.data) : ["real"];
  let shownModels = new Set();
  for (const group of names) {
    const info = groups.find((g) => g.data === group);
    const { table, rows, leaves } = renderTable(group, info);
    rows.forEach((r) => shownModels.add(r.model));
    state.shown.push({ group, rows, leaves });
    const title = el("h3", { class: "group-title" }, info ? info.title : "ranking",
                     group === "simulated" ? simulatedBadge() : null);
    const wrap = el("div", { class: "table-wrap" + (group === "simulated" ? " simulated-wrap" : "") }, table);
    box.append(el("section", { class: "group", "data-group": group }, names.length > 1 ? title : null, wrap));
  }
  // notes folded under the table; short column names explained
  const notes = document.getElementById("notes");
  notes.textContent = "";
  for (const note of state.ranking.notes || []) notes.append(el("li", {}, note));
  document.getElementById("notes-count").textContent = `(${(state.ranking.notes || []).length})`;
  const legend = document.getElementById("legend");
  legend.textContent = "";
  const renamed = (state.ranking.column_info || []).filter((c) => c.label !== c.config);
  for (const c of renamed) legend.append(el("div", {}, el("b", {}, c.label), " = " + c.title));
  const total = state.options ? state.options.n_models : shownModels.size;
  const parts = names.map((g) => {
    const n = new Set(state.ranking.rows.filter((r) => r.data === g).map((r) => r.model)).size;
    return `${g === "simulated" ? "simulated" : "real"} data: ${n}`;
  });
  setStatus(shownModels.size
    ? `${shownModels.size} of ${total} models shown (${parts.join(", ")})`
    : "no models match these filters");
  showFilters();
  renderScale();
}

function renderScale() {
  const scale = document.getElementById("scale");
  scale.textContent = "";
  const bar = el("span", { class: "scale-bar" });
  const stops = VIRIDIS.map((c, i) => `rgb(${c.join(",")}) ${Math.round((100 * i) / (VIRIDIS.length - 1))}%`);
  bar.setAttribute("style", `background:linear-gradient(to right, ${stops.join(",")})`);
  scale.append("low ", bar, " high", el("span", { class: "meta" }, " (per column)"));
}

// ------------------------------------------------------------------ downloads

function shownTable() {
  const header = ["data", "rank", "model", "kind", "family", "mean", "ci_low", "ci_high"];
  const keys = [];
  for (const part of state.shown || []) for (const leaf of part.leaves) if (!keys.includes(leaf.key)) keys.push(leaf.key);
  const records = [];
  for (const part of state.shown || []) {
    for (const row of part.rows) {
      const record = {};
      for (const key of header) record[key] = row[key] === undefined ? null : row[key];
      for (const leaf of part.leaves) record[leaf.key] = leafValue(row, leaf) ?? null;
      records.push(record);
    }
  }
  return { columns: [...header, ...keys], records };
}

function csvText() {
  const { columns, records } = shownTable();
  const quote = (v) => {
    if (v === null || v === undefined) return "";
    const text = String(v);
    return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  };
  const lines = [columns.map(quote).join(",")];
  for (const r of records) lines.push(columns.map((c) => quote(r[c])).join(","));
  return lines.join("\n") + "\n";
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ------------------------------------------------------------------ charts

function lineChart(canvas, datasets, yLabel, title) {
  if (typeof Chart === "undefined") return null;
  return new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
      plugins: {
        title: { display: Boolean(title), text: title },
        legend: { position: "bottom", labels: { boxWidth: 12, filter: (item) => !item.text.startsWith("_") } },
        tooltip: { callbacks: { label: (ctx) => {
          const p = ctx.raw;
          return `${ctx.dataset.label}: ${fmt(p.y)}${p.layer ? " (" + p.layer + ")" : ""}`;
        } } },
      },
      scales: {
        x: { type: "linear", min: 0, max: 1, title: { display: true, text: "relative layer depth (0 = first, 1 = last)" } },
        y: { title: { display: true, text: yLabel } },
      },
    },
  });
}

// ------------------------------------------------------------------ the model page

async function showModel(model, params) {
  const body = document.getElementById("model-body");
  document.getElementById("model-title").textContent = model;
  body.textContent = "loading…";
  let detail;
  try {
    detail = await getJSON("/api/model?layers=0&id=" + encodeURIComponent(model));
  } catch (error) {
    body.textContent = "error: " + error.message;
    return;
  }
  const others = (params.get("with") || "").split(",").filter((m) => m && m !== model).slice(0, 3);
  const overlays = [];
  for (const other of others) {
    try { overlays.push([other, await getJSON("/api/model?layers=0&id=" + encodeURIComponent(other))]); }
    catch (error) { overlays.push([other, null]); }
  }
  body.textContent = "";
  const title = document.getElementById("model-title");
  title.textContent = model + " ";
  const badge = kindBadge(detail.metadata.kind);
  if (badge) title.append(badge);
  if (detail.simulated_datasets.length) {
    body.append(el("p", { class: "sim-note" }, simulatedBadge(),
                   ` ${detail.simulated_datasets.join(", ")}: simulated data (ranked apart from real data)`));
  }
  // metadata
  const meta = el("dl", { class: "meta-list" });
  const hidden = new Set(["model", "scored", "updated_at"]);
  for (const [key, value] of Object.entries(detail.metadata)) {
    if (hidden.has(key) || value === "" || value === null) continue;
    meta.append(el("dt", {}, key.replace(/_/g, " ")), el("dd", {}, fmt(value)));
  }
  body.append(el("h3", {}, "Metadata"), meta);

  // layer curves
  const curves = detail.curves || [];
  const columns = [...new Set(curves.map((c) => `${c.dataset}/${c.config}`))];
  body.append(el("h3", {}, "Score by layer depth"));
  if (!columns.length) {
    body.append(el("p", { class: "missing" }, "No per-layer scores stored for this model."));
  } else {
    const column = columns.includes(params.get("col")) ? params.get("col") : columns[0];
    const [dataset] = curves.find((c) => `${c.dataset}/${c.config}` === column) ? [curves.find((c) => `${c.dataset}/${c.config}` === column).dataset] : [""];
    const order = (detail.region_order || {})[dataset] || [];
    const present = [...new Set(curves.filter((c) => `${c.dataset}/${c.config}` === column).map((c) => c.region))];
    const regions = [...order.filter((r) => present.includes(r)), ...present.filter((r) => !order.includes(r))];
    let region = params.get("region") || (others.length ? regions[0] : "all");
    if (region !== "all" && !regions.includes(region)) region = regions[0];
    if (others.length && region === "all") region = regions[0];
    const controls = el("div", { class: "chart-controls" });
    const colSelect = el("select", { id: "curve-column" });
    columns.forEach((c) => colSelect.append(el("option", { value: c }, c)));
    colSelect.value = column;
    const regionSelect = el("select", { id: "curve-region" });
    if (!others.length) regionSelect.append(el("option", { value: "all" }, "all regions"));
    regions.forEach((r) => regionSelect.append(el("option", { value: r }, r)));
    regionSelect.value = region;
    const addSelect = el("select", { id: "curve-add" });
    addSelect.append(el("option", { value: "" }, others.length >= 3 ? "(4 models at most)" : "add a model…"));
    if (others.length < 3) {
      const names = (state.ranking ? state.ranking.rows.map((r) => r.model) : []).filter((m) => m !== model && !others.includes(m));
      [...new Set(names)].forEach((m) => addSelect.append(el("option", { value: m }, m)));
    }
    const go = (changes) => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
      location.hash = "#/model/" + encodeURIComponent(model) + "?" + p.toString();
    };
    colSelect.addEventListener("change", () => go({ col: colSelect.value }));
    regionSelect.addEventListener("change", () => go({ region: regionSelect.value }));
    addSelect.addEventListener("change", () => addSelect.value && go({ with: [...others, addSelect.value].join(","), region: region === "all" ? regions[0] : region }));
    controls.append(el("label", {}, "column ", colSelect), el("label", {}, "region ", regionSelect),
                    el("label", {}, "overlay ", addSelect));
    for (const other of others) {
      const remove = el("button", { type: "button", class: "chip", "data-remove": other }, other + " ✕");
      remove.addEventListener("click", () => go({ with: others.filter((m) => m !== other).join(",") }));
      controls.append(remove);
    }
    body.append(controls);
    const datasets = [];
    const pick = (rows) => rows.filter((c) => `${c.dataset}/${c.config}` === column);
    const points = (rows) => rows.filter((c) => c.score !== null && c.relative_depth !== null)
      .sort((a, b) => a.relative_depth - b.relative_depth)
      .map((c) => ({ x: c.relative_depth, y: c.score, layer: c.layer }));
    if (region === "all") {
      const colours = seriesColours(regions.length);
      regions.forEach((r, i) => datasets.push({ label: r, data: points(pick(curves).filter((c) => c.region === r)),
                                                borderColor: colours[i], backgroundColor: colours[i], pointRadius: 2, borderWidth: 1.5 }));
    } else {
      const mine = pick(curves).filter((c) => c.region === region);
      const low = Math.min(...mine.map((c) => c.ceiling_low).filter((v) => v !== null));
      const high = Math.max(...mine.map((c) => c.ceiling_high).filter((v) => v !== null));
      if (Number.isFinite(low) && Number.isFinite(high)) {
        const band = "rgba(120,120,120,0.25)";
        datasets.push({ label: "_ceiling low", data: [{ x: 0, y: low }, { x: 1, y: low }], borderColor: band,
                        borderDash: [4, 4], pointRadius: 0, borderWidth: 1, fill: false });
        datasets.push({ label: `ceiling (${fmt(low)}–${fmt(high)} over subjects)`, data: [{ x: 0, y: high }, { x: 1, y: high }],
                        borderColor: band, backgroundColor: band, borderDash: [4, 4], pointRadius: 0, borderWidth: 1, fill: "-1" });
      }
      const colours = seriesColours(1 + others.length);
      datasets.push({ label: model, data: points(mine), borderColor: colours[0], backgroundColor: colours[0], pointRadius: 2.5 });
      overlays.forEach(([name, other], i) => {
        if (!other) return;
        const rows = pick(other.curves || []).filter((c) => c.region === region);
        datasets.push({ label: name, data: points(rows), borderColor: colours[i + 1], backgroundColor: colours[i + 1], pointRadius: 2.5 });
      });
    }
    const canvas = el("canvas", { id: "curve-chart", "aria-label": `score by layer depth, ${column}` });
    body.append(el("div", { class: "chart-box" }, canvas));
    const chart = lineChart(canvas, datasets, "score (raw, mean over subjects)", `${column}${region === "all" ? "" : ", " + region}`);
    state.chart = chart;
    canvas.dataset.series = JSON.stringify(datasets.map((d) => d.label).filter((l) => !l.startsWith("_")));
  }

  // ROI x subject pivot of the summary rows, with their intervals
  body.append(el("h3", {}, "By region and subject"));
  const summary = detail.summary || [];
  const selections = [...new Set(summary.map((r) => r.selection))];
  if (!summary.length) body.append(el("p", { class: "missing" }, "No summary rows stored for this model."));
  const bySelection = (params.get("sel") && selections.includes(params.get("sel"))) ? params.get("sel") : null;
  for (const column of [...new Set(summary.map((r) => `${r.dataset}/${r.config}`))]) {
    const rows = summary.filter((r) => `${r.dataset}/${r.config}` === column);
    const have = [...new Set(rows.map((r) => r.selection))];
    const selection = bySelection && have.includes(bySelection) ? bySelection
      : (state.options ? state.options.headline_selections : ["heldout", "max"]).find((s) => have.includes(s)) || have[0];
    const chosen = rows.filter((r) => r.selection === selection);
    const dataset = chosen[0].dataset;
    const order = (detail.region_order || {})[dataset] || [];
    const present = [...new Set(chosen.map((r) => r.region))];
    const regions = [...order.filter((r) => present.includes(r)), ...present.filter((r) => !order.includes(r))];
    const subjects = [...new Set(chosen.map((r) => r.subject))].sort();
    const values = chosen.map((r) => r.score).filter((v) => typeof v === "number");
    const range = [Math.min(...values), Math.max(...values)];
    const table = el("table", { class: "pivot", "data-column": column });
    table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "region"),
                                   ...subjects.map((s) => el("th", { scope: "col" }, s)))));
    const tbody = el("tbody");
    for (const region of regions) {
      const tr = el("tr", {}, el("th", { scope: "row" }, region));
      for (const subject of subjects) {
        const r = chosen.find((x) => x.region === region && x.subject === subject);
        const td = colouredCell(r ? r.score : null, range, "num", []);
        if (r && r.ci_low !== null && r.ci_low !== undefined) td.append(el("span", { class: "ci" }, ` [${fmt(r.ci_low, 2)}, ${fmt(r.ci_high, 2)}]`));
        if (r) td.setAttribute("title", `layer ${r.layer}, depth ${fmt(r.relative_depth, 2)}, ceiling ${fmt(r.ceiling)}, normalised ${fmt(r.normalized)}`);
        tr.append(td);
      }
      tbody.append(tr);
    }
    table.append(tbody);
    const sim = detail.simulated_datasets.includes(dataset);
    body.append(el("h4", {}, column + ` (${selection} layer choice, raw score [CI])`, sim ? simulatedBadge() : null),
                el("div", { class: "table-wrap" }, table));
  }

  // provenance
  body.append(el("h3", {}, "Provenance"));
  body.append(simpleTable(detail.provenance.runs, ["id", "started_at", "status", "code_version", "git_revision", "host", "executor"], "runs"));
  body.append(simpleTable(detail.provenance.hashes, ["dataset", "config", "metric_hash", "weights_hash", "stimuli_hash", "data_hash", "feature_key", "runs", "updated_at"], "hashes"));
}

function simpleTable(rows, columns, name) {
  if (!rows || !rows.length) return el("p", { class: "missing" }, `No ${name}.`);
  const table = el("table", { class: "plain", "data-name": name });
  table.append(el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c.replace(/_/g, " "))))));
  const body = el("tbody");
  for (const row of rows) {
    body.append(el("tr", {}, ...columns.map((c) => el("td", { class: typeof row[c] === "number" ? "num" : "text" },
                                                    fmt(Array.isArray(row[c]) ? row[c].join(", ") : row[c], 2)))));
  }
  table.append(body);
  return el("div", { class: "table-wrap" }, table);
}

// ------------------------------------------------------------------ dataset page

async function showDataset(dataset) {
  const body = document.getElementById("dataset-body");
  const title = document.getElementById("dataset-title");
  title.textContent = dataset;
  body.textContent = "loading…";
  let detail;
  try {
    detail = await getJSON("/api/dataset?id=" + encodeURIComponent(dataset));
  } catch (error) {
    body.textContent = "error: " + error.message;
    return;
  }
  body.textContent = "";
  if (detail.simulated) {
    title.append(" ", simulatedBadge());
    body.append(el("p", { class: "sim-note" }, "Simulated data: ranked apart from real data, never averaged with it."));
  }
  const meta = el("dl", { class: "meta-list" });
  for (const key of ["description", "species", "modality", "kind", "n_stimuli", "citation", "licence", "plugin", "stimuli_hash", "data_hash"]) {
    const value = detail.metadata[key];
    if (value !== undefined && value !== null && value !== "") meta.append(el("dt", {}, key.replace(/_/g, " ")), el("dd", {}, fmt(value)));
  }
  meta.append(el("dt", {}, "regions"), el("dd", {}, detail.regions.join(", ")));
  body.append(meta);
  body.append(el("h3", {}, "Metric configurations scored"));
  const configs = detail.configs.map((c) => Object.assign({}, c, { parameters: c.parameters || "(defaults)" }));
  body.append(simpleTable(configs, ["config", "metric", "parameters", "version", "metric_hash", "selections", "n_models", "description", "citation"], "configurations"));
  body.append(el("h3", {}, "Ceiling per region"));
  if (!detail.ceilings.length) body.append(el("p", { class: "missing" }, "No ceiling stored for this dataset."));
  for (const config of [...new Set(detail.ceilings.map((c) => c.config))]) {
    const rows = detail.ceilings.filter((c) => c.config === config);
    const subjects = [...new Set(rows.map((r) => r.subject))].sort();
    const regions = detail.regions.filter((r) => rows.some((x) => x.region === r));
    const table = el("table", { class: "pivot ceilings", "data-config": config });
    table.append(el("thead", {}, el("tr", {}, el("th", {}, "region"), ...subjects.map((s) => el("th", {}, s)))));
    const tbody = el("tbody");
    for (const region of regions) {
      tbody.append(el("tr", {}, el("th", { scope: "row" }, region), ...subjects.map((s) => {
        const r = rows.find((x) => x.region === region && x.subject === s);
        const td = el("td", { class: "num" }, r ? fmt(r.ceiling) : "–");
        if (r && r.n_values > 1) td.setAttribute("title", `${r.n_values} different values stored; median shown`);
        return td;
      })));
    }
    table.append(tbody);
    body.append(el("h4", {}, config), el("div", { class: "table-wrap" }, table));
  }
}

// ------------------------------------------------------------------ runs page

async function showRuns() {
  const body = document.getElementById("runs-body");
  body.textContent = "loading…";
  try {
    const [runs, failures] = await Promise.all([getJSON("/api/runs"), getJSON("/api/failures")]);
    body.textContent = "";
    body.append(simpleTable(runs.rows.slice().reverse(), ["id", "started_at", "status", "seconds", "n_scores", "n_skipped", "n_failures",
      "seconds_model", "seconds_extraction", "seconds_scoring", "seconds_writing", "fits", "fits_per_second",
      "code_version", "git_revision", "host", "executor"], "runs"));
    body.append(el("h3", {}, `Failures (${failures.rows.length})`));
    const list = el("div", { class: "failures" });
    for (const f of failures.rows) {
      list.append(el("details", {}, el("summary", {}, `run ${f.run_id}, ${f.stage}: ${[f.model, f.dataset, f.metric].filter(Boolean).join(" / ")}: ${f.error_type}: ${f.message}`),
                     el("pre", {}, f.traceback || "(no traceback)")));
    }
    if (!failures.rows.length) list.append(el("p", { class: "meta" }, "No failure recorded."));
    body.append(list);
  } catch (error) {
    body.textContent = "error: " + error.message;
  }
}

// ------------------------------------------------------------------ compare view

async function showCompare(params) {
  const body = document.getElementById("compare-body");
  body.textContent = "loading…";
  if (!state.ranking) await loadRanking();
  const specs = [["mean", "mean"]];
  for (const c of state.ranking.column_info) {
    specs.push([c.key, c.title + (c.simulated ? " (simulated)" : "")]);
    for (const r of c.regions) specs.push([`${c.key}|${r}`, `${c.title}, ${r}`]);
  }
  const x = params.get("x") || (specs[1] || specs[0])[0];
  const y = params.get("y") || (specs[2] || specs[0])[0];
  body.textContent = "";
  const selects = ["x", "y"].map((axis) => {
    const select = el("select", { id: "compare-" + axis });
    specs.forEach(([value, label]) => select.append(el("option", { value }, label)));
    select.value = axis === "x" ? x : y;
    select.addEventListener("change", () => {
      const p = new URLSearchParams(apiParams());
      p.set("x", document.getElementById("compare-x").value);
      p.set("y", document.getElementById("compare-y").value);
      location.hash = "#/compare?" + p.toString();
    });
    return el("label", {}, axis + " ", select);
  });
  body.append(el("div", { class: "chart-controls" }, ...selects));
  const p = apiParams();
  p.set("x", x);
  p.set("y", y);
  let answer;
  try {
    answer = await getJSON("/api/compare?" + p.toString());
  } catch (error) {
    body.append(el("p", { class: "missing" }, "error: " + error.message));
    return;
  }
  const result = el("p", { id: "compare-result" },
    answer.n >= 3 ? `Spearman r = ${fmt(answer.spearman_r)} (p = ${answer.p_value.toExponential(1)}, n = ${answer.n} models)`
                  : `Spearman r needs at least 3 models with both values (n = ${answer.n}).`);
  body.append(result);
  const labelOf = (spec) => (specs.find(([v]) => v === spec) || [spec, spec])[1];
  if (answer.points.some((q) => q.data.includes("simulated"))) body.append(el("p", { class: "sim-note" }, simulatedBadge(), " simulated data in this comparison"));
  const canvas = el("canvas", { id: "compare-chart", "aria-label": "scatter" });
  body.append(el("div", { class: "chart-box square" }, canvas));
  if (typeof Chart !== "undefined") {
    // the report's palette (leaderboard/palette.py): colour = family, hollow = random,
    // grey diamond = baseline
    const groupOf = (q) => `${q.kind || "trained"}|${q.kind === "baseline" ? "" : (q.family || "")}`;
    const groups = [...new Set(answer.points.map(groupOf))];
    state.chart = new Chart(canvas, {
      type: "scatter",
      data: { datasets: groups.map((group) => {
        const [kind, family] = group.split("|");
        const look = modelLook(family, kind);
        return {
          label: kind === "baseline" ? "baseline" : `${family || "unknown family"}, ${kind}`,
          pointRadius: 4, pointStyle: look.shape, borderColor: look.edge, backgroundColor: look.fill,
          data: answer.points.filter((q) => groupOf(q) === group).map((q) => ({ x: q.x, y: q.y, model: q.model })),
        };
      }) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.raw.model}: (${fmt(ctx.raw.x)}, ${fmt(ctx.raw.y)})` } } },
        scales: { x: { title: { display: true, text: labelOf(x) } }, y: { title: { display: true, text: labelOf(y) } } },
      },
    });
  }
  body.append(simpleTable(answer.points.map((q) => ({ model: q.model, kind: q.kind, x: q.x, y: q.y })), ["model", "kind", "x", "y"], "points"));
}

// ------------------------------------------------------------------ routing

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== "view-" + name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  if (state.chart) { state.chart.destroy(); state.chart = null; }
  const { view, arg, params } = parseHash();
  if (view === "model" && arg) { showView("model"); await showModel(arg, params); return; }
  if (view === "dataset" && arg) { showView("dataset"); await showDataset(arg); return; }
  if (view === "runs") { showView("runs"); await showRuns(); return; }
  if (view === "compare") { showView("compare"); readRankingState(params); await showCompare(params); return; }
  showView("ranking");
  readRankingState(params);
  if (state.loadedKey !== apiParams().toString()) await loadRanking();
  else renderRanking();
}

async function main() {
  try {
    state.options = await getJSON("/api/options");
  } catch (error) {
    setStatus("error: " + error.message);
    return;
  }
  const o = state.options;
  document.getElementById("source").textContent =
    `${o.leaderboard}: ${o.n_models} models, ${o.n_scores} score rows` +
    (o.simulated_datasets.length ? ` (simulated datasets: ${o.simulated_datasets.join(", ")})` : "");
  buildFilters();
  if (window.innerWidth < 700) document.getElementById("filters").open = false;
  document.getElementById("f-search").addEventListener("input", (event) => {
    state.search = event.target.value;
    pushRankingState(false);
  });
  document.getElementById("reset-filters").addEventListener("click", () => {
    state.filters = {};
    state.search = "";
    pushRankingState(true);
  });
  document.getElementById("dl-csv").addEventListener("click", () => download("brainrank-ranking.csv", csvText(), "text/csv"));
  document.getElementById("dl-json").addEventListener("click", () => {
    const { records } = shownTable();
    const payload = { filters: state.filters, notes: state.ranking ? state.ranking.notes : [], rows: records };
    download("brainrank-ranking.json", JSON.stringify(payload, null, 1), "application/json");
  });
  window.addEventListener("hashchange", route);
  await route();
}

// tests/leaderboard/web/app_in_node.js loads this file without starting the page
if (!(typeof window !== "undefined" && window.BRAINRANK_NO_MAIN)) main();
