// The hub's JSON API as the console uses it: same origin, the API key (when there is one) in the
// Authorization header only, never in a URL, a query string or the browser's console.

const KEY_STORAGE = "inferencehub.apiKey";
export const STATUS_TIMEOUT_MS = 4000;

export const state = {
  status: null, // the last /v1/status answer
  key: sessionStorage.getItem(KEY_STORAGE) || "",
};

// What the panels ask of the page around them (console.js fills these in).
export const hooks = {
  render: () => {}, // draw every panel again from state.status
  unauthorized: (message) => {}, // the hub refused the key, or wants one
};

export function setKey(key) {
  state.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  state.key = "";
  sessionStorage.removeItem(KEY_STORAGE);
}

export class HubError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// A request to the hub with the key (if any) as a Bearer token. Resolves with the decoded JSON
// and the response; a non-2xx answer throws HubError carrying the server's own message; a
// network failure throws a TypeError (fetch's) or a timeout DOMException.
export async function api(path, { method = "GET", body, type, timeout = STATUS_TIMEOUT_MS } = {}) {
  const headers = { accept: "application/json" };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  if (type) headers["content-type"] = type;
  const response = await fetch(path, {
    method,
    body,
    headers,
    cache: "no-store",
    signal: AbortSignal.timeout(timeout),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // not JSON (a proxy's page): the status line says enough
  }
  if (!response.ok) {
    const message = (data && data.error) || text.trim() || response.statusText;
    throw new HubError(response.status, message);
  }
  return { data, response };
}

export const enc = encodeURIComponent;

export function findModel(name) {
  return (state.status?.models || []).find((m) => m.name === name);
}
