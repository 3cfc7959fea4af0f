// One Application: its topology across regions, zones, clusters and members; components;
// conditions; flow history; health reports, notifications sent and Events; and the
// day-2 forms the user may use. Live from the streams.
import { follow, get, latestOnly, mayI } from "../api.js";
import { badge, h, replace, update } from "../dom.js";
import { day2Forms } from "./forms.js";
import { loadReports } from "./reports.js";

function zonesOf(component) {
  return (component.regions || []).flatMap((r) =>
    (r.zones || []).map((z) => ({ region: r.name, zone: z.name, size: z.size })));
}

function clusterState(cluster) {
  if (!cluster) return badge("no cluster", "bad");
  if (cluster.reachable === false) return badge("unreachable");
  if (cluster.reachable === true) return badge("reachable");
  return badge("Unknown");
}

// Members of a component in a zone, with what the status says of each: its pod, node,
// readiness and version as the operator last saw them, the stable identities, and the
// health report's findings about a member.
function members(app, component, zone) {
  const status = app.status || {};
  const zoneStatus = ((status.components || {})[component.name] || { zones: {} }).zones[zone.zone] || {};
  const ids = (((status.members || {})[component.name] || { zones: {} }).zones[zone.zone] || {}).ids || [];
  const findings = ((status.health || {}).findings || [])
    .filter((f) => f.component === component.name && f.zone === zone.zone && f.member);
  const pods = zoneStatus.pods || [];
  const items = pods.map((pod) => {
    const finding = findings.find((f) => f.member === pod.name);
    let state;
    if (finding) state = badge(finding.severity === "Unhealthy" ? "Failed" : "Degraded");
    else state = badge(pod.ready ? "Ready" : "Not ready", pod.ready ? "ok" : "warn");
    return h("li", { class: "member", dataset: { member: pod.name } },
      h("span", {}, pod.name), " ", state,
      pod.version ? ` version ${pod.version}` : "",
      h("span", { class: "node" }, pod.node ? ` on node ${pod.node}` : " not scheduled"),
      finding ? h("span", { class: "muted" }, ` — ${finding.check}: ${finding.observed}`) : "");
  });
  const missing = Math.max(0, (zoneStatus.desired ?? zone.size ?? 0) - pods.length);
  if (missing) {
    items.push(h("li", { class: "member missing" },
      badge("Pending", "warn"), ` ${missing} member(s) without a pod yet`));
  }
  if (ids.length) {
    items.push(h("li", { class: "muted" }, `identities ${ids.join(", ")}`));
  }
  return { zoneStatus, items };
}

function topology(app, clustersByZone) {
  const regions = new Map();
  for (const component of (app.spec || {}).components || []) {
    for (const zone of zonesOf(component)) {
      if (!regions.has(zone.region)) regions.set(zone.region, new Map());
      const zones = regions.get(zone.region);
      if (!zones.has(zone.zone)) zones.set(zone.zone, []);
      zones.get(zone.zone).push({ component, zone });
    }
  }
  return h("div", { class: "topology", id: "topology" }, h("ul", {},
    [...regions].map(([region, zones]) => h("li", { dataset: { region } },
      h("strong", {}, `Region ${region}`),
      h("ul", {}, [...zones].map(([zoneName, entries]) => {
        const cluster = clustersByZone.get(zoneName);
        return h("li", { dataset: { zone: zoneName } },
          `Zone ${zoneName} — cluster `, h("strong", {}, cluster ? cluster.name : "none"), " ",
          clusterState(cluster),
          h("ul", {}, entries.map(({ component, zone }) => {
            const { zoneStatus, items } = members(app, component, zone);
            return h("li", { dataset: { component: component.name } },
              h("strong", {}, component.name), " ",
              `${zoneStatus.ready ?? 0}/${zoneStatus.desired ?? zone.size} ready`,
              zoneStatus.updated !== undefined ? `, ${zoneStatus.updated} updated` : "",
              h("ul", {}, items));
          })));
      }))))));
}

function componentsTable(app) {
  return h("table", { id: "components" },
    h("caption", { class: "visually-hidden" }, "Components"),
    h("thead", {}, h("tr", {}, ["Component", "Type", "Version", "Profile", "Parameters", "Zones"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ((app.spec || {}).components || []).map((c) => h("tr", {},
      h("td", {}, c.name),
      h("td", {}, c.type || "(from the name)"),
      h("td", {}, c.version),
      h("td", {}, c.config || "default"),
      h("td", {}, Object.entries(c.params || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") || "—"),
      h("td", {}, zonesOf(c).map((z) => `${z.zone}: ${z.size}`).join(", "))))));
}

// Ready and ClustersReachable are good when True; the others (Degraded, MemberLost,
// FlowFailed, ApprovalPending, …) report a problem or a wait when True.
const GOOD_WHEN_TRUE = ["Ready", "ClustersReachable"];
function conditionTone(condition) {
  if (GOOD_WHEN_TRUE.includes(condition.type)) return condition.status === "True" ? "ok" : "bad";
  return condition.status === "True" ? "warn" : "muted";
}

function conditionsTable(app) {
  const conditions = (app.status || {}).conditions || [];
  if (!conditions.length) return h("p", { class: "muted" }, "No conditions reported yet.");
  return h("table", { id: "conditions" },
    h("caption", { class: "visually-hidden" }, "Conditions"),
    h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, conditions.map((c) => h("tr", {},
      h("td", {}, c.type), h("td", {}, badge(c.status, conditionTone(c))), h("td", {}, c.reason || ""),
      h("td", {}, c.message || ""), h("td", {}, c.lastTransitionTime || "")))));
}

function historyTable(namespace, runs) {
  if (!runs.length) return h("p", { class: "muted" }, "No flow has run yet.");
  return h("table", { id: "flow-history" },
    h("caption", { class: "visually-hidden" }, "Flow history"),
    h("thead", {}, h("tr", {}, ["Run", "Flow", "Target", "Phase", "Progress"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, [...runs].reverse().map((r) => h("tr", {},
      h("td", {}, h("a", { href: `#/flowruns/${namespace}/${r.name}` }, r.name)),
      h("td", {}, r.flow), h("td", {}, r.target), h("td", {}, badge(r.phase)),
      h("td", {}, r.progress)))));
}

export async function renderApplication(container, namespace, name) {
  document.title = `${name} · Milkyway`;
  let app = await get(`/namespaces/${namespace}/applications/${name}`);
  let runs = await get(`/namespaces/${namespace}/flowruns`, { application: name });
  const clustersByZone = new Map();
  const loadClusters = async () => {
    try {
      for (const c of await get("/clusters")) clustersByZone.set(c.zone, c);
    } catch { /* a user without the catalog role sees no cluster names */ }
  };
  await loadClusters();
  const [mayUpdate, mayDelete] = await Promise.all([
    mayI("update", namespace), mayI("delete", namespace)]);

  const head = h("div");
  const live = h("div");
  function draw() {
    const status = app.status || {};
    update(head,
      h("h1", {}, `${namespace}/${name}`),
      h("div", { class: "panel", id: "summary" },
        "Phase ", badge(status.phase || "Pending"), " · Health ",
        status.health ? badge(status.health.status) : h("span", { class: "muted" }, "no report yet"),
        ` · Ready members ${status.readyMembers || "0/0"}`,
        " · Running flow ",
        status.currentFlow
          ? h("a", { href: `#/flowruns/${namespace}/${status.currentFlow}` }, status.currentFlow)
          : h("span", { class: "muted" }, "none")));
    update(live,
      h("h2", {}, "Topology"), topology(app, clustersByZone),
      h("h2", {}, "Components"), componentsTable(app),
      h("h2", {}, "Conditions"), conditionsTable(app),
      h("h2", {}, "Flow history"), historyTable(namespace, runs));
  }
  const forms = day2Forms(namespace, name, app, { mayUpdate, mayDelete });
  const reports = h("div", { id: "reports" });
  // Read again at most every two seconds while the Application or its runs change.
  let pending = null;
  const reloadReports = () => {
    pending = pending || new Promise((done) => setTimeout(done, 2000)).then(async () => {
      pending = null;
      update(reports, await loadReports(namespace, name));
    });
  };
  draw();
  replace(reports, await loadReports(namespace, name));
  replace(container, head, live, reports,
    forms.length ? [h("h2", {}, "Actions"), h("div", { class: "forms" }, forms)] : "");

  const reloadRuns = latestOnly(
    () => get(`/namespaces/${namespace}/flowruns`, { application: name }),
    (listed) => {
      runs = listed;
      draw();
    },
  );
  const closers = [
    follow("/events/applications", { namespace }, (type, obj) => {
      if (obj.metadata.name !== name) return;
      if (type === "DELETED") {
        replace(head, h("h1", {}, `${namespace}/${name}`),
          h("p", { class: "panel", role: "status" }, "This Application was decommissioned."));
        return;
      }
      app = obj;
      draw();
      reloadReports();
    }, async () => {
      app = await get(`/namespaces/${namespace}/applications/${name}`);
      await loadClusters();
      await reloadRuns();
    }),
    follow("/events/flowruns", { namespace }, (type, run) => {
      const labels = run.metadata.labels || {};
      if (labels["milkyway.ebay.com/application"] === name) reloadRuns();
      if (labels["milkyway.ebay.com/notification-for"] === name
        || labels["milkyway.ebay.com/health-of"] === name) reloadReports();
    }),
    follow("/events/clusters", {}, (type, cluster) => {
      clustersByZone.set(cluster.spec.zone, {
        name: cluster.metadata.name, zone: cluster.spec.zone,
        reachable: (cluster.status || {}).reachable,
      });
      draw();
    }),
  ];
  return () => closers.forEach((close) => close());
}
