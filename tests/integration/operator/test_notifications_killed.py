"""The operator SIGKILLed between rendering a notification and sending it: the next
operator process resumes the delivery and the receiver gets exactly one mail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from milkyway.flows.dsl import Catalog
from milkyway.flows.engine import new_run
from milkyway.flows.kube_store import KubeStore
from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.resources import FLOW
from milkyway.model.flow import Flow
from milkyway.notify.receivers import MailboxServer, WebhookReceiver

from .notify_helpers import SUBSCRIBE, configure, zookeeper_app

HERE = Path(__file__).parent
NS = "killed"
QUICK = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "quick"},
    "spec": {"steps": [{"name": "nap", "action": "sleep", "params": {"seconds": 0}}]},
}


async def _operator(world: Any, log: Path, hold: Path | None) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MILKYWAY_TEST_HOLD_SEND", None)
    if hold is not None:
        env["MILKYWAY_TEST_HOLD_SEND"] = str(hold)
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "notify_operator.py"),
            str(world.sim.kubeconfig_path),
            "mgmt",
            stdout=out,
            stderr=out,
            env=env,
        )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    await proc.wait()


@pytest.mark.slow
async def test_killed_between_render_and_send_one_mail_arrives(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver, tmp_path: Path
) -> None:
    await configure(world.mgmt, mailbox, slack)
    await world.mgmt.create(FLOW.from_dict(QUICK))
    annotations = {f"{SUBSCRIBE}flow-succeeded.email": "oncall@example.com"}
    await world.apply_application(zookeeper_app("app", NS, annotations, {"enabled": False}))
    log = tmp_path / "operator.log"
    hold = tmp_path / "rendered"
    first = await _operator(world, log, hold)
    second: asyncio.subprocess.Process | None = None
    try:
        run = new_run(
            Catalog([Flow.model_validate(QUICK)]),
            None,
            "quick",
            namespace=NS,
            labels={APPLICATION_LABEL: "app"},
        )
        await KubeStore(world.mgmt, NS).create(run)
        await world.eventually(hold.exists, within=90, what="a rendered, unsent mail")
        await _kill(first)
        assert mailbox.messages() == []
        second = await _operator(world, log, None)

        def quick_mail() -> list[Any]:
            return [m for m in mailbox.messages() if run.metadata.name in str(m["Subject"])]

        await world.eventually(quick_mail, within=90, what="the mail from the second operator")
        # Long enough for the second operator to have seen every run and delivery again.
        await asyncio.sleep(5)
        assert len(quick_mail()) == 1
        # Every event (the provision's success too) reached the mailbox exactly once.
        keys = [str(m["X-Milkyway-Delivery"]) for m in mailbox.messages()]
        assert sorted(keys) == sorted(set(keys))
        ids = [str(m["Message-ID"]) for m in mailbox.messages()]
        assert sorted(ids) == sorted(set(ids))
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                await _kill(proc)
