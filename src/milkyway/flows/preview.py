"""Dry-run: the plan a run would execute, with subflows and fan-outs expanded.

Nothing runs: parameters are rendered where they depend only on the run's parameters and
fan-out items; a value that needs an earlier step's outputs is shown as its expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milkyway.flows.core import apply_defaults, flow_ref
from milkyway.flows.dsl import Catalog
from milkyway.flows.expr import ExpressionError, render, truthy
from milkyway.flows.group import plan_batches
from milkyway.model.flow import FlowSpec, GroupStrategy, Step, step_dependencies


@dataclass
class PlanNode:
    label: str
    detail: str = ""
    children: list[PlanNode] = field(default_factory=list)

    def lines(self, indent: int = 0) -> list[str]:
        text = "  " * indent + self.label + (f"  ({self.detail})" if self.detail else "")
        out = [text]
        for child in self.children:
            out.extend(child.lines(indent + 1))
        return out


def preview_flow(
    catalog: Catalog, flow: str, params: dict[str, Any], version: str | None = None
) -> PlanNode:
    found, spec = catalog.get(flow, version)
    resolved = apply_defaults(spec, params)
    return _flow_node(catalog, flow_ref(flow, found), spec, resolved, depth=0)


def _flow_node(
    catalog: Catalog, ref: str, spec: FlowSpec, params: dict[str, Any], depth: int
) -> PlanNode:
    root = PlanNode(f"flow {ref}", _params_text(params))
    variables = {"params": params, "steps": {}, "run": {"id": "<run>", "flow": ref}}
    for section in ("steps", "onFailure", "finally"):
        steps = spec.section(section)
        if not steps:
            continue
        holder = root if section == "steps" else PlanNode(section)
        deps = step_dependencies(steps)
        for step in steps:
            holder.children.append(_step_node(catalog, step, deps[step.name], variables, depth))
        if holder is not root:
            root.children.append(holder)
    return root


def _step_node(
    catalog: Catalog, step: Step, deps: list[str], variables: dict[str, Any], depth: int
) -> PlanNode:
    notes = []
    if deps:
        notes.append("after " + ", ".join(deps))
    if step.when:
        try:
            notes.append(f"when {step.when} = {truthy(step.when, variables)}")
        except ExpressionError:
            notes.append(f"when {step.when}")
    if step.retry is not None:
        backoff = step.retry.backoff
        notes.append(
            f"retry {step.retry.limit}x on {'/'.join(step.retry.retry_on)}, backoff "
            f"{backoff.duration:g}s x{backoff.factor:g} cap {backoff.max_duration:g}s"
        )
    if step.timeout:
        notes.append(f"timeout {step.timeout:g}s/attempt")
    if step.continue_on_error:
        notes.append("continueOnError")
    if step.for_each is not None:
        return _group_node(catalog, step, variables, notes, depth)
    node = PlanNode(f"{step.name}: {_kind(step)}", "; ".join(notes))
    if step.approval is not None:
        approval = step.approval
        who = ", ".join([*approval.users, *(f"group:{g}" for g in approval.groups)])
        node.children.append(PlanNode(f"approvers: {who}", f"default {approval.default}"))
        return node
    params = _render(step.params, variables)
    node.children.append(PlanNode("params " + _params_text(params)))
    if step.flow is not None and depth < 8:
        node.children.append(_subflow(catalog, step, params, depth))
    return node


def _group_node(
    catalog: Catalog, step: Step, variables: dict[str, Any], notes: list[str], depth: int
) -> PlanNode:
    strategy = step.strategy or GroupStrategy()
    raw = step.for_each
    try:
        items = render(raw, variables) if isinstance(raw, list) else _items(raw, variables)
    except ExpressionError as exc:
        return PlanNode(f"{step.name}: forEach {raw}", f"items unknown until run: {exc}")
    notes.append(f"parallelism {render(strategy.parallelism, variables)}")
    if strategy.disruption_budget is not None:
        budget = strategy.disruption_budget
        notes.append(f"at most {render(budget.max_unavailable, variables)} down")
    if strategy.failure_budget:
        notes.append(f"failure budget {strategy.failure_budget}")
    node = PlanNode(f"{step.name}: forEach {len(items)} x {_kind(step)}", "; ".join(notes))
    by = strategy.batches.by if strategy.batches is not None else None
    batches = plan_batches(
        items,
        strategy,
        (lambda i, item: render("${{" + by + "}}", {**variables, "item": item})) if by else None,
    )
    for number, batch in enumerate(batches):
        label = f"batch {number + 1}" + (" (canary)" if strategy.canary and number == 0 else "")
        holder = PlanNode(label)
        for index in batch:
            scope = {**variables, "item": items[index], "index": index}
            params = _render(step.params, scope)
            member = PlanNode(f"[{index}] {_params_text(params)}")
            if step.flow is not None and depth < 8:
                member.children.append(_subflow(catalog, step, params, depth))
            holder.children.append(member)
        node.children.append(holder)
        if number + 1 < len(batches):
            pause = render(strategy.pause, variables)
            if pause:
                node.children.append(PlanNode(f"pause {pause}s"))
            if strategy.health_gate is not None:
                node.children.append(PlanNode(f"health gate: {strategy.health_gate.action}"))
    return node


def _subflow(catalog: Catalog, step: Step, params: dict[str, Any], depth: int) -> PlanNode:
    version, spec = catalog.get(step.flow or "", step.version)
    concrete = {k: v for k, v in params.items() if not (isinstance(v, str) and "${{" in v)}
    try:
        resolved = apply_defaults(spec, concrete)
    except ValueError:
        resolved = params
    return _flow_node(catalog, flow_ref(step.flow or "", version), spec, resolved, depth + 1)


def _items(raw: Any, variables: dict[str, Any]) -> list[Any]:
    text = str(raw).strip()
    if not text.startswith("${{"):
        text = "${{" + text + "}}"
    items = render(text, variables)
    if not isinstance(items, list):
        raise ExpressionError(f"forEach gives {type(items).__name__}, not a list")
    return items


def _render(value: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        try:
            out[key] = render(item, variables)
        except ExpressionError:
            out[key] = item
    return out


def _kind(step: Step) -> str:
    if step.action is not None:
        return f"task {step.action}"
    if step.flow is not None:
        return f"subflow {step.flow}" + (f"@{step.version}" if step.version else "")
    return "approval"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) if params else ""
