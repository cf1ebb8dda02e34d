// InferenceHub console: one page over the hub's own JSON API (same origin, no libraries, no
// build step). This module owns the page around the panels: the poll loop, the connection strip,
// the API key form and the tabs.
//
// Data flow: poll() asks GET v1/status once a second, one request at a time, and each panel
// (overview.js, try.js, routing.js) updates the elements already on the page from the answer.

import { $, clock, setText } from "./dom.js";
import { HubError, api, forgetKey, hooks, setKey, state } from "./hub.js";
import { renderOverview } from "./overview.js";
import { renderRouting } from "./routing.js";
import { renderTry, setupTry } from "./try.js";

const POLL_MS = 1000;
const LOCKED_POLL_MS = 5000; // waiting for a key: ask less often (each try is a refusal)

let conn = "wait"; // wait | live | offline | locked | error
let offlineSince = null;

function render() {
  renderOverview(state.status);
  renderTry(state.status);
  renderRouting(state.status);
}

async function poll() {
  let next = POLL_MS;
  try {
    const { data } = await api("v1/status");
    state.status = data;
    setConn("live");
    render();
  } catch (error) {
    if (error instanceof HubError && (error.status === 401 || error.status === 403)) {
      if (error.status === 401 && state.key) {
        forgetKey(); // refused: never send it again
        showKeyState();
      }
      openKeyPanel(error.message);
      setConn("locked", error.message);
      if (!state.key) next = LOCKED_POLL_MS;
    } else if (error instanceof HubError) {
      setConn("error", `the hub answered ${error.status}: ${error.message}`);
    } else {
      setConn("offline");
    }
  }
  clearTimeout(poll.timer);
  poll.timer = setTimeout(poll, next);
}

// The strip under the header: same height in every state, so nothing below it moves.
function setConn(kind, detail = "") {
  if (kind === "offline" && conn !== "offline") offlineSince = new Date();
  conn = kind;
  const text = {
    wait: "connecting…",
    live: "live: refreshed every second",
    offline:
      `Cannot reach the hub at ${location.host} since ${clock(offlineSince)}; ` +
      "retrying every second. The data below is the last received.",
    locked: `Waiting for an API key. The hub said: ${detail}`,
    error: `The hub is up but failing: ${detail}`,
  }[kind];
  $("conn").className = `conn conn-${kind}`;
  document.title = kind === "live" || kind === "wait" ? "InferenceHub" : `InferenceHub (${kind})`;
  setText($("conn-text"), text);
  // The last data stays, dimmed, while the hub cannot be reached.
  $("main").classList.toggle("stale", kind === "offline" && state.status !== null);
}

// The API key: asked for in a form (not a prompt), kept in sessionStorage by hub.js.
function openKeyPanel(reason) {
  const panel = $("key-panel");
  setText($("key-reason"), reason);
  if (panel.hidden) {
    panel.hidden = false;
    $("key-button").setAttribute("aria-expanded", "true");
    $("key-input").focus();
  }
}

function closeKeyPanel() {
  $("key-panel").hidden = true;
  $("key-button").setAttribute("aria-expanded", "false");
}

function showKeyState() {
  setText($("key-button"), state.key ? "API key: set" : "API key: none");
}

function setupKey() {
  showKeyState();
  $("key-button").addEventListener("click", () =>
    $("key-panel").hidden ? openKeyPanel("") : closeKeyPanel(),
  );
  $("key-close").addEventListener("click", closeKeyPanel);
  $("key-forget").addEventListener("click", () => {
    forgetKey();
    showKeyState();
    $("key-input").value = "";
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    setKey(key);
    $("key-input").value = "";
    showKeyState();
    closeKeyPanel();
    poll(); // at once, not at the next tick
  });
}

// Tabs, as the WAI-ARIA tabs pattern has them: arrow keys, Home and End move between them;
// the URL's fragment remembers the one shown.
function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", `#${tab.id.replace("tab-", "")}`);
  };
  for (const tab of tabs) tab.addEventListener("click", () => select(tab, false));
  document.querySelector('[role="tablist"]').addEventListener("keydown", (event) => {
    const at = tabs.indexOf(document.activeElement);
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 };
    if (at < 0 || !(event.key in moves)) return;
    event.preventDefault();
    select(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
  });
  const initial = $(`tab-${location.hash.slice(1)}`);
  if (initial && tabs.includes(initial)) select(initial, false);
}

hooks.render = render;
hooks.unauthorized = openKeyPanel;
setupTabs();
setupKey();
setupTry();
poll();
