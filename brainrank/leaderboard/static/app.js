// brainrank leaderboard page: plain JavaScript, no external resources.
"use strict";

const state = { rows: [], columns: [], groups: [], notes: [], sortKey: "rank", sortAsc: true,
                search: "" };
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (typeof value === "boolean") return value ? "trained" : "random";
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

function filterParams() {
  const params = new URLSearchParams();
  for (const select of document.querySelectorAll("#controls select")) {
    if (select.value) params.set(select.dataset.filter, select.value);
  }
  return params;
}

function fillSelect(id, values, keepAll) {
  const select = document.getElementById(id);
  if (!keepAll) select.textContent = "";
  for (const value of values) select.append(el("option", { value }, value));
}

async function loadOptions() {
  const options = await getJSON("/api/options");
  document.getElementById("source").textContent =
    `${options.leaderboard}: ${options.n_models} models, ${options.n_scores} score rows`;
  fillSelect("f-dataset", options.datasets, true);
  fillSelect("f-metric", options.metrics, true);
  fillSelect("f-config", options.configs || [], true);
  fillSelect("f-region", options.regions, true);
  fillSelect("f-family", options.families, true);
  const policies = options.selections.filter((s) => s !== "layer");
  const selection = document.getElementById("f-selection");
  selection.textContent = "";
  // the default is the ranking's headline: 'heldout' where the metric stores it, else 'max'
  selection.append(el("option", { value: "" }, "heldout, else max"));
  for (const value of policies) selection.append(el("option", { value }, value));
  selection.value = "";
}

async function loadRanking() {
  setStatus("loading…");
  try {
    const payload = await getJSON("/api/ranking?" + filterParams().toString());
    state.rows = payload.rows;
    state.columns = payload.columns;
    state.groups = payload.groups || [];
    state.notes = payload.notes || [];
    renderRanking();
  } catch (error) {
    state.rows = [];
    state.notes = [];
    renderRanking();
    setStatus("error: " + error.message);
  }
}

function visibleRows() {
  const needle = state.search.toLowerCase();
  const rows = state.rows.filter((row) => !needle || row.model.toLowerCase().includes(needle));
  const key = state.sortKey;
  const sign = state.sortAsc ? 1 : -1;
  return rows.slice().sort((a, b) => {
    if (key === "rank" && a.data !== b.data) return a.data === "real" ? -1 : 1;  // rankings apart
    const x = a[key];
    const y = b[key];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;  // missing values last, either direction
    if (y === null || y === undefined) return -1;
    if (typeof x === "number" && typeof y === "number") return sign * (x - y);
    return sign * String(x).localeCompare(String(y));
  });
}

function headerCells() {
  // real and simulated data are ranked apart: the data column says which ranking a row is in
  const data = state.groups.length > 1 ? [["data", "data"]] : [];
  const ci = state.groups.some((g) => g.with_ci) ? [["ci_low", "CI low"], ["ci_high", "CI high"]] : [];
  return [...data, ["rank", "rank"], ["model", "model"], ["family", "family"],
          ["trained", "training"], ...state.columns.map((c) => [c, c]), ["mean", "mean"], ...ci,
          ["n_cells", "cells"], ["n_missing", "missing"]];
}

function renderNotes() {
  const list = document.getElementById("notes");
  if (!list) return;
  list.textContent = "";
  for (const note of state.notes) list.append(el("li", {}, note));
}

function renderRanking() {
  const table = document.getElementById("ranking");
  const head = table.tHead.rows[0];
  head.textContent = "";
  for (const [key, label] of headerCells()) {
    const text = ["data", "model", "family", "trained"].includes(key);
    const th = el("th", { "data-key": key, class: text ? "text" : "", scope: "col" }, label);
    if (key === state.sortKey) th.setAttribute("aria-sort", state.sortAsc ? "ascending" : "descending");
    th.addEventListener("click", () => {
      if (state.sortKey === key) state.sortAsc = !state.sortAsc;
      else { state.sortKey = key; state.sortAsc = key === "rank" || text; }
      renderRanking();
    });
    head.append(th);
  }
  const body = table.tBodies[0];
  body.textContent = "";
  const rows = visibleRows();
  for (const row of rows) {
    const tr = el("tr", { "data-model": row.model });
    for (const [key] of headerCells()) {
      if (key === "model") {
        const button = el("button", { class: "model-link", type: "button" }, row.model);
        button.addEventListener("click", () => { location.hash = "model=" + encodeURIComponent(row.model); });
        tr.append(el("td", { class: "text" }, button));
      } else {
        const text = ["data", "family", "trained"].includes(key);
        tr.append(el("td", { class: text ? "text" : "" }, fmt(row[key])));
      }
    }
    body.append(tr);
  }
  renderNotes();
  setStatus(rows.length ? `${rows.length} models` : "no models match these filters");
}

// ------------------------------------------------------------------ model detail

function curveChart(title, series) {
  const width = 360, height = 220, left = 40, right = 10, top = 10, bottom = 30;
  const values = series.flatMap((s) => s.points.map((p) => p[1]));
  let low = Math.min(...values), high = Math.max(...values);
  if (!(high > low)) { low -= 0.5; high += 0.5; }
  const x = (d) => left + d * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": title });
  chart.append(svg("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#999" }));
  chart.append(svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#999" }));
  for (const tick of [0, 0.5, 1]) {
    const label = svg("text", { x: x(tick), y: height - 12, "font-size": 10, "text-anchor": "middle" });
    label.textContent = tick.toFixed(1);
    chart.append(label);
  }
  for (const value of [low, high]) {
    const label = svg("text", { x: left - 4, y: y(value) + 3, "font-size": 10, "text-anchor": "end" });
    label.textContent = value.toFixed(2);
    chart.append(label);
  }
  const axis = svg("text", { x: (left + width) / 2, y: height - 1, "font-size": 10, "text-anchor": "middle" });
  axis.textContent = "relative depth";
  chart.append(axis);
  series.forEach((s, i) => {
    const points = s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const line = svg("polyline", { points, fill: "none", stroke: COLOURS[i % COLOURS.length],
                                   "stroke-width": 1.6, class: "layer-curve", "data-region": s.name });
    const tip = svg("title");
    tip.textContent = s.name;
    line.append(tip);
    chart.append(line);
  });
  const legend = el("div", { class: "legend" });
  series.forEach((s, i) => legend.append(el("span", { style: `color:${COLOURS[i % COLOURS.length]}` }, "■ " + s.name)));
  return el("div", { class: "curve" }, el("h4", {}, title), chart, legend);
}

function layerSeries(layers) {
  // {dataset/metric: [{name: region, points: [[depth, mean score over subjects]]}]}
  const groups = new Map();
  for (const row of layers) {
    if (row.score === null || row.relative_depth === null) continue;
    const key = `${row.dataset} / ${row.config || row.metric}`;  // configurations apart
    if (!groups.has(key)) groups.set(key, new Map());
    const regions = groups.get(key);
    if (!regions.has(row.region)) regions.set(row.region, new Map());
    const depths = regions.get(row.region);
    const cell = depths.get(row.relative_depth) || [0, 0];
    depths.set(row.relative_depth, [cell[0] + row.score, cell[1] + 1]);
  }
  const out = new Map();
  for (const [key, regions] of groups) {
    out.set(key, [...regions].map(([name, depths]) => ({
      name,
      points: [...depths].map(([d, [sum, n]]) => [d, sum / n]).sort((a, b) => a[0] - b[0]),
    })));
  }
  return out;
}

async function showModel(model) {
  const panel = document.getElementById("detail");
  try {
    const detail = await getJSON("/api/model?id=" + encodeURIComponent(model));
    document.getElementById("detail-title").textContent = model;
    const meta = document.getElementById("detail-meta");
    meta.textContent = "";
    for (const key of ["family", "architecture", "task", "training_data", "trained", "n_params", "source", "weights_hash"]) {
      const value = detail.metadata[key];
      if (value !== null && value !== undefined) meta.append(el("dt", {}, key), el("dd", {}, fmt(value)));
    }
    const curves = document.getElementById("detail-curves");
    curves.textContent = "";
    const series = layerSeries(detail.layers);
    if (!series.size) curves.append(el("p", { class: "missing" }, "No per-layer scores stored for this model."));
    for (const [title, lines] of series) curves.append(curveChart(title, lines));
    const summary = document.getElementById("detail-summary");
    const columns = ["dataset", "config", "selection", "subject", "region", "layer", "relative_depth", "score", "normalized"];
    summary.tHead.textContent = "";
    summary.tHead.append(el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c))));
    summary.tBodies[0].textContent = "";
    for (const row of detail.summary) {
      summary.tBodies[0].append(el("tr", {}, ...columns.map((c) => el("td", { class: typeof row[c] === "number" ? "" : "text" }, fmt(row[c])))));
    }
    panel.hidden = false;
    panel.scrollIntoView({ block: "start" });
  } catch (error) {
    setStatus("error: " + error.message);
  }
}

function route() {
  const match = location.hash.match(/^#model=(.+)$/);
  if (match) showModel(decodeURIComponent(match[1]));
  else document.getElementById("detail").hidden = true;
}

async function main() {
  try {
    await loadOptions();
  } catch (error) {
    setStatus("error: " + error.message);
    return;
  }
  for (const select of document.querySelectorAll("#controls select")) {
    select.addEventListener("change", loadRanking);
  }
  document.getElementById("f-search").addEventListener("input", (event) => {
    state.search = event.target.value;
    renderRanking();
  });
  document.getElementById("close-detail").addEventListener("click", () => { location.hash = ""; });
  window.addEventListener("hashchange", route);
  await loadRanking();
  route();
}

main();
