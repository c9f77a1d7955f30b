// Runs static/app.js in Node against a live `brainrank serve` with a minimal DOM, then
// prints what the page shows (header keys, rows, notes, status) as JSON. Used by
// test_app_node.py where no browser is installed. Usage: node app_in_node.js APP_JS BASE_URL
"use strict";
const fs = require("fs");
const vm = require("vm");

const [appPath, base] = process.argv.slice(2);

class Node {}
class Element extends Node {
  constructor(tag) {
    super();
    this.tagName = tag;
    this.children = [];
    this.attributes = {};
    this.listeners = {};
    this.className = "";
    this.value = "";
    this.hidden = false;
    this.dataset = {};
    this._text = "";
  }
  setAttribute(key, value) { this.attributes[key] = String(value); }
  getAttribute(key) { return this.attributes[key]; }
  addEventListener(kind, fn) { (this.listeners[kind] = this.listeners[kind] || []).push(fn); }
  append(...nodes) { for (const n of nodes) this.children.push(n); }
  scrollIntoView() {}
  set textContent(text) { this.children = []; this._text = String(text); }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }
}
class Text extends Node {
  constructor(text) { super(); this.textContent = text; }
}

function table() {
  const t = new Element("table");
  const head = new Element("thead");
  const row = new Element("tr");
  head.rows = [row];
  head.append(row);
  t.tHead = head;
  t.tBodies = [new Element("tbody")];
  return t;
}

const byId = {};
for (const id of ["status", "source", "notes", "detail", "detail-title", "detail-meta",
                  "detail-curves", "close-detail", "f-search"]) byId[id] = new Element("div");
byId.ranking = table();
byId["detail-summary"] = table();
const selects = [];
for (const [id, filter] of [["f-dataset", "dataset"], ["f-metric", "metric"], ["f-config", "config"],
                            ["f-region", "region"], ["f-family", "family"], ["f-trained", "trained"],
                            ["f-selection", "selection"], ["f-value", "value"]]) {
  const select = new Element("select");
  select.dataset.filter = filter;
  byId[id] = select;
  selects.push(select);
}
byId["f-value"].value = "auto";

const document = {
  createElement: (tag) => new Element(tag),
  createElementNS: (_, tag) => new Element(tag),
  createTextNode: (text) => new Text(text),
  getElementById: (id) => byId[id] || null,
  querySelectorAll: (selector) => (selector === "#controls select" ? selects : []),
};
const window = { addEventListener() {} };
const context = {
  document, window, Node, URLSearchParams, console,
  location: { hash: "" },
  fetch: (url) => fetch(base + url),
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(appPath, "utf8"), context);

async function settle() {
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (byId.status.textContent !== "loading…" && byId.ranking.tBodies[0].children.length) break;
  }
}

(async () => {
  await settle();
  const head = byId.ranking.tHead.rows[0].children.map((th) => th.getAttribute("data-key"));
  const rows = byId.ranking.tBodies[0].children.map((tr) => tr.children.map((td) => td.textContent));
  const notes = byId.notes.children.map((li) => li.textContent);
  const selection = byId["f-selection"].children.map((o) => o.getAttribute("value"));
  const configs = byId["f-config"].children.map((o) => o.getAttribute("value"));
  process.stdout.write(JSON.stringify({ head, rows, notes, status: byId.status.textContent,
                                        selection, configs }));
})();
