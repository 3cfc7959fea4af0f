// Day-2 action forms: each first asks the server for a dry run (the change is validated,
// checked against RBAC and admission, nothing written) and shows that plan; only
// "Confirm" sends the real request. The server's field errors appear next to their field.
import { ApiError, request } from "../api.js";
import { announce, errorText, h, replace } from "../dom.js";

// The form field a server error belongs to: `body.size` -> size; a validation path such as
// `spec.components[1].regions[0].zones[0].size` -> its last name, when the form has it.
function fieldOf(error, names) {
  const path = String(error.field || "");
  const last = path.split(/[.[\]]+/).filter(Boolean).pop();
  if (path.startsWith("body.") && names.includes(path.slice(5).split(".")[0])) {
    return path.slice(5).split(".")[0];
  }
  return names.includes(last) ? last : null;
}

function input(form, spec) {
  const id = `${form}-${spec.name}`;
  const control = spec.options
    ? h("select", { id, name: spec.name, "aria-describedby": `${id}-error` },
      spec.options.map((o) => h("option", { value: o }, o)))
    : h("input", {
      id, name: spec.name, type: spec.type || "text", required: spec.optional ? null : true,
      placeholder: spec.placeholder || "", "aria-describedby": `${id}-error`,
      autocomplete: "off",
    });
  return h("div", { class: "field" },
    h("label", { for: id }, spec.label),
    control,
    h("p", { class: "field-error", id: `${id}-error`, "data-field": spec.name }));
}

/**
 * An action form. `fields`: [{name, label, type?, options?, optional?}];
 * `send(values, dryRun)` returns the request promise.
 */
export function actionForm({ id, title, fields, send, danger }) {
  const names = fields.map((f) => f.name);
  const formError = h("p", { class: "form-error", role: "alert" });
  const preview = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "action", id, "aria-labelledby": `${id}-title`, novalidate: true },
    h("h3", { id: `${id}-title` }, title),
    fields.map((f) => input(id, f)),
    h("button", { type: "submit", class: danger ? "danger" : "" }, "Preview"),
    formError, preview);

  function values() {
    const out = {};
    for (const f of fields) {
      const raw = form.elements[f.name].value.trim();
      if (raw === "" && f.optional) continue;
      out[f.name] = f.type === "number" && raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    }
    return out;
  }

  function clearErrors() {
    formError.textContent = "";
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(exc) {
    if (!(exc instanceof ApiError)) {
      formError.textContent = errorText(exc);
      return;
    }
    const rest = [];
    for (const error of exc.fieldErrors) {
      const name = fieldOf(error, names);
      if (!name) {
        rest.push(`${error.field}: ${error.problem}${error.fix ? ` (${error.fix})` : ""}`);
        continue;
      }
      form.querySelector(`[data-field="${name}"]`).textContent =
        `${error.problem}${error.fix ? ` — ${error.fix}` : ""}`;
      form.elements[name].setAttribute("aria-invalid", "true");
    }
    formError.textContent = rest.length ? rest.join("; ") : exc.message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    replace(preview);
    const asked = values();
    try {
      const plan = await send(asked, true);
      const confirm = h("button", { type: "button", class: danger ? "danger" : "" }, "Confirm");
      const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
      replace(preview, h("div", { class: "preview", role: "region", "aria-label": `${title} plan` },
        h("p", {}, h("strong", {}, "Plan (dry run, nothing changed yet): "), plan.message),
        h("div", { class: "actions" }, confirm, cancel)));
      cancel.addEventListener("click", () => replace(preview));
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        try {
          const done = await send(asked, false);
          replace(preview, h("p", { class: "ok", role: "status" }, done.message));
          announce(done.message);
        } catch (exc) {
          replace(preview);
          showError(exc);
        }
      });
      confirm.focus();
    } catch (exc) {
      showError(exc);
    }
  });
  return form;
}

export function day2Forms(namespace, name, app, { mayUpdate, mayDelete }) {
  const base = `/namespaces/${namespace}/applications/${name}`;
  const components = ((app.spec || {}).components || []).map((c) => c.name);
  const act = (verb) => (values, dryRun) =>
    request("POST", `${base}/${verb}`, { body: values, params: { dryRun: dryRun ? "true" : "" } });
  const forms = [];
  if (mayUpdate) {
    forms.push(actionForm({
      id: "scale", title: "Scale a zone", send: act("scale"),
      fields: [
        { name: "component", label: "Component", options: components },
        { name: "zone", label: "Zone" },
        { name: "size", label: "Members", type: "number" },
      ],
    }));
    forms.push(actionForm({
      id: "upgrade", title: "Upgrade", send: act("upgrade"),
      fields: [
        { name: "component", label: "Component", options: components },
        { name: "version", label: "Version" },
        { name: "zone", label: "Zone (every zone when empty)", optional: true },
      ],
    }));
    forms.push(actionForm({
      id: "set-param", title: "Set a parameter",
      send: (values, dryRun) => {
        let value = values.value;
        try { value = JSON.parse(values.value); } catch { /* keep the text */ }
        const body = { component: values.component, params: { [values.key]: value } };
        return request("POST", `${base}/set-param`, { body, params: { dryRun: dryRun ? "true" : "" } });
      },
      fields: [
        { name: "component", label: "Component", options: components },
        { name: "key", label: "Parameter" },
        { name: "value", label: "Value (JSON; null removes it)" },
      ],
    }));
    forms.push(actionForm({
      id: "restart", title: "Rolling restart", send: act("restart"),
      fields: [{ name: "component", label: "Component", options: components }],
    }));
    forms.push(actionForm({
      id: "replace", title: "Replace a member", send: act("replace"),
      fields: [{ name: "member", label: "Member (pod name)" }],
    }));
  }
  if (mayDelete) {
    forms.push(actionForm({
      id: "decommission", title: "Decommission", danger: true,
      send: (values, dryRun) => {
        if (values.confirm !== name) {
          return Promise.reject(new ApiError(422, {
            detail: "type the Application's name to decommission it",
            errors: [{ field: "confirm", problem: `type ${name} to confirm` }],
          }));
        }
        return request("DELETE", base, { params: { dryRun: dryRun ? "true" : "" } });
      },
      fields: [{ name: "confirm", label: `Type ${name} to confirm` }],
    }));
  }
  return forms;
}
