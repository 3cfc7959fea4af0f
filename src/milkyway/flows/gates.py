"""Gates put in front of a flow and closers after it: the run's ``spec.gates`` (approval
steps, and the action opening its change record) run before anything of the flow itself
starts; its ``spec.closers`` join the flow's ``finally`` section, so they run however the
run ends.

The operator names the gates an ApprovalPolicy asks for when it creates the run; the run's
snapshot (what the engine executes, and what its status keeps) is the flow with the gates
first. Because the gates live in the spec, an engine that builds the initial status of a
run whose creator stopped before writing it builds the same gated snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

from milkyway.model.flow import FlowSpec, Step


def with_gates(spec: FlowSpec, gates: Sequence[Step]) -> FlowSpec:
    """``spec`` whose steps all wait for ``gates`` (chained, in order) to pass.

    A step that started with the run (the first step, or one with ``after: []``) waits
    for the last gate instead; every other step already waits for one of those, so no
    step of the flow runs before every gate has passed. A rejected gate fails the run,
    so the flow's steps are omitted."""
    if not gates:
        return spec
    taken = {s.name for s in (*spec.steps, *spec.on_failure, *spec.finally_)}
    chained: list[Step] = []
    for index, gate in enumerate(gates):
        if gate.approval is None and gate.action is None:
            raise ValueError(f"gate {gate.name!r} is neither an approval nor an action step")
        name = gate.name
        while name in taken:
            name = f"{gate.name[:58]}-{index}"
            index += 1000
        taken.add(name)
        after = [chained[-1].name] if chained else []
        chained.append(gate.model_copy(update={"name": name, "after": after}))
    last = chained[-1].name
    steps: list[Step] = []
    for position, step in enumerate(spec.steps):
        starts_with_run = step.after == [] or (position == 0 and step.after is None)
        steps.append(step.model_copy(update={"after": [last]}) if starts_with_run else step)
    return spec.model_copy(update={"steps": [*chained, *steps]})


def with_closers(spec: FlowSpec, closers: Sequence[Step]) -> FlowSpec:
    """``spec`` with ``closers`` at the end of its ``finally`` section (after its own
    steps there), renamed if a name is taken."""
    if not closers:
        return spec
    taken = {s.name for s in (*spec.steps, *spec.on_failure, *spec.finally_)}
    added: list[Step] = []
    previous = [s.name for s in spec.finally_]
    for index, closer in enumerate(closers):
        name = closer.name
        while name in taken:
            name = f"{closer.name[:58]}-{index}"
            index += 1000
        taken.add(name)
        after = previous[-1:] if previous else []
        added.append(closer.model_copy(update={"name": name, "after": after}))
        previous.append(name)
    return spec.model_copy(update={"finally_": [*spec.finally_, *added]})
