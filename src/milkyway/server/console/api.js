// The console's only way to the server: the public REST API under /api/v1 and its
// server-sent event streams. The session lives in an HttpOnly cookie the page cannot read;
// writes carry the CSRF token that sign-in answered, kept only in this module's memory.

const API = "/api/v1";
let csrfToken = "";
export const session = { user: "", groups: [], method: "" };

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  get fieldErrors() {
    return this.problem.errors || [];
  }
}

function remember(answer) {
  session.user = answer.user;
  session.groups = answer.groups;
  session.method = answer.method;
  csrfToken = answer.csrfToken;
}

export async function request(method, path, { body, params } = {}) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    if (response.status === 401 && path !== "/session") {
      window.dispatchEvent(new CustomEvent("milkyway:signed-out"));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, body, params) => request("POST", path, { body, params });

export async function signIn(username, password) {
  remember(await request("POST", "/session", { body: { username, password } }));
}

export async function resume() {
  remember(await request("GET", "/session"));
}

export async function signOut() {
  try {
    await request("DELETE", "/session");
  } finally {
    csrfToken = "";
    session.user = "";
    session.groups = [];
  }
}

// Every page of a list (the API pages with `continue`).
export async function listAll(path, params = {}) {
  const items = [];
  let next = "";
  do {
    const page = await get(path, { ...params, limit: 500, continue: next });
    items.push(...page.items);
    next = page.continue;
  } while (next);
  return items;
}

// "May I?" answered by the management cluster for the signed-in user
// (a SelfSubjectAccessReview through the server), remembered for this page.
const answers = new Map();
export async function mayI(verb, namespace, resource = "applications") {
  const key = `${verb}/${namespace}/${resource}`;
  if (!answers.has(key)) {
    answers.set(
      key,
      post("/access-review", { verb, namespace, resource }).then((a) => a.allowed, () => false),
    );
  }
  return answers.get(key);
}
export function forgetAnswers() {
  answers.clear();
}

// Follow a server-sent event stream; `onEvent(type, object)` for ADDED/MODIFIED/DELETED.
// The browser reconnects by itself after a drop; `onOpen` runs at each (re)connection so a
// view can reload what it may have missed. Returns a function that closes the stream.
// A reload whose answer is applied only if no later reload was started meanwhile: two
// events in quick succession start two reloads, and a slow first answer arriving after
// the second must not put the page back on the older state (a finished run would stay
// shown as running, with no event left to correct it).
export function latestOnly(load, apply) {
  let started = 0;
  return async (...args) => {
    const mine = ++started;
    const value = await load(...args);
    if (mine === started) apply(value);
  };
}

export function follow(path, params, onEvent, onOpen) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value) url.searchParams.set(key, value);
  }
  const source = new EventSource(url, { withCredentials: true });
  let opened = false;
  source.onopen = () => {
    if (opened && onOpen) onOpen();
    opened = true;
  };
  for (const type of ["ADDED", "MODIFIED", "DELETED"]) {
    source.addEventListener(type, (event) => onEvent(type, JSON.parse(event.data)));
  }
  return () => source.close();
}
