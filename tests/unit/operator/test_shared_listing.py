"""Shared pod listings: callers asking during a listing share the next one, never the one
under way (it may predate what they wrote just before asking: a gate's own claim)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from milkyway.operator.tasks.shared_listing import fresh_listing, listings_under_way

SELECTOR = {"app": "kafka"}


class Obj:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class Listing:
    """One listing: it reads the client's pods when it begins (the first item asked for),
    then waits for the test to let it answer."""

    def __init__(self, client: HeldClient) -> None:
        self.client = client
        self.resourceVersion = ""

    def __aiter__(self) -> AsyncIterator[Obj]:
        return self._items()

    async def _items(self) -> AsyncIterator[Obj]:
        client = self.client
        client.begun += 1
        seen = [dict(pod) for pod in client.pods]
        self.resourceVersion = str(client.version)
        answer = client.answers.pop(0) if client.answers else None
        if answer is not None:
            await answer.wait()
        if client.fail:
            raise ConnectionError("refused")
        for pod in seen:
            yield Obj(pod)


class HeldClient:
    """A client whose listings begin at once and answer when the test sets their event."""

    def __init__(self) -> None:
        self.pods = [{"metadata": {"name": "kafka-0", "annotations": {}}}]
        self.version = 1
        self.begun = 0
        self.answers: list[asyncio.Event] = []
        self.fail = False

    def hold(self) -> asyncio.Event:
        event = asyncio.Event()
        self.answers.append(event)
        return event

    def claim(self) -> None:
        self.pods = [{"metadata": {"name": "kafka-0", "annotations": {"claimed": "yes"}}}]
        self.version += 1

    def list(self, resource: Any, namespace: str, labels: dict[str, str]) -> Listing:
        return Listing(self)


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_a_caller_asking_during_a_listing_gets_the_next_one_not_that_one() -> None:
    client = HeldClient()
    first_answer = client.hold()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    # A gate writes its claim, then asks: the listing under way began before the claim.
    client.claim()
    second = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await asyncio.sleep(0)
    first_answer.set()

    early, _ = await first
    late, version = await second
    assert early[0]["metadata"]["annotations"] == {}
    assert late[0]["metadata"]["annotations"] == {"claimed": "yes"}, (
        "the second caller must see what was written before it asked"
    )
    assert version == "2"
    assert client.begun == 2
    assert listings_under_way() == 0


async def test_callers_asking_during_one_listing_share_a_single_next_one() -> None:
    client = HeldClient()
    first_answer, next_answer = client.hold(), client.hold()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    others = [asyncio.create_task(fresh_listing(client, "ns", SELECTOR)) for _ in range(9)]
    await asyncio.sleep(0)
    first_answer.set()
    await until(lambda: client.begun == 2)
    next_answer.set()

    answers = await asyncio.gather(first, *others)
    assert client.begun == 2, "ten callers, two listings: the one under way and the next"
    assert all(pods == answers[0][0] for pods, _ in answers)
    assert answers[1][0] is not answers[2][0], "each caller gets a list of its own"
    assert listings_under_way() == 0


async def test_callers_of_other_pods_or_clients_do_not_share() -> None:
    client, other = HeldClient(), HeldClient()
    await asyncio.gather(
        fresh_listing(client, "ns", SELECTOR),
        fresh_listing(client, "ns", {"app": "zookeeper"}),
        fresh_listing(client, "other", SELECTOR),
        fresh_listing(other, "ns", SELECTOR),
    )
    assert (client.begun, other.begun) == (3, 1)


async def test_a_failed_listing_fails_every_caller_sharing_it_and_the_next_caller_lists_again() -> (
    None
):
    client = HeldClient()
    first_answer, next_answer = client.hold(), client.hold()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    sharing = [asyncio.create_task(fresh_listing(client, "ns", SELECTOR)) for _ in range(2)]
    await asyncio.sleep(0)
    first_answer.set()
    await until(lambda: client.begun == 2)
    client.fail = True
    next_answer.set()
    await first
    for task in sharing:
        with pytest.raises(ConnectionError):
            await task
    client.fail = False
    pods, _ = await fresh_listing(client, "ns", SELECTOR)
    assert [p["metadata"]["name"] for p in pods] == ["kafka-0"]
    assert client.begun == 3
    assert listings_under_way() == 0


async def test_a_cancelled_caller_leaves_the_shared_listing_to_the_others() -> None:
    client = HeldClient()
    first_answer, next_answer = client.hold(), client.hold()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    leaving = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    staying = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await asyncio.sleep(0)
    first_answer.set()
    await until(lambda: client.begun == 2)
    leaving.cancel()
    next_answer.set()
    await first
    pods, _ = await staying
    assert pods and leaving.cancelled()
    assert listings_under_way() == 0


async def test_a_caller_content_with_its_own_start_joins_a_listing_begun_since() -> None:
    client = HeldClient()
    answer = client.hold()
    started = time.monotonic()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    joining = asyncio.create_task(fresh_listing(client, "ns", SELECTOR, since=started))
    await asyncio.sleep(0)
    answer.set()
    await first
    await joining
    assert client.begun == 1, "the listing under way began after the caller started"
    assert listings_under_way() == 0


async def test_a_listing_begun_before_the_callers_start_is_not_joined() -> None:
    client = HeldClient()
    first_answer, next_answer = client.hold(), client.hold()
    first = asyncio.create_task(fresh_listing(client, "ns", SELECTOR))
    await until(lambda: client.begun == 1)
    client.claim()
    started = time.monotonic()
    late = asyncio.create_task(fresh_listing(client, "ns", SELECTOR, since=started))
    await asyncio.sleep(0)
    first_answer.set()
    await until(lambda: client.begun == 2)
    next_answer.set()
    await first
    pods, _ = await late
    assert pods[0]["metadata"]["annotations"] == {"claimed": "yes"}
    assert listings_under_way() == 0
