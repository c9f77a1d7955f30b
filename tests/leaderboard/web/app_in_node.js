// Loads static/app.js in Node with a minimal DOM (without starting the page), gives it the
// answers of a live `brainrank serve`, and prints what the page's own functions make of
// them as JSON: the leaf columns (collapsed, then a column expanded by region and subject),
// the sorted and searched rows, one rendered table (header keys, cells, flag markers) and
// the CSV download. Used by test_app_node.py, also where no browser is installed.
// Usage: node app_in_node.js APP_JS BASE_URL
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
    this.className = "";
    this.dataset = {};
    this._text = "";
    const self = this;
    this.classList = { add(c) { self.className = (self.className + " " + c).trim(); } };
  }
  setAttribute(key, value) { this.attributes[key] = String(value); }
  getAttribute(key) { return this.attributes[key]; }
  addEventListener() {}
  append(...nodes) { for (const n of nodes) this.children.push(n); }
  prepend(...nodes) { this.children.unshift(...nodes); }
  set textContent(text) { this.children = []; this._text = String(text); }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(""); }
  all(tag) {  // every descendant with this tag, in document order
    const out = [];
    for (const c of this.children) {
      if (c instanceof Element) { if (c.tagName === tag) out.push(c); out.push(...c.all(tag)); }
    }
    return out;
  }
}
class Text extends Node {
  constructor(text) { super(); this.textContent = text; }
}

const byId = {};
const document = {
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => new Text(text),
  getElementById: (id) => (byId[id] = byId[id] || new Element("div")),
  querySelectorAll: () => [],
};
const context = { document, window: { BRAINRANK_NO_MAIN: true }, Node, URLSearchParams, console,
                  location: { hash: "" }, history: { replaceState() {} } };
vm.createContext(context);
vm.runInContext(fs.readFileSync(appPath, "utf8"), context);

(async () => {
  const get = async (path) => (await fetch(base + path)).json();
  context.options = await get("/api/options");
  context.ranking = await get("/api/ranking");
  const out = vm.runInContext(`
    state.options = options;
    state.ranking = ranking;
    const collapsed = leafColumns("real").map((l) => l.key);
    const first = ranking.column_info.find((c) => c.data === "real");
    state.expanded.add(first.key);
    state.expanded.add(first.key + "|" + first.regions[0]);
    const expanded = leafColumns("real").map((l) => [l.type, l.label]);
    state.sortKey = "mean"; state.sortAsc = false;
    const byMean = visibleRows("real", leafColumns("real")).map((r) => r.model);
    state.search = "random";
    const searched = visibleRows("real", leafColumns("real")).map((r) => r.model);
    state.search = ""; state.sortKey = "rank"; state.sortAsc = true;
    state.expanded.clear();
    // a flag the ranking attaches to a cell is shown as a marker with its text
    const row = ranking.rows.find((r) => r.data === "real");
    row.cells[first.key].flags = ["raw score: no usable ceiling"];
    const rendered = renderTable("real", ranking.groups[0]);
    const head = rendered.table.all("th").map((th) => th.getAttribute("data-key")).filter(Boolean);
    const marked = rendered.table.all("td").filter((td) => (td.getAttribute("title") || "").includes("no usable ceiling"));
    state.shown = [{ group: "real", rows: rendered.rows, leaves: rendered.leaves }];
    JSON.stringify({ collapsed, expanded, byMean, searched, head, marked: marked.length,
                     markedText: marked.map((td) => td.textContent), csv: csvText(),
                     firstModel: row.model, firstKey: first.key });
  `, context);
  process.stdout.write(out);
})().catch((error) => { console.error(error); process.exit(1); });
