// Small DOM and formatting helpers shared by the console's panels. Rendering rewrites only what
// changed, so a refresh every second neither moves the layout nor loses focus or selection.

export const HISTORY = 60; // seconds of requests per second a sparkline shows
const SVG = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

export function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export function setText(el, text) {
  const value = String(text ?? "");
  if (el.textContent !== value) el.textContent = value;
}

export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Rows of `tbody` to match `items`: a row per key, reused across refreshes; `cellsOf` gives each
// cell as text or {text, cls} or {spark: values}.
export function syncRows(tbody, items, keyOf, cellsOf) {
  const old = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  items.forEach((item, i) => {
    const key = keyOf(item);
    let row = old.get(key);
    old.delete(key);
    if (!row) row = el("tr", { dataset: { key } });
    const cells = cellsOf(item);
    while (row.cells.length < cells.length) row.insertCell();
    cells.forEach((spec, j) => setCell(row.cells[j], spec));
    if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
  });
  for (const row of old.values()) row.remove();
}

export function setCell(td, spec) {
  const cell = spec !== null && typeof spec === "object" ? spec : { text: spec };
  const { text = "", cls = "", spark, node } = cell;
  if (spark) sparkline(td, spark);
  else if (node) {
    if (td.firstChild !== node) td.replaceChildren(node);
  } else setText(td, text);
  if (td.className !== cls) td.className = cls;
}

// Bars of requests per second as one SVG path (attributes only: the CSP allows no inline style).
export function sparkline(container, values, width = HISTORY, height = 20) {
  let chart = container.querySelector("svg");
  if (!chart) {
    chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      class: "spark",
      role: "img",
    });
    chart.append(svg("title"), svg("path"));
    container.replaceChildren(chart);
  }
  const series = values.slice(-width);
  const peak = Math.max(0, ...series);
  const offset = width - series.length;
  let d = "";
  series.forEach((v, i) => {
    const h = v > 0 && peak > 0 ? Math.max(2, (v / peak) * height) : 0.6; // 0: a hairline
    d += `M${offset + i + 0.1} ${height}h0.8v${-h.toFixed(2)}h-0.8z`;
  });
  chart.lastChild.setAttribute("d", d);
  const label = `requests per second over the last minute; peak ${fmt(peak, 1)}/s`;
  chart.setAttribute("aria-label", label);
  setText(chart.firstChild, label);
}

export function fmt(value, digits = 1) {
  return value === null || value === undefined || Number.isNaN(value)
    ? "–"
    : Number(value).toFixed(digits);
}

export function ms(value) {
  return value === null || value === undefined ? "–" : fmt(value, value >= 100 ? 0 : 1);
}

export function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

export function bytes(value) {
  if (value === null || value === undefined) return "–";
  const gib = 1 << 30;
  return value >= gib ? `${(value / gib).toFixed(1)}G` : `${Math.round(value / (1 << 20))}M`;
}

export function clock(date) {
  return date ? date.toLocaleTimeString([], { hour12: false }) : "–";
}

// Version "10" after "9": numbers in numeric order, labels after them.
export function byVersion(a, b) {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return String(a).localeCompare(String(b));
}

export const stateClass = (s) =>
  ({ running: "ok", READY: "ok", failed: "bad", FAILED: "bad" })[s] || "warn";

// ROLLED_BACK -> "rolled back".
export function words(state) {
  return String(state || "-")
    .toLowerCase()
    .replace(/_/g, " ");
}
