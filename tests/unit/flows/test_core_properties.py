"""Property tests of the pure core: random DAGs, outcomes, crashes, pauses, cancellations."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milkyway.flows import events as ev
from milkyway.flows.retry import backoff_delay
from milkyway.model.flow import TERMINAL_NODE_PHASES, Backoff, FlowSpec, NodeStatus

SUBFLOW = FlowSpec.model_validate(
    {
        "parameters": {"member": {"type": "integer", "default": 0}},
        "steps": [
            {"name": "stop", "action": "t", "retry": {"limit": 1}},
            {"name": "start", "action": "t"},
        ],
        "finally": [{"name": "tidy", "action": "t"}],
    }
)


@st.composite
def retry_policies(draw: st.DrawFn) -> dict[str, Any] | None:
    if not draw(st.booleans()):
        return None
    return {
        "limit": draw(st.integers(0, 3)),
        "retryOn": draw(
            st.sampled_from([["Retryable"], ["Retryable", "Timeout", "Error"], ["Fatal", "Error"]])
        ),
        "backoff": {
            "duration": draw(st.sampled_from([0.0, 0.5, 2.0])),
            "factor": draw(st.sampled_from([1.0, 2.0, 3.0])),
            "maxDuration": draw(st.sampled_from([1.0, 5.0, 60.0])),
            "jitter": draw(st.sampled_from([0.0, 0.3, 1.0])),
        },
    }


@st.composite
def strategies(draw: st.DrawFn, size: int) -> dict[str, Any]:
    strategy: dict[str, Any] = {"parallelism": draw(st.integers(1, 3))}
    batching = draw(st.sampled_from(["none", "size", "by", "pct"]))
    if batching == "size":
        strategy["batches"] = {"size": draw(st.integers(1, 3))}
    elif batching == "by":
        strategy["batches"] = {"by": "item.zone"}
    elif batching == "pct":
        strategy["batches"] = {"maxUnavailable": draw(st.sampled_from(["25%", "50%", 2]))}
    if draw(st.booleans()):
        strategy["disruptionBudget"] = {
            "maxUnavailable": draw(st.integers(1, 3)),
            "alreadyUnavailable": draw(st.integers(0, 1)),
        }
    strategy["failureBudget"] = draw(st.integers(0, 2))
    strategy["canary"] = draw(st.integers(0, min(2, size)))
    if draw(st.booleans()):
        strategy["pause"] = draw(st.sampled_from([0.5, 3.0]))
    if draw(st.booleans()):
        strategy["healthGate"] = {"action": "gate", "retry": {"limit": 1}}
    return strategy


@st.composite
def flows(draw: st.DrawFn) -> FlowSpec:
    count = draw(st.integers(1, 6))
    steps: list[dict[str, Any]] = []
    for index in range(count):
        step: dict[str, Any] = {"name": f"s{index}"}
        kind = draw(st.sampled_from(["task", "task", "group", "subflow", "approval"]))
        if kind == "approval":
            step["approval"] = {
                "users": ["bob"],
                "timeout": draw(st.sampled_from([5.0, 50.0])),
                "default": draw(st.sampled_from(["approve", "reject"])),
            }
        elif kind == "subflow":
            step["flow"] = "sub"
            step["params"] = {"member": index}
        else:
            step["action"] = "t"
            step["params"] = {"n": index}
        if kind == "group":
            size = draw(st.integers(0, 6))
            step["forEach"] = [{"zone": f"z{i % 3}", "n": i} for i in range(size)]
            step["strategy"] = draw(strategies(size))
            if draw(st.booleans()):
                step.pop("action")
                step["flow"] = "sub"
                step["params"] = {"member": "${{ item.n }}"}
        if kind != "approval":
            policy = draw(retry_policies())
            if policy is not None:
                step["retry"] = policy
            if draw(st.integers(0, 4)) == 0:
                step["timeout"] = draw(st.sampled_from([2.0, 10.0]))
            if draw(st.integers(0, 6)) == 0:
                step["stepTimeout"] = draw(st.sampled_from([3.0, 30.0]))
        if index and draw(st.booleans()):
            step["after"] = draw(
                st.lists(st.sampled_from([f"s{i}" for i in range(index)]), unique=True, max_size=3)
            )
        step["continueOnError"] = draw(st.integers(0, 3)) == 0
        if draw(st.integers(0, 5)) == 0:
            step["when"] = draw(st.sampled_from(["true", "false", "params.go"]))
        steps.append(step)
    spec: dict[str, Any] = {"parameters": {"go": {"type": "boolean", "default": True}}}
    spec["steps"] = steps
    if draw(st.integers(0, 5)) == 0:
        spec["timeout"] = draw(st.sampled_from([5.0, 60.0]))
    if draw(st.booleans()):
        spec["onFailure"] = [{"name": "compensate", "action": "t"}]
    if draw(st.booleans()):
        spec["finally"] = [{"name": "cleanup", "action": "t"}]
    return FlowSpec.model_validate(spec)


def _in_finally(status: Any, path: str) -> bool:
    node: NodeStatus | None = status.nodes.get(path)
    while node is not None:
        if node.section == "finally":
            return True
        node = status.nodes.get(node.parent) if node.parent is not None else None
    return False


def _check_group_limits(driver: Any) -> None:
    """No group ever has more members down than its parallelism and disruption budget."""
    status = driver.status
    for node in status.nodes.values():
        if node.kind != "group" or node.members is None:
            continue
        members = [status.nodes[m] for m in node.members]
        in_flight = [m for m in members if m.phase in ("Running", "Retrying", "Waiting")]
        assert len(in_flight) <= node.parallelism, f"{node.path}: parallelism exceeded"
        running_tasks = [p for p in driver.running if p.startswith(node.path + "[")]
        assert len({p.split("]")[0] for p in running_tasks}) <= node.parallelism
        if node.budget is not None:
            failed = [m for m in members if m.phase in ("Failed", "Cancelled")]
            assert len(in_flight) + len(failed) <= max(node.budget, len(failed)), (
                f"{node.path}: disruption budget {node.budget} exceeded"
            )
            assert len(in_flight) <= node.budget


def _check_scheduled_retries(driver: Any, spec_of: Any) -> None:
    """Every scheduled retry waits within [base * (1 - jitter), base] after the failure."""
    status = driver.status
    for node in status.nodes.values():
        if node.phase != "Retrying" or node.path + "#retry" not in status.timers:
            continue
        policy = spec_of(node)
        failed = [a for a in node.attempts if a.phase == "Failed"]
        backoff = policy.backoff if policy is not None else Backoff()
        base = backoff_delay(Backoff(**{**backoff.model_dump(), "jitter": 0}), node.failures, "")
        wait = status.timers[node.path + "#retry"] - (failed[-1].finished_at or 0)
        assert base * (1 - backoff.jitter) - 1e-9 <= wait <= base + 1e-9, (
            f"{node.path}: retry scheduled after {wait}s, bounds {base} jitter {backoff.jitter}"
        )


def _check_retries(driver: Any, spec_of: Any, retried: bool) -> None:
    """Attempts never exceed limit+1 failures; no retry starts before its backoff."""
    for node in driver.status.nodes.values():
        if node.kind != "task" or not node.attempts:
            continue
        policy = spec_of(node)
        failures = [a for a in node.attempts if a.phase == "Failed"]
        limit = policy.limit if policy is not None else 0
        assert node.failures <= limit + 1, f"{node.path}: {node.failures} failures > {limit}+1"
        if not retried:
            assert len(failures) <= limit + 1, f"{node.path}: {len(failures)} > {limit}+1"
        if policy is None or retried:
            # A run retried by a person restarts its failed steps at once, without backoff.
            continue
        counted = 0
        for before, after in zip(node.attempts, node.attempts[1:], strict=False):
            if before.phase != "Failed":
                continue
            counted += 1
            plain = Backoff(**{**policy.backoff.model_dump(), "jitter": 0})
            base = backoff_delay(plain, counted, "")
            wait = after.started_at - (before.finished_at or 0)
            low = base * (1 - policy.backoff.jitter)
            assert wait >= low - 1e-9, f"{node.path}: waited {wait} < {low}"


def _policy_lookup(driver: Any) -> Any:
    status = driver.status

    def spec_of(node: NodeStatus) -> Any:
        if node.role == "gate":
            group = status.nodes[node.parent]
            step = _step(driver, group)
            return step.strategy.health_gate.retry
        return _step(driver, node).retry

    return spec_of


def _step(driver: Any, node: NodeStatus) -> Any:
    status = driver.status
    if node.role != "step":
        return _step(driver, status.nodes[node.parent])
    scope = status.nodes[node.parent]
    return driver.machine._steps[(scope.flow_ref, node.section, node.name)]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=flows(), data=st.data())
def test_random_runs_terminate_within_limits(core_driver: Any, spec: FlowSpec, data: Any) -> None:
    driver = core_driver.for_flows({"main@1": spec, "sub@1": SUBFLOW})
    driver.start()
    cancelled = False
    paused = False
    spec_of = _policy_lookup(driver)
    retries_left = 2
    for _ in range(data.draw(st.integers(0, 80), label="actions")):
        if driver.status.phase == "Failed" and retries_left and data.draw(st.booleans()):
            # Retry from the failed steps: succeeded work is kept, the rest runs again.
            succeeded = {p for p, n in driver.status.nodes.items() if n.phase == "Succeeded"}
            retries_left -= 1
            cancelled = False
            driver.apply(ev.Retry(now=driver.now, actor="bob"))
            assert driver.status.phase in ("Running", "Paused", "Failed", "Succeeded")
            for path in succeeded:
                node = driver.status.nodes[path]
                handler = _in_finally(driver.status, path) or "onFailure." in path
                if node.kind == "task" and node.role != "gate" and not handler:
                    assert node.phase == "Succeeded", f"{path} lost its success on retry"
        if driver.status.phase in ("Succeeded", "Failed", "Cancelled"):
            break
        choices = ["tick"] if driver.wake is not None else []
        if driver.running:
            choices += ["succeed", "succeed", "succeed", "fail"]
        waiting = [p for p, n in driver.status.nodes.items() if n.phase == "Waiting"]
        if waiting:
            choices.append("decide")
        choices += ["crash", "pause"] if not paused else ["resume"]
        if not cancelled:
            choices.append("cancel")
        action = data.draw(st.sampled_from(choices), label="action")
        before = len(driver.started)
        if action == "succeed":
            driver.succeed(data.draw(st.sampled_from(sorted(driver.running))))
        elif action == "fail":
            kind = data.draw(st.sampled_from(["Retryable", "Fatal", "Timeout", "Error"]))
            driver.fail(data.draw(st.sampled_from(sorted(driver.running))), kind)
        elif action == "tick":
            driver.tick()
        elif action == "decide":
            driver.now += 1
            driver.apply(
                ev.Decide(
                    now=driver.now,
                    actor="bob",
                    path=data.draw(st.sampled_from(waiting)),
                    approved=data.draw(st.booleans()),
                )
            )
        elif action == "crash":
            driver.crash()
        elif action == "pause":
            driver.apply(ev.Pause(now=driver.now))
            paused = True
        elif action == "resume":
            driver.apply(ev.Resume(now=driver.now))
            paused = False
        elif action == "cancel":
            driver.now += 1
            driver.apply(ev.Cancel(now=driver.now, actor="carol"))
            cancelled = True
        if cancelled:
            for _, path, _ in driver.started[before:]:
                assert _in_finally(driver.status, path), f"{path} started after cancellation"
        if paused:
            assert (
                all(
                    p in {s[1] for s in driver.started[:before]} or action == "crash"
                    for _, p, _ in driver.started[before:]
                )
                or action == "resume"
            ), "a new step started while paused"
        _check_group_limits(driver)
        _check_scheduled_retries(driver, spec_of)
        _check_retries(driver, spec_of, retries_left < 2)

    if paused:
        driver.apply(ev.Resume(now=driver.now))
    for _ in range(5000):
        if driver.status.phase in ("Succeeded", "Failed", "Cancelled"):
            break
        waiting = [p for p, n in driver.status.nodes.items() if n.phase == "Waiting"]
        before = len(driver.started)
        if driver.running:
            driver.succeed(sorted(driver.running)[0])
        elif waiting:
            driver.now += 1
            driver.apply(ev.Decide(now=driver.now, actor="bob", path=waiting[0]))
        elif driver.wake is not None:
            driver.tick()
        else:
            raise AssertionError(f"run stuck: {driver.status.phase}, nothing running or timed")
        if cancelled:
            for _, path, _ in driver.started[before:]:
                assert _in_finally(driver.status, path), f"{path} started after cancellation"
        _check_group_limits(driver)
    status = driver.status
    assert status.phase in ("Succeeded", "Failed", "Cancelled")
    open_nodes = {
        p: n.phase for p, n in status.nodes.items() if n.phase not in TERMINAL_NODE_PHASES
    }
    assert not open_nodes, f"nodes left open in a finished run: {open_nodes}"
    assert not driver.running, "tasks still running after the run finished"
    assert not status.timers
    if cancelled:
        assert status.phase in ("Cancelled", "Failed", "Succeeded")
        if status.phase != "Cancelled":
            # Cancellation came after the run had already decided its outcome.
            assert status.nodes[""].stage == "finally" or not status.cancelled
    _check_retries(driver, spec_of, retries_left < 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=flows(), seed=st.integers(0, 2**32 - 1))
def test_crashes_never_lose_work(core_driver: Any, spec: FlowSpec, seed: int) -> None:
    """Crashing before every completion still ends with every started step succeeded."""
    import random

    rng = random.Random(seed)
    driver = core_driver.for_flows({"main@1": spec, "sub@1": SUBFLOW})
    driver.start()
    for _ in range(5000):
        if driver.status.phase in ("Succeeded", "Failed", "Cancelled"):
            break
        waiting = [p for p, n in driver.status.nodes.items() if n.phase == "Waiting"]
        if driver.running and rng.random() < 0.2:
            driver.crash()
        elif driver.running:
            driver.succeed(rng.choice(sorted(driver.running)))
        elif waiting:
            driver.now += 1
            driver.apply(ev.Decide(now=driver.now, actor="bob", path=waiting[0]))
        elif driver.wake is not None:
            driver.tick()
        else:
            raise AssertionError("run stuck")
        _check_group_limits(driver)
    status = driver.status
    assert status.phase in ("Succeeded", "Failed")
    for node in status.nodes.values():
        if node.phase != "Failed" or node.kind == "flow":
            continue
        explained = (
            (node.kind == "task" and node.attempts[-1].error == "Timeout")
            or (node.decision is not None and not node.decision.approved)
            or "disruption budget" in node.message
            or "disruptionBudget" in node.message
            or "failure budget" in node.message
            or "health gate" in node.message
            or "a sibling step failed" in node.message
            or "step timed out" in node.message
            or status.timed_out
        )
        assert explained, f"{node.path} failed without a timeout, rejection or budget: {node}"
    for node in status.nodes.values():
        if node.kind == "task" and node.phase == "Succeeded":
            ran = [a for a in node.attempts if a.phase in ("Succeeded", "Interrupted")]
            assert ran[-1].phase == "Succeeded"
            assert all(a.phase == "Interrupted" for a in ran[:-1])
