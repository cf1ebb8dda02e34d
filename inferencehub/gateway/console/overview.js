// Overview: the facts of `inferencehub status` (processes, models and their routing, traffic per
// version with sparklines, the door), redrawn from each /v1/status answer.

import { $, HISTORY, byVersion, bytes, clock, duration, el, fmt } from "./dom.js";
import { ms, percent, setText, sparkline, stateClass, syncRows, words } from "./dom.js";

// "model/version" -> {requests, at, history}: rates computed here when the server sends no history.
const counts = new Map();

export function renderOverview(s) {
  setText($("hub-version"), s.version ? `v${s.version}` : "");
  const supervisor = (s.processes || []).find((p) => p.role === "supervisor");
  setText($("hub-uptime"), duration(supervisor?.uptime_s ?? s.uptime_s));
  const worker = $("hub-worker");
  setText(worker, s.worker_serving ? "serving" : "not serving");
  worker.className = s.worker_serving ? "ok" : "bad";
  setText($("hub-updated"), clock(new Date()));

  syncRows(
    $("processes").tBodies[0],
    s.processes || [],
    (p) => p.role,
    (p) => [
      p.role,
      { text: p.pid ?? "–", cls: "num" },
      { text: p.state, cls: stateClass(p.state) },
      { text: duration(p.uptime_s), cls: "num" },
      { text: p.restarts ?? "–", cls: p.restarts ? "num warn" : "num" },
      { text: bytes(p.rss_bytes), cls: "num" },
      { text: p.cpu_percent == null ? "–" : `${Math.round(p.cpu_percent)}%`, cls: "num" },
      p.last_exit || "–",
    ],
  );

  const rows = [];
  const notes = [];
  for (const model of s.models || []) {
    const routing = model.routing || {};
    (model.versions || []).forEach((v, i) => rows.push({ model, routing, v, first: i === 0 }));
    if (routing.canary) notes.push(`${model.name}: ${describeCanary(routing.canary)}`);
    if (routing.shadow?.version) {
      notes.push(
        `${model.name}: ${percent(routing.shadow.fraction)} mirrored to version ` +
          routing.shadow.version,
      );
    }
  }
  syncRows(
    $("models").tBodies[0],
    rows,
    (r) => `${r.model.name}/${r.v.version}`,
    (r) => [
      { text: r.first ? r.model.name : "", cls: "name" },
      r.v.version + (r.v.version === r.model.default_version ? " *" : ""),
      { text: r.v.state, cls: stateClass(r.v.state) },
      String(r.v.provider || "–").replace(/ExecutionProvider$/, ""),
      routeOf(r.routing, r.v.version, r.model.default_version).join(", "),
      { text: r.v.error || "", cls: "bad" },
    ],
  );
  const noteList = $("model-notes");
  const noteText = notes.join("\n");
  if (noteList.dataset.text !== noteText) {
    noteList.dataset.text = noteText;
    noteList.replaceChildren(...notes.map((n) => el("li", { text: n })));
  }

  renderTraffic(s.traffic || []);
  renderDoor(s.door || {});
  renderWorkers(s.workers || []);
}

// How requests reach `version`: weight, labels, default, shadow, canary (as status_view.py).
export function routeOf(routing, version, defaultVersion) {
  const split = routing.split || {};
  const route = version in split ? [`${split[version]}%`] : [];
  for (const [label, target] of Object.entries(routing.labels || {})) {
    if (target === version) route.push(label);
  }
  if (!Object.keys(split).length && version === defaultVersion) route.push("default");
  const shadow = routing.shadow || {};
  const canary = routing.canary || {};
  if (shadow.version === version) route.push(`shadow ${percent(shadow.fraction, 0)}`);
  if (canary.version === version) {
    const at = route.indexOf("canary");
    if (at >= 0) route.splice(at, 1); // the rollout's own label: said once, with its step
    if (canary.state === "RUNNING") {
      route.push(`canary step ${(canary.step ?? 0) + 1}/${(canary.ramp || []).length}`);
    } else {
      route.push(`canary ${words(canary.state)}`);
    }
  }
  return route;
}

function describeCanary(c) {
  const head = `canary ${c.version ?? "-"} vs ${c.baseline ?? "-"}: `;
  if (c.state !== "RUNNING") {
    return `${head}${words(c.state)}: ${c.reason || ""}`;
  }
  return (
    `${head}at ${c.percent ?? "-"} % (step ${(c.step ?? 0) + 1}/${(c.ramp || []).length}, ` +
    `${c.every_s ?? "-"} s each; budgets: errors <= ${percent(c.max_error_rate)}, ` +
    `p99 <= x${c.max_p99_ratio ?? "-"})`
  );
}

// Per-second request counts of a version: the server's own history when it sends one, else
// rates computed here from the cumulative counter between two polls.
function historyOf(t) {
  const key = `${t.name}/${t.version}`;
  const now = performance.now();
  const seen = counts.get(key);
  const entry = { requests: t.requests || 0, at: now, history: seen ? seen.history : [] };
  if (seen && now > seen.at) {
    const rate = Math.max(0, (entry.requests - seen.requests) / ((now - seen.at) / 1000));
    entry.history = [...seen.history, rate].slice(-HISTORY);
  }
  counts.set(key, entry);
  return Array.isArray(t.requests_history) ? t.requests_history : entry.history;
}

function renderTraffic(traffic) {
  const sorted = [...traffic].sort(
    (a, b) => String(a.name).localeCompare(String(b.name)) || byVersion(a.version, b.version),
  );
  const histories = sorted.map(historyOf);
  syncRows(
    $("traffic").tBodies[0],
    sorted.map((t, i) => ({ t, history: histories[i] })),
    ({ t }) => `${t.name}/${t.version}`,
    ({ t, history }) => {
      const idle = t.requests_per_s === 0; // nothing in the last 10 s to measure
      const recent = idle ? {} : t.recent_latency || {};
      const errorRate = idle ? null : t.recent_error_rate;
      return [
        { text: t.name, cls: "name" },
        t.version,
        { text: fmt(t.requests_per_s), cls: "num" },
        { text: ms(recent.p50_ms), cls: "num" },
        { text: ms(recent.p95_ms), cls: "num" },
        { text: ms(recent.p99_ms), cls: "num" },
        { text: percent(errorRate), cls: errorRate ? "num bad" : "num" },
        { text: idle ? "–" : fmt(t.avg_batch_size), cls: "num" },
        { text: t.queue_depth ?? "–", cls: "num" },
        { text: t.requests ?? "–", cls: "num" },
        { text: t.errors ?? "–", cls: t.errors ? "num bad" : "num" },
        { spark: history, cls: "spark-cell" },
      ];
    },
  );
  $("traffic-empty").hidden = traffic.length > 0;
  const total = traffic.reduce((sum, t) => sum + (t.requests_per_s || 0), 0);
  setText($("total-rate"), fmt(total));
  const requests = traffic.reduce((sum, t) => sum + (t.requests || 0), 0);
  setText($("total-requests"), requests);
  const summed = new Array(HISTORY).fill(0);
  for (const history of histories) {
    history.slice(-HISTORY).forEach((v, i, h) => {
      summed[HISTORY - h.length + i] += v;
    });
  }
  sparkline($("total-spark"), summed, HISTORY, 32);
}

function renderDoor(door) {
  const facts = [
    ["auth", door.auth ? `on, ${door.keys ?? 0} active keys` : "off (no API keys)"],
    ["rate limit", door.rate_limit_per_s ? `${door.rate_limit_per_s}/s` : "none"],
    ["in flight", `${door.in_flight ?? "–"} / ${door.max_in_flight ?? "–"}`],
    ["rate-limited", door.rate_limited ?? "–"],
    ["refused, no key", door.unauthenticated ?? "–"],
  ];
  const dl = $("door");
  if (!dl.children.length) {
    for (const [name] of facts) dl.append(el("div", {}, [el("dt", { text: name }), el("dd")]));
  }
  facts.forEach(([, value], i) => setText(dl.children[i].lastChild, value));
}

function renderWorkers(workers) {
  // One local worker is the usual case and says nothing the processes table does not.
  const shown = workers.length > 1 || workers.some((w) => !String(w.address).startsWith("unix:"));
  $("workers-block").hidden = !shown;
  if (!shown) return;
  syncRows(
    $("workers").tBodies[0],
    workers,
    (w) => w.name,
    (w) => [
      w.name,
      { text: w.address, cls: "mono" },
      { text: w.serving ? "up" : "DOWN", cls: w.serving ? "ok" : "bad" },
      { text: w.outstanding ?? "–", cls: "num" },
      (w.models || []).join(", "),
    ],
  );
}
