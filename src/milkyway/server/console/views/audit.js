// Search the audit trail: who did what, when, allowed or refused.
import { get } from "../api.js";
import { badge, errorText, h, replace } from "../dom.js";

const FIELDS = [
  ["actor", "Actor"], ["action", "Action"], ["decision", "Decision"],
  ["requestId", "Request id"], ["target", "Target"],
];
const TONE = { allowed: "ok", denied: "bad", unauthenticated: "warn", error: "bad" };

// `requestId` (from #/audit?requestId=…, as a flow run links it) fills the search.
export async function renderAudit(container, requestId) {
  document.title = "Audit · Milkyway";
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "filters", role: "search", id: "audit-search" },
    FIELDS.map(([name, label]) => h("div", {},
      h("label", { for: `audit-${name}` }, label),
      name === "decision"
        ? h("select", { id: `audit-${name}`, name },
          ["", "allowed", "denied", "unauthenticated", "error"].map((d) => h("option", { value: d }, d || "any")))
        : h("input", { id: `audit-${name}`, name }))),
    h("button", { type: "submit" }, "Search"));
  let after = 0;
  if (requestId) form.elements.requestId.value = decodeURIComponent(requestId);

  async function search(append) {
    error.textContent = "";
    const params = { after: append ? after : 0, limit: 100 };
    for (const [name] of FIELDS) params[name] = form.elements[name].value.trim();
    try {
      const page = await get("/audit", params);
      const rows = page.items.map((r) => h("tr", {},
        h("td", {}, r.id), h("td", {}, r.at), h("td", {}, r.actor),
        h("td", {}, r.action), h("td", {}, r.target), h("td", {}, badge(r.decision, TONE[r.decision])),
        h("td", {}, r.result), h("td", {}, r.request_id),
        h("td", {}, r.detail || "")));
      if (append) body.append(...rows);
      else replace(body, rows);
      after = page.next || 0;
      more.hidden = !page.next;
    } catch (exc) {
      error.textContent = errorText(exc);
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); search(false); });
  more.addEventListener("click", () => search(true));
  replace(container, h("h1", {}, "Audit log"), form, error,
    h("table", { id: "audit" },
      h("caption", { class: "visually-hidden" }, "Audit records"),
      h("thead", {}, h("tr", {}, ["#", "Time", "Actor", "Action", "Target", "Decision", "Status",
        "Request id", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    more);
  await search(false);
}
