// The applications table: every Application the user may list, live from the event
// streams of Applications and FlowRuns, with search and filters.
import { follow, get, listAll } from "../api.js";
import { announce, badge, errorText, h, replace } from "../dom.js";

const PHASES = ["", "Pending", "Provisioning", "Running", "Updating", "Degraded", "Failed", "Deleting"];

export function key(obj) {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
}

export function componentsOf(app) {
  return (app.spec && app.spec.components) || [];
}

function progressCell(app, runs) {
  const status = app.status || {};
  const name = status.currentFlow;
  if (!name) return h("span", { class: "muted" }, "none");
  const run = runs.get(`${app.metadata.namespace}/${name}`);
  const text = run && run.progress ? run.progress : "";
  const [done, total] = text.split("/").map((n) => parseInt(n, 10));
  return h("span", {},
    h("a", { href: `#/flowruns/${app.metadata.namespace}/${name}` }, name),
    " ",
    run ? badge(run.phase) : "",
    Number.isFinite(done) && Number.isFinite(total) && total > 0
      ? [" ", h("progress", { max: total, value: done, "aria-label": `${name} progress` }),
        ` ${done}/${total} steps`]
      : "");
}

function row(app, runs) {
  const status = app.status || {};
  const health = status.health ? status.health.status : "";
  const components = componentsOf(app);
  return h("tr", { dataset: { key: key(app) } },
    h("td", {}, app.metadata.namespace),
    h("td", {}, h("a", { href: `#/applications/${app.metadata.namespace}/${app.metadata.name}` },
      app.metadata.name)),
    h("td", {}, badge(status.phase || "Pending")),
    h("td", {}, health ? badge(health) : h("span", { class: "muted" }, "no report yet")),
    h("td", {}, status.readyMembers || ""),
    h("td", {}, components.map((c) => c.name).join(", ")),
    h("td", {}, components.map((c) => `${c.name} ${c.version}`).join(", ")),
    h("td", {}, progressCell(app, runs)));
}

function summary(run) {
  return {
    name: run.metadata ? run.metadata.name : run.name,
    phase: run.status ? run.status.phase || "Pending" : run.phase,
    progress: run.status ? run.status.progress || "" : run.progress,
  };
}

export async function renderApplications(container) {
  const apps = new Map();
  const runs = new Map();
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let namespace = sessionStorage.getItem("milkyway.namespace") || params.get("namespace") || "";
  const search = h("input", { id: "search", type: "search", placeholder: "name, component, version" });
  const nsInput = h("input", { id: "namespace", value: namespace, placeholder: "every namespace" });
  const phase = h("select", { id: "phase" }, PHASES.map((p) => h("option", { value: p }, p || "any")));
  const count = h("p", { id: "count", "aria-live": "polite" });
  const body = h("tbody");
  const error = h("p", { class: "error", role: "alert" });
  const table = h("table", { "aria-describedby": "count" },
    h("caption", { class: "visually-hidden" }, "Applications"),
    h("thead", {}, h("tr", {},
      ["Namespace", "Name", "Phase", "Health", "Ready", "Components", "Versions", "Running flow"]
        .map((t) => h("th", { scope: "col" }, t)))),
    body);

  function matches(app) {
    const text = search.value.trim().toLowerCase();
    if (phase.value && ((app.status || {}).phase || "Pending") !== phase.value) return false;
    if (!text) return true;
    const hay = [app.metadata.namespace, app.metadata.name,
      ...componentsOf(app).flatMap((c) => [c.name, c.version])].join(" ").toLowerCase();
    return hay.includes(text);
  }

  const rows = new Map();
  let shownCount = 0;
  function draw() {
    const shown = [...apps.values()].filter(matches)
      .sort((a, b) => key(a).localeCompare(key(b)));
    rows.clear();
    replace(body, shown.map((app) => {
      const tr = row(app, runs);
      rows.set(key(app), tr);
      return tr;
    }));
    shownCount = shown.length;
    count.textContent = `${shownCount} of ${apps.size} Applications`;
  }

  // One Application changed: redraw its row alone (a full redraw of 1,000 rows per event
  // would cost the page most of a second). A row that appears or disappears redraws all.
  function update(k) {
    const app = apps.get(k);
    const old = rows.get(k);
    const wanted = app !== undefined && matches(app);
    if (old && wanted) {
      const tr = row(app, runs);
      old.replaceWith(tr);
      rows.set(k, tr);
    } else if (old || wanted) {
      draw();
    }
    count.textContent = `${shownCount} of ${apps.size} Applications`;
  }

  async function load() {
    error.textContent = "";
    apps.clear();
    runs.clear();
    try {
      for (const app of await listAll("/applications", { namespace })) apps.set(key(app), app);
      const namespaces = new Set([...apps.values()].filter((a) => (a.status || {}).currentFlow)
        .map((a) => a.metadata.namespace));
      for (const ns of namespaces) {
        for (const run of await get(`/namespaces/${ns}/flowruns`)) {
          runs.set(`${ns}/${run.name}`, summary(run));
        }
      }
    } catch (exc) {
      error.textContent = `${errorText(exc)}${exc.status === 403 && !namespace
        ? " — enter a namespace you may read" : ""}`;
    }
    draw();
  }

  let closers = [];
  function listen() {
    closers.forEach((close) => close());
    closers = [
      follow("/events/applications", { namespace }, (type, app) => {
        if (type === "DELETED") apps.delete(key(app));
        else apps.set(key(app), app);
        update(key(app));
        announce(`${app.metadata.name} ${type === "DELETED" ? "removed" : (app.status || {}).phase || ""}`);
      }, load),
      follow("/events/flowruns", { namespace }, (type, run) => {
        const k = key(run);
        if (type === "DELETED") runs.delete(k);
        else runs.set(k, summary(run));
        for (const app of apps.values()) {
          if (app.metadata.namespace === run.metadata.namespace
            && (app.status || {}).currentFlow === run.metadata.name) update(key(app));
        }
      }),
    ];
  }

  search.addEventListener("input", draw);
  phase.addEventListener("change", draw);
  nsInput.addEventListener("change", async () => {
    namespace = nsInput.value.trim();
    sessionStorage.setItem("milkyway.namespace", namespace);
    await load();
    listen();
  });
  replace(container,
    h("h1", {}, "Applications"),
    h("div", { class: "filters", role: "search" },
      h("div", {}, h("label", { for: "search" }, "Search"), search),
      h("div", {}, h("label", { for: "namespace" }, "Namespace"), nsInput),
      h("div", {}, h("label", { for: "phase" }, "Phase"), phase)),
    error, count, table);
  await load();
  listen();
  return () => closers.forEach((close) => close());
}
