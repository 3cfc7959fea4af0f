// One flow run: its steps as a tree (phase, attempts, durations, messages, fan-out
// batches), each step's log, and the server request that caused it with its audit
// records, live; the steer and approval buttons appear only when the server's access
// review says the user may use them.
import { follow, get, latestOnly, mayI, post, session } from "../api.js";
import { announce, badge, duration, errorText, h, replace, when } from "../dom.js";

const FINISHED = ["Succeeded", "Failed", "Cancelled"];

export function approvers(node) {
  const params = node.params || {};
  return { users: params.users || [], groups: params.groups || [] };
}

// The run's nodes by parent path, each list in the order they run (the root flow is "").
function childrenOf(run) {
  const children = new Map();
  for (const node of Object.values(run.nodes)) {
    if (node.parent === undefined || node.parent === null) continue;
    if (!children.has(node.parent)) children.set(node.parent, []);
    children.get(node.parent).push(node);
  }
  const order = (n) => [n.section !== "steps" ? 1 : 0, n.started_at || 1e18, n.index || 0];
  for (const list of children.values()) {
    list.sort((a, b) => {
      const [x, y] = [order(a), order(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    });
  }
  return children;
}

function nodeItem(run, node, children, buttonsFor) {
  const path = node.path;
  const attempts = node.attempts || [];
  const last = attempts[attempts.length - 1];
  const batches = node.batches
    ? h("span", { class: "muted" }, ` batches ${node.batches.map((b) => `[${b.join(", ")}]`).join(" ")}`
      + `, batch ${node.batch + 1}/${node.batches.length}`)
    : "";
  const label = node.kind === "flow" ? `flow ${node.flow_ref || node.name}` : node.name;
  return h("li", { class: "step", dataset: { path, phase: node.phase } },
    h("strong", {}, label), " ", badge(node.phase),
    h("span", { class: "muted" }, ` ${node.kind}${node.action ? ` ${node.action}` : ""}`),
    attempts.length ? ` · ${attempts.length} attempt${attempts.length > 1 ? "s" : ""}` : "",
    node.started_at ? ` · ${duration(node.started_at, node.finished_at)}` : "",
    batches,
    node.message || (last && last.message)
      ? h("span", { class: "msg" }, node.message || last.message) : "",
    node.kind === "approval" ? approvalDetail(run, node, buttonsFor(path, node)) : "",
    (children.get(path) || []).length
      ? h("ul", {}, children.get(path).map((child) => nodeItem(run, child, children, buttonsFor)))
      : "");
}

function approvalDetail(run, node, buttons) {
  const who = approvers(node);
  const said = (d) => `${d.by}${d.reason ? ` (${d.reason})` : ""}`;
  const approvals = (node.approvals || []).filter((d) => d.approved);
  return h("div", { class: "panel approval" },
    h("p", {}, `Asked by ${run.requestedBy || "the operator"} for ${run.flow} on ${run.target || "—"}`
      + `. Approvers: ${[...who.users, ...who.groups.map((g) => `group ${g}`)].join(", ") || "—"}`),
    approvals.length && !node.decision
      ? h("p", {}, `Approved so far by ${approvals.map(said).join(", ")}`) : "",
    node.decision
      ? h("p", {}, `${node.decision.approved ? "Approved" : "Rejected"} by ${said(node.decision)}`)
      : "",
    buttons);
}

// What each step said: its phase and message, and every attempt kept (who ran it, when,
// how it ended, the error).
function stepLogs(log) {
  if (!log.steps.length) return h("p", { class: "muted", id: "step-logs" }, "No step has run yet.");
  return h("ol", { class: "step-logs", id: "step-logs" }, log.steps.map((step) =>
    h("li", { dataset: { path: step.path } },
      h("strong", {}, step.path), " ", badge(step.phase),
      h("span", { class: "muted" }, ` ${step.kind}`),
      step.message ? h("p", { class: "log-message" }, step.message) : "",
      step.attempts.length || step.olderAttempts
        ? h("ul", { class: "attempts" },
          step.olderAttempts
            ? h("li", { class: "muted" }, `${step.olderAttempts} older attempts not kept`) : "",
          step.attempts.map((a) => h("li", { class: "attempt" },
            `attempt ${a.n} `, badge(a.phase),
            ` by ${a.actor || "the engine"} at ${when(a.startedAt)}`,
            a.finishedAt ? `, ${duration(a.startedAt, a.finishedAt)}` : "",
            a.message ? h("span", { class: "msg" }, a.message) : "",
            a.error ? h("span", { class: "error" }, ` error: ${a.error}`) : "")))
        : "")));
}

function auditOf(requestId, records) {
  if (!requestId) {
    return h("p", { class: "muted", id: "run-request" },
      "No server request caused this run (the operator or a schedule started it).");
  }
  const link = `#/audit?requestId=${encodeURIComponent(requestId)}`;
  return h("div", { id: "run-request" },
    h("p", {}, "Request id ", h("code", {}, requestId), " · ",
      h("a", { href: link }, "its audit records")),
    records.length
      ? h("table", { id: "run-audit" },
        h("caption", { class: "visually-hidden" }, "Audit records of the request"),
        h("thead", {}, h("tr", {}, ["Time", "Actor", "Action", "Target", "Decision"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, records.map((r) => h("tr", {},
          h("td", {}, r.at), h("td", {}, r.actor), h("td", {}, r.action), h("td", {}, r.target),
          h("td", {}, badge(r.decision, r.decision === "allowed" ? "ok" : "bad"))))))
      : h("p", { class: "muted" }, "You may not read its audit records, or none are kept."));
}

export async function renderFlowRun(container, namespace, name) {
  document.title = `${name} · Milkyway`;
  const path = `/namespaces/${namespace}/flowruns/${name}`;
  let run = await get(path);
  let log = await get(`${path}/logs`);
  const audit = await get(`${path}/audit`).catch(() => ({ requestId: run.requestId, items: [] }));
  const [maySteer, mayApprove] = await Promise.all([
    mayI("update", namespace, "flowruns"), mayI("approve", namespace, "flowruns")]);
  const message = h("p", { role: "status", id: "flow-message" });

  async function steer(op, body = {}) {
    message.textContent = "";
    try {
      const answer = await post(`${path}/${op}`, body);
      message.textContent = answer.message;
      announce(answer.message);
    } catch (exc) {
      message.textContent = errorText(exc);
      message.className = "error";
    }
  }

  const reasons = new Map(); // what the user typed, kept across live redraws
  function buttonsFor(stepPath, node) {
    if (!mayApprove || node.phase !== "Waiting") return "";
    const who = approvers(node);
    const named = who.users.includes(session.user) || session.groups.some((g) => who.groups.includes(g));
    if (!named) return h("p", { class: "muted" }, "You are not one of its approvers.");
    const reason = h("input", {
      id: `reason-${stepPath}`, "aria-label": `Reason for ${node.name}`,
      value: reasons.get(stepPath) || "",
      oninput: (event) => reasons.set(stepPath, event.target.value),
    });
    const buttons = [h("label", { for: `reason-${stepPath}` }, "Reason"), reason];
    const decide = (verb) => () => steer(`decisions/${verb}`, { step: stepPath, reason: reason.value });
    if (run.requestedBy !== session.user) {
      buttons.push(h("button", { type: "button", onclick: decide("approve") }, `Approve ${node.name}`));
    }
    buttons.push(h("button", { type: "button", class: "danger", onclick: decide("reject") },
      `Reject ${node.name}`));
    return h("div", { class: "actions" }, buttons);
  }

  function steps() {
    const children = childrenOf(run);
    return (children.get("") || []).map((node) => nodeItem(run, node, children, buttonsFor));
  }

  const body = h("div");
  function draw() {
    const controls = [];
    if (maySteer && !FINISHED.includes(run.phase)) {
      if (run.phase === "Running") controls.push(["pause", "Pause"]);
      if (run.phase === "Paused") controls.push(["resume", "Resume"]);
      controls.push(["cancel", "Cancel"]);
    }
    if (maySteer && run.phase === "Failed") controls.push(["retry", "Retry"]);
    replace(body,
      h("div", { class: "panel", id: "run-summary" },
        "Phase ", badge(run.phase), ` · progress ${run.progress || "—"} · flow ${run.flow}`,
        ` · target ${run.target || "—"} · requested by ${run.requestedBy || "the operator"}`,
        run.message ? h("p", {}, run.message) : ""),
      controls.length
        ? h("div", { class: "actions", id: "run-actions" }, controls.map(([op, text]) =>
          h("button", { type: "button", class: op === "cancel" ? "danger" : "",
            onclick: () => steer(op) }, text)))
        : "",
      message,
      h("h2", {}, "Steps"),
      h("ul", { class: "step-list", id: "steps" }, steps()),
      h("h2", {}, "Request"),
      auditOf(audit.requestId, audit.items),
      h("h2", {}, "Step logs"),
      stepLogs(log),
      (run.requests || []).length
        ? [h("h2", {}, "Requests"), h("ul", {}, run.requests.map((r) =>
          h("li", {}, `${r.op}${r.step ? ` ${r.step}` : ""} by ${r.actor}${r.reason ? `: ${r.reason}` : ""}`)))]
        : "");
  }
  draw();
  replace(container, h("h1", {}, `Flow run ${namespace}/${name}`), body);
  const reload = latestOnly(
    () => Promise.all([get(path), get(`${path}/logs`)]),
    (answers) => {
      [run, log] = answers;
      draw();
    },
  );
  const close = follow("/events/flowruns", { namespace }, (type, obj) => {
    if (obj.metadata.name === name && type !== "DELETED") reload();
  }, reload);
  return close;
}
