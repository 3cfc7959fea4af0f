// Sudo requests: ask for a Milkyway role in a namespace for a while, with a reason, and
// see where each of one's requests stands (waiting for whom, granted until when,
// refused, expired), live as their runs move.
import { ApiError, follow, get, post } from "../api.js";
import { announce, badge, errorText, h, replace } from "../dom.js";

const ROLES = ["milkyway-viewer", "milkyway-editor", "milkyway-approver", "milkyway-admin"];
const FIELDS = ["role", "duration", "reason"];
const TONES = { Waiting: "warn", Granted: "ok", Refused: "bad", Expired: "muted" };

function field(name, label, control) {
  return h("div", { class: "field" },
    h("label", { for: `sudo-${name}` }, label), control,
    h("p", { class: "field-error", id: `sudo-${name}-error`, "data-field": name }));
}

export async function renderSudo(container) {
  document.title = "Sudo · Milkyway";
  let namespace = sessionStorage.getItem("milkyway.namespace") || "";
  const list = h("div", { id: "sudo-requests" });
  const formError = h("p", { class: "form-error", role: "alert" });
  const done = h("p", { role: "status", id: "sudo-answer" });
  const described = (name) => ({ id: `sudo-${name}`, name, "aria-describedby": `sudo-${name}-error` });
  const form = h("form", { class: "action", id: "sudo-form", "aria-labelledby": "sudo-title", novalidate: true },
    h("h2", { id: "sudo-title" }, "Ask for a role"),
    field("namespace", "Namespace", h("input", { ...described("namespace"), value: namespace, required: true })),
    field("role", "Role", h("select", described("role"), ROLES.map((r) => h("option", { value: r }, r)))),
    field("duration", "For (like 30m or 1h)", h("input", { ...described("duration"), value: "30m", required: true })),
    field("reason", "Reason", h("input", { ...described("reason"), required: true, autocomplete: "off" })),
    h("button", { type: "submit" }, "Ask"), formError, done);

  function clearErrors() {
    formError.textContent = "";
    done.textContent = "";
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(exc) {
    const rest = [];
    for (const error of exc instanceof ApiError ? exc.fieldErrors : []) {
      const name = String(error.field || "").replace(/^body\./, "");
      if (!FIELDS.includes(name)) {
        rest.push(`${error.field}: ${error.problem}`);
        continue;
      }
      form.querySelector(`[data-field="${name}"]`).textContent =
        `${error.problem}${error.fix ? ` — ${error.fix}` : ""}`;
      form.elements[name].setAttribute("aria-invalid", "true");
    }
    formError.textContent = rest.length ? rest.join("; ") : errorText(exc);
  }

  async function load() {
    if (!namespace) {
      replace(list, h("p", { class: "muted" }, "Name a namespace to see your requests there."));
      return;
    }
    try {
      const mine = await get(`/namespaces/${namespace}/sudo`);
      if (!mine.length) {
        replace(list, h("p", {}, `You have asked for nothing in ${namespace}.`));
        return;
      }
      replace(list, h("table", {},
        h("caption", { class: "visually-hidden" }, `Your sudo requests in ${namespace}`),
        h("thead", {}, h("tr", {}, ["Grant", "Role", "State", "Where it stands", "Run"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, [...mine].reverse().map((s) => h("tr", { dataset: { grant: s.grant } },
          h("td", {}, h("code", {}, `${s.namespace}/${s.grant}`)), h("td", {}, s.role),
          h("td", {}, badge(s.state, TONES[s.state])), h("td", {}, s.message),
          h("td", {}, h("a", { href: `#/flowruns/${s.namespace}/${s.run}` }, s.run)))))));
    } catch (exc) {
      replace(list, h("p", { class: "error", role: "alert" }, errorText(exc)));
    }
  }

  let close = () => {};
  function watch() {
    close();
    close = namespace
      ? follow("/events/flowruns", { namespace }, (type, run) => {
        if ((run.metadata.labels || {})["milkyway.ebay.com/sudo-grant"]) load();
      }, load)
      : () => {};
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const asked = form.elements.namespace.value.trim();
    if (!asked) {
      form.querySelector('[data-field="namespace"]').textContent = "name the namespace the role is for";
      form.elements.namespace.setAttribute("aria-invalid", "true");
      return;
    }
    try {
      const answer = await post(`/namespaces/${asked}/sudo`, {
        role: form.elements.role.value,
        duration: form.elements.duration.value.trim(),
        reason: form.elements.reason.value.trim(),
      });
      done.textContent = `Asked: ${answer.namespace}/${answer.grant} — ${answer.message}`;
      announce(done.textContent);
      if (asked !== namespace) {
        namespace = asked;
        watch();
      }
      await load();
    } catch (exc) {
      showError(exc);
    }
  });

  replace(container, h("h1", {}, "Sudo requests"),
    h("p", {}, "A role for a while, granted once the namespace's approvers agree (never by "
      + "you). Calls use a grant in force with the header X-Milkyway-Sudo: NAMESPACE/GRANT "
      + "(the CLI sends it from MILKYWAY_SUDO)."),
    form, h("h2", {}, "Your requests"), list);
  await load();
  watch();
  return () => close();
}
