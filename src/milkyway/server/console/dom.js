// Building DOM without HTML strings: text is always text, never markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// Like replace, for views redrawn on every event: when the new children render the same
// markup, the old ones stay, so a link the user is about to click is not swapped under
// the pointer (and focus and selection stay) while nothing visible changed.
export function update(node, ...children) {
  // A child already in the page would be moved out of it by the comparison.
  if (children.flat(Infinity).some((c) => c instanceof Node && c.isConnected)) {
    return replace(node, ...children);
  }
  const next = document.createElement(node.tagName);
  append(next, children);
  if (next.innerHTML === node.innerHTML) return node;
  node.replaceChildren(...next.childNodes);
  return node;
}

const TONES = {
  Ready: "ok", Running: "ok", Healthy: "ok", Succeeded: "ok", True: "ok", reachable: "ok",
  Approved: "ok",
  Provisioning: "info", Updating: "info", Pending: "info", Waiting: "warn", Paused: "warn",
  Degraded: "warn", Unknown: "muted", Skipped: "muted", Cancelled: "muted",
  Failed: "bad", Unhealthy: "bad", False: "bad", unreachable: "bad", Deleting: "warn",
  Rejected: "bad",
};

// A state as coloured text: the word is always there, the colour only repeats it.
export function badge(text, tone) {
  const word = text || "Unknown";
  return h("span", { class: `badge ${tone || TONES[word] || "muted"}` }, word);
}

export function announce(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

export function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function duration(start, end) {
  if (!start) return "";
  const seconds = Math.max(0, (end || Date.now() / 1000) - start);
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}

export function errorText(error) {
  return error && error.message ? error.message : String(error);
}
