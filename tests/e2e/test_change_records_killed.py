"""Change records across an operator SIGKILL: the operator process is killed while its
call opening a provision's change record is in flight (the ITSM receiver, a real HTTP
server, holds the answer); the next process sends it again with the same idempotency
key and finishes the run, and the receiver has exactly one ticket, one opening and one
closing per run, the closing naming the ticket of the opening."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path

import pytest
from lightkube import ApiError, codecs
from tests.itsm_receiver import Receiver

from .conftest import World

pytestmark = pytest.mark.slow  # whole-system runs: the fast group leaves them out

NS, APP = "day2", "small"
SMALL = (Path(__file__).parent / "small.yaml").read_text()
KEY = b"itsm-shared-secret-0123"


async def _operator(world: World, log: Path) -> asyncio.subprocess.Process:
    """``milkyway operator run`` in its own process against the management cluster."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "operator",
            "run",
            f"--kubeconfig={world.kubeconfig}",
            "--context=mgmt",
            "--no-leader-election",
            "--heartbeat=0.5",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def test_one_open_and_one_close_per_run_across_a_sigkill(
    clusters: World, tmp_path: Path
) -> None:
    world = clusters
    receiver = Receiver(KEY, stall_first_open=True).start()
    data = {"url": receiver.url.encode(), "key": KEY}
    try:
        await world.client.create(
            codecs.from_dict(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "milkyway-system"}}
            )
        )
    except ApiError as exc:
        if exc.status.code != 409:
            raise
    await world.client.create(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "milkyway-itsm", "namespace": "milkyway-system"},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            }
        )
    )
    log = tmp_path / "operator.log"
    first = await _operator(world, log)
    second: asyncio.subprocess.Process | None = None
    try:
        await world.apply(SMALL)
        # The first opening is held unanswered: the operator is killed with it in flight.
        await world.wait_for(receiver.stalled.is_set, "a change record being opened")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        receiver.release.set()
        (in_flight,) = receiver.distinct("open")
        assert await world.unfinished_runs(NS, APP), "the runs finished before the kill"

        second = await _operator(world, log)
        await world.wait_ready(NS, APP, within=180)
        runs = await world.runs(NS, APP)
        assert runs and all(r["status"]["phase"] == "Succeeded" for r in runs)
        tickets = set()
        for run in runs:
            name, uid = run["metadata"]["name"], run["metadata"]["uid"]
            base = f"{NS}/{name}/{uid}"
            opened = [c for c in receiver.calls if c["key"] == f"{base}/open"]
            closed = [c for c in receiver.calls if c["key"] == f"{base}/close"]
            assert opened and closed, (name, receiver.calls)
            ticket = run["status"]["nodes"]["change-open"]["outputs"]["ticket"]
            assert receiver.tickets[f"{base}/open"] == ticket
            assert {c["event"]["ticket"] for c in closed} == {ticket}
            assert {c["event"]["outcome"] for c in closed} == {"succeeded"}
            tickets.add(ticket)
        # The opening in flight at the kill was sent again by the next operator, with the
        # same idempotency key: still one ticket for that run, and one per run.
        assert len([c for c in receiver.calls if c["key"] == in_flight]) >= 2
        assert len(receiver.tickets) == len(runs) == len(tickets)
        assert len(receiver.distinct("close")) == len(runs)
        assert all(c["signed"] for c in receiver.calls)
    finally:
        receiver.stop()
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
