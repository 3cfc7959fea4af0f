// The console's shell: sign-in, the header, and the router from #/path to a view.
import { ApiError, forgetAnswers, resume, session, signIn, signOut } from "./api.js";
import { errorText, h, replace } from "./dom.js";
import { renderApplications } from "./views/applications.js";
import { renderApplication } from "./views/application.js";
import { renderApprovals } from "./views/approvals.js";
import { renderAudit } from "./views/audit.js";
import { renderClusters } from "./views/clusters.js";
import { renderFlowRun } from "./views/flowrun.js";
import { renderSudo } from "./views/sudo.js";

const ROUTES = [
  [/^#\/applications$/, renderApplications, "#/applications"],
  [/^#\/applications\/([a-z0-9-]+)\/([a-z0-9-]+)$/, renderApplication, "#/applications"],
  [/^#\/flowruns\/([a-z0-9-]+)\/([a-z0-9.-]+)$/, renderFlowRun, "#/applications"],
  [/^#\/approvals$/, renderApprovals, "#/approvals"],
  [/^#\/sudo$/, renderSudo, "#/sudo"],
  [/^#\/clusters$/, renderClusters, "#/clusters"],
  [/^#\/audit(?:\?requestId=([A-Za-z0-9._%-]+))?$/, renderAudit, "#/audit"],
];

const view = () => document.getElementById("view");
let dispose = () => {};

function showSignedIn(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  document.getElementById("who-name").textContent = signedIn
    ? `${session.user} (${session.groups.join(", ") || "no groups"})`
    : "";
}

function renderSignIn(message) {
  dispose();
  dispose = () => {};
  showSignedIn(false);
  document.title = "Sign in · Milkyway";
  const error = h("p", { class: "error", id: "sign-in-error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "sign-in-title" },
    h("div", { class: "field" },
      h("label", { for: "username" }, "User name"),
      h("input", { id: "username", name: "username", autocomplete: "username", required: true })),
    h("div", { class: "field" },
      h("label", { for: "password" }, "Password"),
      h("input", {
        id: "password", name: "password", type: "password",
        autocomplete: "current-password", required: true,
      })),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await signIn(form.username.value, form.password.value);
      forgetAnswers();
      if (!location.hash || location.hash === "#/signin") location.hash = "#/applications";
      else route();
    } catch (exc) {
      error.textContent = exc instanceof ApiError ? exc.message : errorText(exc);
    }
  });
  replace(view(), h("h1", { id: "sign-in-title" }, "Sign in to Milkyway"), form);
  form.username.focus();
}

// Focus moves to the new view when the user goes from one view to another (a screen
// reader reads it from its heading); a page just loaded keeps the browser's own start,
// so the first Tab reaches the "Skip to content" link.
let navigated = false;

async function route() {
  if (!session.user) {
    renderSignIn();
    return;
  }
  showSignedIn(true);
  const hash = location.hash || "#/applications";
  dispose();
  dispose = () => {};
  for (const [pattern, render, nav] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.getAttribute("href") === nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const container = view();
    replace(container, h("p", {}, "Loading…"));
    try {
      dispose = (await render(container, ...match.slice(1))) || (() => {});
    } catch (exc) {
      replace(container, h("h1", {}, "Something went wrong"),
        h("p", { class: "error", role: "alert" }, errorText(exc)));
    }
    if (navigated) container.focus({ preventScroll: true });
    navigated = true;
    return;
  }
  location.hash = "#/applications";
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", async () => {
    await signOut().catch(() => {});
    forgetAnswers();
    renderSignIn("You are signed out.");
  });
  window.addEventListener("milkyway:signed-out", () => {
    session.user = "";
    renderSignIn("Your session ended; sign in again.");
  });
  window.addEventListener("hashchange", route);
  try {
    await resume();
  } catch {
    session.user = "";
  }
  route();
}

start();
