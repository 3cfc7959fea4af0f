"""Loading, checking and snapshotting flows.

``load_flows`` reads ``Flow`` documents (YAML files shipped in packages, or resources
from the cluster); ``Catalog`` keeps every version; ``check_flow`` compiles every
expression and resolves every task and subflow before a run can start, so a typo fails
at submit time with the field named, not halfway through a rolling restart.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from milkyway.flows.core import flow_ref, version_key
from milkyway.flows.expr import ExpressionError, compile_expression, expressions_in
from milkyway.flows.tasks import TaskRegistry
from milkyway.model.flow import Flow, FlowSpec, Step


class FlowError(ValueError):
    """A flow or run request that cannot be used; the message names the field and the fix."""


def parse_flow(document: dict[str, Any], source: str = "") -> Flow:
    try:
        return Flow.model_validate(document)
    except ValidationError as exc:
        where = f" in {source}" if source else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise FlowError(f"invalid Flow{where}: {problems}") from None


def load_flows(text: str, source: str = "") -> list[Flow]:
    """Every ``Flow`` document in a YAML stream."""
    flows = []
    for document in yaml.safe_load_all(text):
        if document is None:
            continue
        if not isinstance(document, dict) or document.get("kind") != "Flow":
            raise FlowError(f"{source or 'document'}: expected kind: Flow")
        flows.append(parse_flow(document, source))
    return flows


def library_flows() -> list[Flow]:
    """The common flows shipped with Milkyway (``milkyway/flows/library/*.yaml``)."""
    folder = resources.files("milkyway.flows") / "library"
    flows: list[Flow] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            flows.extend(load_flows(entry.read_text(), f"library/{entry.name}"))
    return flows


class Catalog:
    """Flows by name and version: what subflow references resolve against."""

    def __init__(self, flows: Iterable[Flow] = ()) -> None:
        self._flows: dict[str, dict[str, FlowSpec]] = {}
        for flow in flows:
            self.add(flow)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], with_library: bool = True) -> Catalog:
        catalog = cls(library_flows() if with_library else ())
        for path in paths:
            for file in sorted(Path(path).glob("*.y*ml")) if Path(path).is_dir() else [path]:
                for flow in load_flows(Path(file).read_text(), str(file)):
                    catalog.add(flow)
        return catalog

    def add(self, flow: Flow) -> None:
        self._flows.setdefault(flow.metadata.name, {})[flow.spec.version] = flow.spec

    def names(self) -> list[str]:
        return sorted(self._flows)

    def get(self, name: str, version: str | None = None) -> tuple[str, FlowSpec]:
        versions = self._flows.get(name)
        if not versions:
            raise FlowError(f"unknown flow {name!r}; known flows: {', '.join(self.names())}")
        if version is None:
            version = max(versions, key=version_key)
        if version not in versions:
            raise FlowError(
                f"flow {name!r} has no version {version!r}; versions: {', '.join(versions)}"
            )
        return version, versions[version]

    def snapshot(self, name: str, version: str | None = None) -> dict[str, FlowSpec]:
        """The flow and every subflow it reaches, keyed ``name@version``; root first."""
        version, spec = self.get(name, version)
        result: dict[str, FlowSpec] = {flow_ref(name, version): spec}
        pending = list(spec.subflow_refs())
        while pending:
            sub, sub_version = pending.pop()
            found_version, sub_spec = self.get(sub, sub_version)
            key = flow_ref(sub, found_version)
            if key not in result:
                result[key] = sub_spec
                pending.extend(sub_spec.subflow_refs())
        return result


def snapshot_hash(snapshot: dict[str, FlowSpec]) -> str:
    data = {k: v.model_dump(mode="json", by_alias=True) for k, v in snapshot.items()}
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:32]


def check_flow(name: str, spec: FlowSpec, registry: TaskRegistry | None, catalog: Catalog) -> None:
    """Compile every expression, resolve every subflow and (with a registry) every action."""
    problems: list[str] = []
    for section in ("steps", "onFailure", "finally"):
        for step in spec.section(section):
            problems.extend(_check_step(f"{name}.{section}.{step.name}", step, registry, catalog))
    for key, text in spec.outputs.items():
        problems.extend(_check_expr(f"{name}.outputs.{key}", text))
    if problems:
        raise FlowError("; ".join(problems))


def _check_step(
    where: str, step: Step, registry: TaskRegistry | None, catalog: Catalog
) -> list[str]:
    problems: list[str] = []
    if registry is not None and step.action is not None and step.action not in registry:
        problems.append(
            f"{where}.action: no task named {step.action!r}; "
            f"registered: {', '.join(registry.names())}"
        )
    if step.flow is not None:
        try:
            catalog.get(step.flow, step.version)
        except FlowError as exc:
            problems.append(f"{where}.flow: {exc}")
    if step.when is not None:
        problems.extend(_check_expr(f"{where}.when", step.when))
    for text in expressions_in(step.params):
        problems.extend(_check_expr(f"{where}.params", text))
    if isinstance(step.for_each, str):
        text = step.for_each.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2]
        problems.extend(_check_expr(f"{where}.forEach", text))
    strategy = step.strategy
    if strategy is not None:
        computed: list[Any] = [strategy.parallelism, strategy.pause]
        if strategy.disruption_budget is not None:
            budget = strategy.disruption_budget
            computed += [budget.max_unavailable, budget.already_unavailable]
        if strategy.health_gate is not None:
            computed.append(strategy.health_gate.params)
        for text in expressions_in(computed):
            problems.extend(_check_expr(f"{where}.strategy", text))
        if strategy.batches is not None and strategy.batches.by is not None:
            problems.extend(_check_expr(f"{where}.strategy.batches.by", strategy.batches.by))
        gate = strategy.health_gate
        if registry is not None and gate is not None and gate.action not in registry:
            problems.append(f"{where}.strategy.healthGate.action: no task named {gate.action!r}")
    return problems


def _check_expr(where: str, text: str) -> list[str]:
    try:
        compile_expression(text)
    except ExpressionError as exc:
        return [f"{where}: {exc}"]
    return []


def validate_params(name: str, spec: FlowSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Check run parameters against the flow's typed parameters; defaults filled in."""
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        raise FlowError(
            f"flow {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(spec.parameters)) or 'none'}"
        )
    resolved = dict(params)
    for key, parameter in spec.parameters.items():
        if key not in resolved:
            if parameter.default is None:
                raise FlowError(
                    f"flow {name!r} needs parameter {key!r} ({parameter.type}); pass -p {key}=VALUE"
                )
            resolved[key] = parameter.default
        error = jsonschema.exceptions.best_match(
            _validator(json.dumps(parameter.to_json_schema(), sort_keys=True)).iter_errors(
                resolved[key]
            )
        )
        if error is not None:
            raise FlowError(f"parameter {key!r} = {resolved[key]!r} is invalid: {error.message}")
    return resolved


@functools.lru_cache(maxsize=1024)
def _validator(schema: str) -> Any:
    """A validator of one parameter schema (JSON text), built and checked once: what
    ``jsonschema.validate`` does on every call, checking the schema against its
    meta-schema each time, which made each flow start take milliseconds of CPU."""
    loaded = json.loads(schema)
    cls = jsonschema.validators.validator_for(loaded)
    cls.check_schema(loaded)
    return cls(loaded)
