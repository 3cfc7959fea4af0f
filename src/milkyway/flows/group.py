"""Pure planning of group operations: cutting ``forEach`` members into batches.

Batches run one after another (with the pause and health gate between them); within a
batch, members start as parallelism and the disruption budget allow. The plan is
computed once when the group starts and stored in the run, so a restarted engine
continues the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from milkyway.model.flow import GroupStrategy


def plan_batches(
    items: Sequence[Any],
    strategy: GroupStrategy,
    key_of: Callable[[int, Any], Any] | None = None,
) -> list[list[int]]:
    """Indices of ``items`` per batch, in run order.

    ``key_of(index, item)`` evaluates ``batches.by`` for one member; it is required only
    when the strategy batches by key.
    """
    count = len(items)
    if count == 0:
        return []
    order = list(range(count))
    batching = strategy.batches
    if batching is None:
        batches = [order]
    elif batching.size is not None:
        batches = _chunks(order, batching.size)
    elif batching.by is not None:
        if key_of is None:
            raise ValueError("batches.by needs a key function")
        keyed: dict[str, list[int]] = {}
        for index in order:
            keyed.setdefault(repr(key_of(index, items[index])), []).append(index)
        batches = list(keyed.values())
    else:
        batches = _chunks(order, unavailable_count(batching.max_unavailable, count))
    if strategy.canary:
        canary = order[: min(strategy.canary, count)]
        taken = set(canary)
        rest = [[i for i in batch if i not in taken] for batch in batches]
        batches = [canary, *[batch for batch in rest if batch]]
    return batches


def unavailable_count(value: int | str | None, total: int) -> int:
    """A count or ``"N%"`` of ``total``, rounded down, at least one."""
    if value is None:
        return total
    if isinstance(value, str):
        percent = int(value.rstrip("%"))
        return max(1, total * percent // 100)
    return max(1, int(value))


def _chunks(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]
