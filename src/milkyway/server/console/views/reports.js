// What the application page shows beside its topology, each from its own endpoint: the
// last health report (per component and zone, with findings per member) and the kept
// history, the notifications sent about the Application, and its Kubernetes Events.
import { get } from "../api.js";
import { badge, errorText, h } from "../dom.js";

const DELIVERY_TONES = { Sent: "ok", Sending: "info", Pending: "info", Retrying: "warn", Failed: "bad" };

function table(id, caption, headings, rows) {
  return h("table", { id },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

function unreadable(id, what, exc) {
  return h("p", { class: "muted", id }, `${what} cannot be shown: ${errorText(exc)}`);
}

export function healthView(namespace, health) {
  const report = health.report || {};
  if (!report.checkedAt) {
    return h("div", { id: "health" }, h("p", { class: "muted" }, "No health check has run yet."));
  }
  const zones = Object.entries(report.components || {}).flatMap(([component, c]) =>
    Object.entries(c.zones || {}).map(([zone, z]) => h("tr", { dataset: { component, zone } },
      h("td", {}, component), h("td", {}, zone), h("td", {}, badge(z.status)),
      h("td", {}, `${z.ready}/${z.desired}`))));
  const findings = report.findings || [];
  return h("div", { id: "health" },
    h("p", { class: "panel", id: "health-summary" },
      "Last report ", badge(health.status), ` at ${report.checkedAt}`,
      report.since ? ` · ${health.status} since ${report.since}` : "",
      report.run ? [" · by run ", h("a", { href: `#/flowruns/${namespace}/${report.run}` }, report.run)] : ""),
    zones.length ? table("health-zones", "Health per component and zone",
      ["Component", "Zone", "Health", "Ready"], zones) : "",
    findings.length
      ? table("health-findings", "Findings", ["Component", "Zone", "Member", "Check", "Severity",
        "Observed", "Since"], findings.map((f) => h("tr", {},
        h("td", {}, f.component), h("td", {}, f.zone || "—"), h("td", {}, f.member || "—"),
        h("td", {}, f.check), h("td", {}, badge(f.severity)), h("td", {}, f.observed),
        h("td", {}, f.since))))
      : h("p", { id: "health-findings" }, "Nothing found wrong."),
    h("h3", {}, "History"),
    (health.history || []).length
      ? table("health-history", "Past health reports", ["Checked at", "Health", "Findings"],
        health.history.map((e) => h("tr", {},
          h("td", {}, e.checkedAt), h("td", {}, badge(e.status)), h("td", {}, e.findings))))
      : h("p", { class: "muted", id: "health-history" }, "No earlier report kept."));
}

export function notificationsView(deliveries) {
  if (!deliveries.length) {
    return h("p", { class: "muted", id: "notifications" }, "No notification sent yet.");
  }
  return table("notifications", "Notifications sent",
    ["Trigger", "Service", "Recipients", "Status", "Attempts", "Detail", "Age"],
    [...deliveries].reverse().map((d) => h("tr", { dataset: { delivery: d.name } },
      h("td", {}, d.trigger), h("td", {}, d.service), h("td", {}, d.recipients || "—"),
      h("td", {}, badge(d.status, DELIVERY_TONES[d.status])), h("td", {}, d.attempts),
      h("td", {}, d.detail), h("td", {}, d.age))));
}

export function eventsView(events) {
  if (!events.length) return h("p", { class: "muted", id: "events" }, "No Events kept.");
  return table("events", "Events", ["Type", "Reason", "Message", "Count", "Last seen", "From"],
    events.map((e) => h("tr", {},
      h("td", {}, badge(e.type, e.type === "Warning" ? "warn" : "muted")), h("td", {}, e.reason),
      h("td", {}, e.message), h("td", {}, e.count), h("td", {}, e.last), h("td", {}, e.source))));
}

// All three, read again; each one that cannot be read says why instead.
export async function loadReports(namespace, name) {
  const base = `/namespaces/${namespace}`;
  const [health, deliveries, events] = await Promise.all([
    get(`${base}/applications/${name}/health`).then((x) => healthView(namespace, x),
      (exc) => unreadable("health", "The health report", exc)),
    get(`${base}/notifications`, { application: name }).then(notificationsView,
      (exc) => unreadable("notifications", "Notifications", exc)),
    get(`${base}/applications/${name}/events`).then(eventsView,
      (exc) => unreadable("events", "Events", exc)),
  ]);
  return [
    h("h2", {}, "Health"), health,
    h("h2", {}, "Notifications sent"), deliveries,
    h("h2", {}, "Events"), events,
  ];
}
