// Try a model: an image (dropped or chosen) or JSON tensors to a model, default routing or one
// version; the answer's top classes (or outputs), the version that answered and the latency.

import { HubError, api, enc, findModel, hooks, state } from "./hub.js";
import { $, el, ms, percent, setText, svg, syncRows } from "./dom.js";

const PREDICT_TIMEOUT_MS = 120000;
let chosenFile = null; // the image last chosen, sent again when the version changes
let tensorFor = ""; // the model/version the tensor template was written for

// The version whose signature the form shows: the one picked, or the default's for routing.
function chosenVersion() {
  const model = findModel($("try-model").value);
  if (!model) return null;
  const wanted = $("try-version").value || model.default_version;
  return (model.versions || []).find((v) => v.version === wanted) || model.versions?.[0] || null;
}

export function renderTry(s) {
  const select = $("try-model");
  const names = (s.models || []).map((m) => m.name);
  if (select.dataset.names !== names.join("\n")) {
    const keep = select.value;
    select.dataset.names = names.join("\n");
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    if (names.includes(keep)) select.value = keep;
  }
  const model = findModel(select.value);
  const versionSelect = $("try-version");
  const options = model
    ? (model.versions || []).map((v) => [v.version, `${v.version} (${v.state})`])
    : [];
  const signature = `${select.value}|${options.map((o) => o[1]).join("|")}`;
  if (versionSelect.dataset.signature !== signature) {
    const keep = versionSelect.value;
    versionSelect.dataset.signature = signature;
    versionSelect.replaceChildren(
      el("option", { value: "", text: "default routing" }),
      ...options.map(([value, text]) => el("option", { value, text })),
    );
    if (options.some(([value]) => value === keep)) versionSelect.value = keep;
  }
  showInputKind();
}

// An image model gets the drop zone; any other shows its signature and takes JSON tensors.
function showInputKind() {
  const version = chosenVersion();
  if (!version) return;
  const image = Boolean(version.image);
  $("try-image").hidden = !image;
  $("try-tensor").hidden = image;
  const kind = image
    ? "takes an image: the hub decodes and preprocesses it"
    : "takes tensors: write them as JSON below";
  setText($("try-kind"), `Version ${version.version} ${kind}.`);
  if (image) return;
  const rows = [
    ...(version.inputs || []).map((t) => ["input", t]),
    ...(version.outputs || []).map((t) => ["output", t]),
  ];
  syncRows(
    $("signature").tBodies[0],
    rows,
    ([io, t]) => `${io}/${t.name}`,
    ([io, t]) => [io, { text: t.name, cls: "mono" }, t.datatype, `[${t.shape.join(", ")}]`],
  );
  const key = `${$("try-model").value}/${version.version}`;
  if (tensorFor !== key) {
    tensorFor = key;
    $("tensor-json").value = tensorTemplate(version.inputs || []);
  }
}

// A request body the user can edit: each -1 becomes 1 (the batch) or 32, filled with zeros.
function tensorTemplate(inputs) {
  const tensors = inputs.map((t) => {
    const shape = t.shape.map((d, i) => (d >= 0 ? d : i === 0 ? 1 : 32));
    const count = shape.reduce((a, b) => a * b, 1);
    const zero = t.datatype === "BYTES" ? "" : t.datatype === "BOOL" ? false : 0;
    const data = count <= 16384 ? new Array(count).fill(zero) : [];
    return { name: t.name, datatype: t.datatype, shape, data };
  });
  return JSON.stringify({ inputs: tensors });
}

function predictPath() {
  const model = enc($("try-model").value);
  const version = $("try-version").value;
  return version
    ? `v1/models/${model}/versions/${enc(version)}/predict`
    : `v1/models/${model}/predict`;
}

// Nothing of an earlier answer stays beside a new request's outcome.
function clearAnswer(status) {
  setText($("try-status"), status);
  for (const id of ["try-error", "try-meta", "topk", "outputs", "steps"]) $(id).hidden = true;
}

async function predict(body, type) {
  const result = $("try-result");
  result.setAttribute("aria-busy", "true");
  clearAnswer("Sending…");
  const started = performance.now();
  try {
    const { data, response } = await api(predictPath(), {
      method: "POST",
      body,
      type,
      timeout: PREDICT_TIMEOUT_MS,
    });
    showAnswer(data, response, performance.now() - started);
  } catch (error) {
    const message =
      error instanceof HubError
        ? `${error.status}: ${error.message}`
        : `no answer from the hub (${error.message})`;
    setText($("try-error"), message);
    $("try-error").hidden = false;
    setText($("try-status"), "The request failed.");
    if (error instanceof HubError && error.status === 401) hooks.unauthorized(error.message);
  } finally {
    result.setAttribute("aria-busy", "false");
  }
}

function showAnswer(data, response, elapsed) {
  setText($("try-status"), `Answered by ${data.model_name ?? $("try-model").value}.`);
  $("try-meta").hidden = false;
  setText($("try-answered"), data.version ?? response.headers.get("x-model-version") ?? "–");
  setText($("try-latency"), `${ms(elapsed)} ms round trip`);
  const t = data.timing || {};
  const parts = [
    ["queue", t.queue_ms],
    ["pre", t.preprocess_ms],
    ["inference", t.inference_ms],
    ["post", t.postprocess_ms],
  ].filter(([, v]) => v !== undefined);
  setText($("try-timing"), parts.map(([n, v]) => `${n} ${ms(v)}`).join(" · ") + " ms");
  setText($("try-request-id"), data.request_id ?? "–");

  const top = (data.classifications || [])[0] || [];
  $("topk").hidden = top.length === 0;
  syncRows(
    $("topk").tBodies[0],
    top.map((c, i) => ({ ...c, rank: i + 1 })),
    (c) => String(c.rank),
    (c) => [
      { text: c.rank, cls: "num" },
      { text: c.label ?? `class ${c.index}`, cls: "label" },
      { text: percent(c.score), cls: "num" },
      { node: scoreBar(c.score), cls: "bar-col" },
    ],
  );
  // Outputs of a classifier are its 1000 logits: the table above says it better.
  const outputs = top.length ? [] : data.outputs || [];
  $("outputs").hidden = outputs.length === 0;
  syncRows(
    $("outputs").tBodies[0],
    outputs,
    (o) => o.name,
    (o) => [
      { text: o.name, cls: "mono" },
      o.datatype,
      `[${(o.shape || []).join(", ")}]`,
      { text: preview(o.data), cls: "mono data" },
    ],
  );
  const steps = data.steps || [];
  $("steps").hidden = steps.length === 0;
  syncRows(
    $("steps").tBodies[0],
    steps,
    (st) => st.name,
    (st) => [st.name, { text: ms(st.ms), cls: "num" }, { text: st.items ?? "", cls: "num" }],
  );
}

function scoreBar(score) {
  const bar = svg("svg", {
    viewBox: "0 0 100 8",
    preserveAspectRatio: "none",
    class: "score-bar",
    "aria-hidden": "true",
  });
  bar.append(svg("rect", { width: Math.max(0.5, Math.min(1, score || 0) * 100), height: 8 }));
  return bar;
}

function preview(values) {
  const flat = (values || []).flat(Infinity);
  const shown = flat.slice(0, 16).map((v) => (typeof v === "number" ? +v.toPrecision(4) : v));
  const text = flat.every((v) => typeof v === "string") ? shown.join(" · ") : shown.join(", ");
  return flat.length > 16 ? `${text} … (${flat.length} values)` : text || "(empty)";
}

function sendFile(file) {
  if (!file) return;
  chosenFile = file;
  const img = $("try-preview");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file); // blob: is the one image source besides the hub
  img.hidden = false;
  setText($("drop").querySelector(".drop-title"), `${file.name}: drop or choose another`);
  predict(file, file.type || "application/octet-stream");
}

export function setupTry() {
  $("try-model").addEventListener("change", () => {
    $("try-version").value = "";
    chosenFile = null;
    clearAnswer("Pick a model and give it an input.");
    if (state.status) renderTry(state.status);
  });
  $("try-version").addEventListener("change", () => {
    showInputKind();
    if (chosenFile && !$("try-image").hidden) sendFile(chosenFile); // same image, new version
  });
  $("try-file").addEventListener("change", (event) => sendFile(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    sendFile(event.dataTransfer.files[0]);
  });
  $("tensor-send").addEventListener("click", () => {
    const text = $("tensor-json").value;
    try {
      JSON.parse(text);
    } catch (error) {
      setText($("try-error"), `not JSON: ${error.message}`);
      $("try-error").hidden = false;
      return;
    }
    predict(text, "application/json");
  });
}
