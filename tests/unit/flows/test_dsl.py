"""Flow documents: bad input is refused with the field, the value and the fix named."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from milkyway.cli.main import app
from milkyway.flows.dsl import Catalog, FlowError, library_flows, load_flows, validate_params
from milkyway.flows.engine import new_run
from milkyway.flows.expr import ExpressionError, evaluate, render
from milkyway.flows.group import plan_batches
from milkyway.flows.tasks import REGISTRY
from milkyway.model.flow import GroupStrategy


def _flow(steps: str, extra: str = "") -> str:
    return f"""
apiVersion: milkyway.ebay.com/v1
kind: Flow
metadata: {{name: f}}
spec:
{extra}
  steps:
{steps}
"""


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("  - {name: a, action: sleep}\n  - {name: a, action: sleep}", "used twice"),
        ("  - {name: a, action: sleep, after: [zz]}", "'zz' is not a step"),
        (
            "  - {name: a, action: sleep, after: [b]}\n  - {name: b, action: sleep, after: [a]}",
            "cycle: a -> b -> a",
        ),
        ("  - {name: a}", "exactly one of action, flow, approval"),
        ("  - {name: A_b, action: sleep}", "steps.0.name"),
        ("  - {name: a, approval: {timeout: 5}}", "at least one of users or groups"),
        (
            "  - {name: a, action: sleep, forEach: [1], strategy: {batches: {size: 1, by: x}}}",
            "exactly one of size, by, maxUnavailable",
        ),
        (
            "  - {name: a, action: sleep, forEach: [1], "
            "strategy: {batches: {maxUnavailable: '120%'}}}",
            "'120%'",
        ),
    ],
)
def test_structural_errors_name_the_field(steps: str, message: str) -> None:
    with pytest.raises(FlowError, match=message):
        load_flows(_flow(steps))


def test_unknown_task_and_bad_cel_are_refused_at_submit() -> None:
    text = _flow(
        "  - {name: a, action: no.such}\n  - name: b\n    action: sleep\n"
        "    when: 'params.x >'\n    params: {seconds: 1}\n"
        "  - {name: c, action: sleep, forEach: [1], strategy: {parallelism: '${{ 1 + }}'}}"
    )
    catalog = Catalog(load_flows(text))
    with pytest.raises(FlowError) as error:
        new_run(catalog, REGISTRY, "f")
    assert "f@1.steps.a.action: no task named 'no.such'" in str(error.value)
    assert "f@1.steps.b.when" in str(error.value)
    assert "f@1.steps.c.strategy" in str(error.value)


def test_parameters_are_typed_and_required() -> None:
    text = _flow(
        "  - {name: a, action: sleep, params: {seconds: 0}}",
        "  parameters:\n    size: {type: integer, schema: {minimum: 1}}\n"
        "    mode: {type: string, default: safe, enum: [safe, fast]}",
    )
    _, spec = Catalog(load_flows(text)).get("f")
    with pytest.raises(FlowError, match="needs parameter 'size'"):
        validate_params("f", spec, {})
    with pytest.raises(FlowError, match="'size' = 0 is invalid"):
        validate_params("f", spec, {"size": 0})
    with pytest.raises(FlowError, match="'mode' = 'yolo' is invalid"):
        validate_params("f", spec, {"size": 1, "mode": "yolo"})
    with pytest.raises(FlowError, match="no parameter"):
        validate_params("f", spec, {"size": 1, "typo": 2})
    assert validate_params("f", spec, {"size": 3}) == {"size": 3, "mode": "safe"}


def test_snapshot_includes_subflows_and_pins_versions() -> None:
    catalog = Catalog(library_flows())
    run = new_run(catalog, REGISTRY, "rolling-restart", {"members": []}, target="x")
    assert list(run.status.snapshot) == ["rolling-restart@1", "restart-pod@1"]
    assert run.status.holds == ["1:rolling-restart/x"]
    again = new_run(catalog, REGISTRY, "rolling-restart", {"members": []}, target="x")
    assert again.status.spec_hash == run.status.spec_hash


def test_expressions() -> None:
    variables: dict[str, Any] = {"params": {"n": 2, "zones": ["a", "b"]}, "item": {"z": "a"}}
    assert evaluate("params.n * 3", variables) == 6
    assert evaluate("item.z", variables) == "a"
    assert evaluate("params.zones.map(z, z + '1')", variables) == ["a1", "b1"]
    assert render({"x": "${{ params.n }}", "y": ["zone-${{ item.z }}"]}, variables) == {
        "x": 2,
        "y": ["zone-a"],
    }
    with pytest.raises(ExpressionError, match=r"params\.missing"):
        evaluate("params.missing", variables)
    with pytest.raises(ExpressionError, match="cannot compile"):
        evaluate("1 +", variables)


def test_batches() -> None:
    items = [{"zone": z} for z in "abcab"]
    by_zone = GroupStrategy.model_validate({"batches": {"by": "item.zone"}})
    assert plan_batches(items, by_zone, lambda i, item: item["zone"]) == [[0, 3], [1, 4], [2]]
    pct = GroupStrategy.model_validate({"batches": {"maxUnavailable": "40%"}, "canary": 1})
    assert plan_batches(items, pct) == [[0], [1], [2, 3], [4]]
    assert plan_batches([], pct) == []


def test_dry_run_prints_the_expanded_plan() -> None:
    result = CliRunner().invoke(
        app,
        [
            "flow",
            "dry-run",
            "rolling-restart",
            "-p",
            "members=[{name: zk-0, cluster: c1, namespace: d, zone: a},"
            " {name: zk-1, cluster: c1, namespace: d, zone: b}]",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "batch 1 (canary)" in result.output
    assert "pod='zk-1'" in result.output
    assert "delete: task k8s.delete" in result.output
    bad = CliRunner().invoke(app, ["flow", "dry-run", "nope"])
    assert bad.exit_code == 1
    assert "unknown flow 'nope'" in bad.output


def test_a_parameter_schema_is_compiled_once_for_every_run() -> None:
    from milkyway.flows.dsl import _validator

    text = _flow(
        "  - {name: a, action: sleep, params: {seconds: 0}}",
        "  parameters:\n    size: {type: integer, schema: {minimum: 7}}",
    )
    _, spec = Catalog(load_flows(text)).get("f")
    validate_params("f", spec, {"size": 7})
    built = _validator.cache_info().misses
    for size in (8, 9, 10):
        validate_params("f", spec, {"size": size})
    assert _validator.cache_info().misses == built
    with pytest.raises(FlowError, match="'size' = 6 is invalid: 6 is less than the minimum"):
        validate_params("f", spec, {"size": 6})
