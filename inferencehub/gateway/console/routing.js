// Routing: each model's split, labels, shadow and canary (its step, budgets and last decision),
// and the changes a key that may make them can ask for: a new split, a promotion, a reset.

import { HubError, api, enc, findModel, hooks, state } from "./hub.js";
import { $, byVersion, clock, el, ms, percent, setText, stateClass, svg, words } from "./dom.js";

const cards = new Map(); // model -> {card, versions, dirty}

export function renderRouting(s) {
  const container = $("routing-models");
  const names = new Set();
  for (const model of s.models || []) {
    names.add(model.name);
    let entry = cards.get(model.name);
    const versions = (model.versions || []).map((v) => v.version).join(",");
    if (!entry || entry.versions !== versions) {
      const card = buildRoutingCard(model);
      if (entry) entry.card.replaceWith(card);
      else container.append(card);
      entry = { card, versions, dirty: false };
      cards.set(model.name, entry);
    }
    updateRoutingCard(entry, model, s.traffic || []);
  }
  for (const [name, entry] of cards) {
    if (!names.has(name)) {
      entry.card.remove();
      cards.delete(name);
    }
  }
}

function buildRoutingCard(model) {
  const id = `route-${model.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  // With one version there is nothing to split or promote: the card only tells the policy.
  const editable = (model.versions || []).length > 1;
  const rows = (model.versions || []).map((v, i) => {
    // data-label: the column's name, shown beside each value when a phone stacks the row.
    const swatch = svg("svg", { viewBox: "0 0 10 10", class: "swatch", "aria-hidden": "true" });
    swatch.append(svg("rect", { width: 10, height: 10, rx: 2, class: `seg seg-${i % 4}` }));
    const cells = [
      el("th", { scope: "row", "data-label": "version" }, [swatch, v.version]),
      el("td", { class: "state", "data-label": "state" }),
      el("td", { class: "num now", "data-label": "split now" }),
      el("td", { class: "labels", "data-label": "labels" }),
      el("td", { class: "num served", "data-label": "served" }),
      el("td", { class: "num p99", "data-label": "p99 ms" }),
    ];
    if (editable) {
      const input = el("input", {
        type: "number",
        min: "0",
        max: "100",
        step: "any",
        inputmode: "decimal",
        class: "weight",
        id: `${id}-w-${v.version}`,
        "aria-label": `new weight of version ${v.version}`,
        dataset: { version: v.version },
      });
      const promote = el("button", {
        type: "button",
        class: "ghost promote",
        text: `Promote ${v.version}`,
        "aria-label": `Promote version ${v.version} of ${model.name}: all traffic, label stable`,
        dataset: { version: v.version },
      });
      cells.push(el("td", { "data-label": "new split" }, [input]), el("td", {}, [promote]));
    }
    return el("tr", { dataset: { key: v.version } }, cells);
  });
  const head = ["version", "state", "split now", "labels", "served", "p99 ms"];
  if (editable) head.push("new split", "");
  const headers = head.map((h, i) =>
    el("th", { scope: "col", class: [2, 4, 5].includes(i) ? "num" : "", text: h }),
  );
  const table = el("table", { class: "grid routing-table" }, [
    el("thead", {}, [el("tr", {}, headers)]),
    el("tbody", {}, rows),
  ]);
  // aria-hidden: the "split" line below says the same in words.
  const bar = svg("svg", {
    viewBox: "0 0 100 6",
    preserveAspectRatio: "none",
    class: "split-bar",
    "aria-hidden": "true",
  });
  const card = el("article", { class: "route-card", id, "aria-labelledby": `${id}-title` }, [
    el("h3", { id: `${id}-title` }, [model.name, el("span", { class: "muted small summary" })]),
    bar,
    el("dl", { class: "kv policy" }),
    el("div", { class: "table-wrap" }, [table]),
  ]);
  if (editable) {
    card.append(
      el("div", { class: "row actions" }, [
        el("button", { type: "button", class: "apply", text: "Apply split" }),
        el("button", { type: "button", class: "ghost reset", text: "Reset to model.toml" }),
      ]),
      el("p", { class: "error", role: "alert", hidden: "" }),
      el("p", { class: "done", role: "status" }),
    );
    card.addEventListener("input", () => {
      cards.get(model.name).dirty = true;
    });
    card.querySelector(".apply").addEventListener("click", () => applySplit(model.name, card));
    card
      .querySelector(".reset")
      .addEventListener("click", () =>
        changeRouting(model.name, card, { reset: true }, "reset to model.toml"),
      );
    for (const button of card.querySelectorAll(".promote")) {
      button.addEventListener("click", () => promote(model.name, card, button.dataset.version));
    }
  }
  return card;
}

function updateRoutingCard(entry, model, traffic) {
  const { card } = entry;
  const routing = model.routing || {};
  const split = routing.split || {};
  const hasSplit = Object.keys(split).length > 0;
  const sticky = routing.sticky ? "sticky" : "not sticky";
  const fallback = model.default_version || "none ready";
  setText(card.querySelector(".summary"), ` default ${fallback} · ${sticky}`);
  const versions = (model.versions || []).map((v) => v.version);
  const weights = versions.map((v) =>
    hasSplit ? split[v] || 0 : v === model.default_version ? 100 : 0,
  );
  drawSplit(card.querySelector(".split-bar"), weights);

  const canary = routing.canary;
  const splitText = hasSplit
    ? Object.entries(split)
        .sort((a, b) => byVersion(a[0], b[0]))
        .map(([v, w]) => `${v}: ${w} %`)
        .join(" · ")
    : `none (all to the default, ${fallback})`;
  const labels = Object.entries(routing.labels || {});
  const shadow = routing.shadow?.version
    ? `${percent(routing.shadow.fraction)} mirrored to ${routing.shadow.version}`
    : "none";
  const facts = [
    ["split", splitText],
    ["labels", labels.map(([l, v]) => `${l} → ${v}`).join(" · ") || "none"],
    ["shadow", shadow],
    ["canary", canary ? rollout(canary) : "none"],
  ];
  if (canary) {
    const budgets =
      `errors ≤ ${percent(canary.max_error_rate)}, p99 ≤ x${canary.max_p99_ratio ?? "-"} ` +
      `the baseline's, at least ${canary.min_requests ?? "-"} requests a step`;
    const when = canary.updated_ms ? clock(new Date(canary.updated_ms)) : "–";
    const decision =
      canary.state === "RUNNING"
        ? `step ${(canary.step ?? 0) + 1} began at ${when}`
        : `${words(canary.state)} at ${when}: ${canary.reason || "no reason given"}`;
    facts.push(["budgets", budgets], ["last decision", decision]);
  }
  const dl = card.querySelector(".policy");
  if (dl.children.length !== facts.length) {
    dl.replaceChildren(...facts.map(() => el("div", {}, [el("dt"), el("dd")])));
  }
  facts.forEach(([name, value], i) => {
    setText(dl.children[i].firstChild, name);
    setText(dl.children[i].lastChild, value);
  });

  const served = new Map(traffic.filter((t) => t.name === model.name).map((t) => [t.version, t]));
  const total = [...served.values()].reduce((sum, t) => sum + (t.requests || 0), 0);
  (model.versions || []).forEach((v, i) => {
    const row = card.querySelector(`tr[data-key="${CSS.escape(v.version)}"]`);
    if (!row) return;
    const stateCell = row.querySelector(".state");
    setText(stateCell, v.state);
    stateCell.className = `state ${stateClass(v.state)}`;
    const now = hasSplit ? `${weights[i]} %` : weights[i] ? "default" : "–";
    setText(row.querySelector(".now"), now);
    const mine = labels.filter(([, target]) => target === v.version).map(([l]) => l);
    setText(row.querySelector(".labels"), mine.join(", "));
    const t = served.get(v.version);
    const share = t && total ? ` (${percent(t.requests / total, 0)})` : "";
    setText(row.querySelector(".served"), t ? `${t.requests}${share}` : "0");
    setText(row.querySelector(".p99"), ms(t?.latency?.p99_ms));
    const input = row.querySelector("input.weight");
    // A refresh never overwrites what the user is typing.
    if (input && !entry.dirty && document.activeElement !== input) {
      input.value = String(weights[i]);
    }
  });
}

// A rollout in a line; its budgets and last decision have lines of their own.
function rollout(c) {
  const head = `${c.version ?? "-"} vs ${c.baseline ?? "-"}`;
  if (c.state !== "RUNNING") return `${head}: ${words(c.state)}`;
  const steps = (c.ramp || []).map((p) => `${p} %`).join(" → ");
  return (
    `${head}: at ${c.percent ?? "-"} %, step ${(c.step ?? 0) + 1} of ${steps}, ` +
    `${c.every_s ?? "-"} s each`
  );
}

// The split as a stacked bar: one segment per version, coloured by its position.
function drawSplit(bar, weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  const key = weights.join(",");
  if (bar.dataset.key === key) return;
  bar.dataset.key = key;
  let x = 0;
  const segments = weights.map((w, i) => {
    const width = total > 0 ? (w / total) * 100 : 0;
    const rect = svg("rect", { x, width, height: 6, class: `seg seg-${i % 4}` });
    x += width;
    return rect;
  });
  bar.replaceChildren(...segments);
}

function applySplit(name, card) {
  const split = {};
  for (const input of card.querySelectorAll("input.weight")) {
    const weight = Number(input.value || 0);
    if (weight > 0) split[input.dataset.version] = weight;
  }
  const routing = findModel(name)?.routing || {};
  // PUT replaces the whole policy: keep labels and shadow, as `inferencehub route` does. A new
  // split ends a running canary (it would fight the change).
  const body = { split, labels: routing.labels || {}, sticky: true };
  if (routing.shadow?.version) body.shadow = routing.shadow;
  const described = Object.entries(split)
    .map(([v, w]) => `${v}: ${w} %`)
    .join(", ");
  changeRouting(name, card, body, `split set to ${described || "nothing"}`);
}

function promote(name, card, version) {
  const routing = findModel(name)?.routing || {};
  const body = {
    split: { [version]: 100 },
    labels: { ...(routing.labels || {}), stable: version },
    sticky: true,
  };
  if (routing.shadow?.version) body.shadow = routing.shadow;
  changeRouting(name, card, body, `version ${version} promoted: all traffic, labelled stable`);
}

async function changeRouting(name, card, body, done) {
  const error = card.querySelector(".error");
  const ok = card.querySelector("p.done");
  error.hidden = true;
  setText(ok, "Applying…");
  try {
    const { data } = await api(`v1/models/${enc(name)}/routing`, {
      method: "PUT",
      body: JSON.stringify(body),
      type: "application/json",
    });
    // The answer is the model with its new policy: show it now, not at the next poll.
    const models = state.status?.models || [];
    const at = models.findIndex((m) => m.name === name);
    if (at >= 0 && data && data.routing) models[at] = { ...models[at], ...data };
    cards.get(name).dirty = false;
    setText(ok, `Done at ${clock(new Date())}: ${done}.`);
    hooks.render();
  } catch (failure) {
    setText(ok, "");
    const message =
      failure instanceof HubError
        ? `Refused (${failure.status}): ${failure.message}`
        : `No answer from the hub (${failure.message}); nothing may have changed.`;
    setText(error, message);
    error.hidden = false;
    if (failure instanceof HubError && failure.status === 401) hooks.unauthorized(failure.message);
  }
}
