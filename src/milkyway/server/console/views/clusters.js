// The member clusters: reachability, Kubernetes version, Ready nodes and last heartbeat,
// live.
import { follow, get, latestOnly } from "../api.js";
import { badge, h, replace } from "../dom.js";

export async function renderClusters(container) {
  document.title = "Clusters · Milkyway";
  const body = h("tbody");
  // Heartbeats of many clusters come close together: only the latest reload is shown.
  const load = latestOnly(() => get("/clusters"), (clusters) => {
    replace(body, clusters.map((c) => {
      const ready = (c.conditions || []).find((x) => x.type === "Ready") || {};
      return h("tr", { dataset: { cluster: c.name } },
        h("td", {}, c.name), h("td", {}, c.region), h("td", {}, c.zone),
        h("td", {}, c.reachable === null || c.reachable === undefined
          ? badge("Unknown") : badge(c.reachable ? "reachable" : "unreachable")),
        h("td", {}, c.version || ""),
        h("td", { class: "nodes" }, c.nodes ? `${c.nodes.ready}/${c.nodes.total} Ready`
          : c.reachable === false ? "unknown while unreachable" : "not listed yet"),
        h("td", {}, c.lastHeartbeatTime || ""),
        h("td", {}, ready.message || ""));
    }));
  });
  replace(container, h("h1", {}, "Clusters"),
    h("table", { id: "clusters" },
      h("caption", { class: "visually-hidden" }, "Member clusters"),
      h("thead", {}, h("tr", {}, ["Cluster", "Region", "Zone", "Reachability", "Version",
        "Nodes", "Last heartbeat", "Message"].map((t) => h("th", { scope: "col" }, t)))),
      body));
  await load();
  return follow("/events/clusters", {}, load, load);
}
