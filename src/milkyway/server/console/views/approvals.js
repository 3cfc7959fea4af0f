// The approvals inbox: approval steps waiting in the runs the user may read, live.
import { follow, get, latestOnly, listAll, session } from "../api.js";
import { errorText, h, replace } from "../dom.js";
import { approvers } from "./flowrun.js";

const FINISHED = ["Succeeded", "Failed", "Cancelled"];

async function waiting(namespace) {
  const apps = await listAll("/applications", { namespace });
  const namespaces = new Set(apps.map((a) => a.metadata.namespace));
  if (namespace) namespaces.add(namespace);
  const found = [];
  for (const ns of namespaces) {
    for (const summary of await get(`/namespaces/${ns}/flowruns`)) {
      if (FINISHED.includes(summary.phase)) continue;
      const run = await get(`/namespaces/${ns}/flowruns/${summary.name}`);
      for (const [path, node] of Object.entries(run.nodes)) {
        if (node.kind === "approval" && node.phase === "Waiting") found.push({ ns, run, path, node });
      }
    }
  }
  return found;
}

export async function renderApprovals(container) {
  document.title = "Approvals · Milkyway";
  const namespace = sessionStorage.getItem("milkyway.namespace") || "";
  const list = h("div", { id: "inbox" });
  const error = h("p", { class: "error", role: "alert" });
  // Every FlowRun event of the namespace reloads the inbox: only the latest reload's
  // answer is shown, so a slow earlier answer cannot bring back an approval since given.
  const load = latestOnly(async () => {
    try {
      return { items: await waiting(namespace) };
    } catch (exc) {
      return { failure: exc };
    }
  }, ({ items, failure }) => {
    error.textContent = failure ? errorText(failure) : "";
    if (failure) return;
    if (!items.length) {
      replace(list, h("p", {}, "Nothing waits for an approval."));
      return;
    }
    replace(list, h("table", {},
      h("caption", { class: "visually-hidden" }, "Approvals waiting"),
      h("thead", {}, h("tr", {}, ["Run", "Step", "Asked by", "For", "Approvers", "Yours"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map(({ ns, run, path, node }) => {
        const who = approvers(node);
        const mine = who.users.includes(session.user)
          || session.groups.some((g) => who.groups.includes(g));
        return h("tr", { dataset: { run: run.name } },
          h("td", {}, h("a", { href: `#/flowruns/${ns}/${run.name}` }, `${ns}/${run.name}`)),
          h("td", {}, path),
          h("td", {}, run.requestedBy || "the operator"),
          h("td", {}, `${run.flow} on ${run.target || "—"}`),
          h("td", {}, [...who.users, ...who.groups.map((g) => `group ${g}`)].join(", ")),
          h("td", {}, mine && run.requestedBy !== session.user ? "yes" : "no"));
      }))));
  });
  replace(container, h("h1", {}, "Approvals"), error, list);
  await load();
  return follow("/events/flowruns", { namespace }, load, load);
}
