"""Notifications of flows and of the heartbeat, delivery through a mail server outage,
and what a malformed subscription or template does: the operator on simulated clusters,
a real SMTP server (aiosmtpd) and a real HTTP receiver standing in for Slack."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest
from lightkube.resources.core_v1 import Event

from milkyway.kube.labels import APPLICATION as APPLICATION_LABEL
from milkyway.kube.resources import APPLICATION, FLOW, FLOWRUN
from milkyway.notify.center import NOTIFICATION_LABEL, TRIGGER_LABEL
from milkyway.notify.receivers import MailboxServer, WebhookReceiver, text_of

from .conftest import ensure_namespace
from .notify_helpers import SUBSCRIBE, configure, mails_with, slack_with, zookeeper_app

NS = "flows"
SMTP_DOWN = float(os.environ.get("MILKYWAY_TEST_SMTP_DOWN", "8"))
"""Seconds the mail server is down: longer than the first retries (1, 2, 4 s)."""

FAILING = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "probe-missing"},
    "spec": {
        "steps": [
            {
                "name": "probe",
                "action": "k8s.wait",
                "params": {
                    "cluster": "na-phx-1",
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "never-there",
                    "namespace": NS,
                    "condition": "true",
                    "timeout": 0.2,
                    "interval": 0.1,
                },
                "retry": {"limit": 2, "backoff": {"duration": 0.2}},
            }
        ]
    },
}
QUICK = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "quick"},
    "spec": {"steps": [{"name": "nap", "action": "sleep", "params": {"seconds": 0}}]},
}

ANNOUNCE = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "announce"},
    "spec": {
        "steps": [
            {
                "name": "mail",
                "action": "notify",
                "params": {
                    "channel": "email",
                    "message": "maintenance of ${{ run.id }} starts",
                    "fields": {"recipients": "team@example.com", "subject": "maintenance"},
                },
            },
            {
                "name": "log",
                "action": "notify",
                "params": {"channel": "nowhere", "message": "only logged"},
            },
        ]
    },
}

GATED = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "Flow",
    "metadata": {"name": "gated"},
    "spec": {
        "steps": [
            {"name": "confirm", "approval": {"users": ["bob"], "message": "roll zookeeper?"}},
            {"name": "nap", "action": "sleep", "params": {"seconds": 0}},
        ]
    },
}


async def _flows(world: Any) -> None:
    for flow in (FAILING, QUICK, ANNOUNCE, GATED):
        await world.mgmt.create(FLOW.from_dict(flow))


async def _deliveries(world: Any, trigger: str) -> list[dict[str, Any]]:
    return [
        r.to_dict()
        async for r in world.mgmt.list(
            FLOWRUN, namespace=NS, labels={TRIGGER_LABEL: trigger, NOTIFICATION_LABEL: "app"}
        )
    ]


async def _submit(operator: Any, world: Any, flow: str) -> str:
    async def catalogued() -> bool:
        return flow in operator.session.catalog.names()

    await world.eventually(catalogued, within=20, what=f"flow {flow} in the catalog")
    engine = operator.session.engine_for(NS)
    return str(await engine.submit(flow, {}, labels={APPLICATION_LABEL: "app"}))


@pytest.mark.slow
async def test_a_failing_task_is_told_once_with_task_attempt_flow_run_and_link(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(
        world.mgmt, mailbox, slack, context="flowRunUrl: https://mw.example.com/{namespace}/{run}\n"
    )
    await _flows(world)
    annotations = {
        f"{SUBSCRIBE}task-failed.email": "oncall@example.com",
        f"{SUBSCRIBE}flow-failed.slack": "#ops",
    }
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(zookeeper_app("app", NS, annotations, {"enabled": False}))
        run = await _submit(operator, world, "probe-missing")
        engine = operator.session.engine_for(NS)
        finished = await engine.wait(run, within=60)
        assert finished.status.phase == "Failed"
        assert finished.status.nodes["probe"].failures == 3
        await world.eventually(
            lambda: slack_with(slack, "FLOW_FAILED:probe-missing", run),
            within=30,
            what="the FLOW_FAILED message",
        )
        mails = await world.eventually(
            lambda: mails_with(mailbox, "[TASK_FAILED:probe]"), within=30, what="TASK_FAILED"
        )
        text = text_of(mails[0])
        assert f"[TASK_FAILED:probe] Task probe:1 in Flow probe-missing:{run} failed." in text
        assert "Details: attempt failed (Retryable)" in text
        assert f"| https://mw.example.com/{NS}/{run}" in text
        # Its three attempts and the run's end were all seen: still one delivery, one mail.
        assert len(await _deliveries(world, "task-failed")) == 1
    assert len(mails_with(mailbox, "[TASK_FAILED:probe]")) == 1


@pytest.mark.slow
async def test_a_heartbeat_says_no_alerts_for_a_healthy_application(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(world.mgmt, mailbox, slack)
    annotations = {f"{SUBSCRIBE}heartbeat.email": "team@example.com"}
    health = {"cron": "* * * * * */2", "heartbeat": "* * * * * */3"}
    async with world.operator(retention_interval=1.0) as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(zookeeper_app("app", NS, annotations, health))
        subject = f"[milkyway] [Heartbeat] {NS} Health Report for [zookeeper]"

        def healthy_heartbeat() -> list[Any]:
            return [
                m
                for m in mails_with(mailbox, subject)
                if "No alerts" in text_of(m) and "app: Healthy" in text_of(m)
            ]

        mails = await world.eventually(healthy_heartbeat, within=120, what="a No alerts heartbeat")

        async def health_runs() -> list[dict[str, Any]]:
            return [
                r.to_dict()
                async for r in world.mgmt.list(
                    FLOWRUN, namespace=NS, labels={"milkyway.ebay.com/health-of": "app"}
                )
            ]

        def fired(kind: str, outcome: str) -> int:
            fired = operator.session.notifying.schedules.fired
            return sum(1 for _, k, _, done in fired if k == kind and done == outcome)

        # A healthy Application's checks are quiet (status.health written, no run); every
        # heartbeat is a run.
        await world.eventually(
            lambda: fired("health", "checked") > 7 and fired("heartbeat", "started") > 5,
            within=90,
            what="more than 7 quiet checks and 5 heartbeat runs",
        )
        app = await world.mgmt.get(APPLICATION, "app", namespace=NS)
        history = app.to_dict()["status"]["health"]["history"]
        assert len(history) == 10 and {h["status"] for h in history} == {"Healthy"}

        async def pruned() -> bool:
            runs = await health_runs()
            kinds = [r["metadata"]["labels"]["milkyway.ebay.com/schedule"] for r in runs]
            # The newest three of each kind are kept, and any started since.
            return kinds.count("health") <= 5 and 0 < kinds.count("heartbeat") <= 5

        # The operator's own retention (every second here) removes the older finished runs.
        await world.eventually(pruned, within=30, what="older health runs removed")
    assert mails[0]["Subject"] == subject
    assert mails[0]["To"] == "team@example.com"


@pytest.mark.slow
async def test_a_mail_sent_while_the_server_is_down_arrives_once_it_is_back(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(world.mgmt, mailbox, slack)
    await _flows(world)
    annotations = {
        f"{SUBSCRIBE}flow-succeeded.email": "oncall@example.com",
        f"{SUBSCRIBE}flow-succeeded.slack": "#ops",
    }
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(zookeeper_app("app", NS, annotations, {"enabled": False}))
        await mailbox.stop()
        run = await _submit(operator, world, "quick")
        # Slack is up: its subscription is not held back by the mail server's outage.
        await world.eventually(
            lambda: slack_with(slack, f"quick:{run}"), within=30, what="the Slack message"
        )

        async def retried() -> bool:
            runs = await _deliveries(world, "flow-succeeded")
            mail = [r for r in runs if r["spec"]["params"]["service"] == "email"]
            node = ((mail[0].get("status") or {}).get("nodes") or {}).get("deliver", {})
            return bool(mail) and node.get("failures", 0) >= 2

        await world.eventually(retried, within=30, what="the mail delivery retrying")
        await asyncio.sleep(SMTP_DOWN)
        assert mails_with(mailbox, run) == []
        await mailbox.start()
        await world.eventually(
            lambda: mails_with(mailbox, f"quick:{run}"), within=90, what="the mail after the outage"
        )

        async def listed() -> dict[str, list[str]] | None:
            listing = await _cli(world, "notifications", "-n", NS)
            rows = [line.split() for line in listing.splitlines() if "flow-succeeded" in line]
            by_service = {row[3]: row for row in rows}
            sent = all(row[5] == "Sent" for row in rows)
            return by_service if sent and len(by_service) == 2 else None

        by_service = await world.eventually(listed, within=30, what="both deliveries Sent")
    assert len(mails_with(mailbox, f"quick:{run}")) == 1
    assert by_service["email"][4] == "oncall@example.com"
    assert int(by_service["email"][6]) >= 3  # the attempts made while the server was down
    assert by_service["slack"][6] == "1"


async def _cli(world: Any, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "milkyway.cli.main",
        *args,
        f"--kubeconfig={world.sim.kubeconfig_path}",
        "--context=mgmt",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.slow
async def test_a_malformed_subscription_or_template_is_reported_on_the_application(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(
        world.mgmt,
        mailbox,
        slack,
        **{
            # Reads a Secret's name it was never given, and tries to escape the sandbox.
            "template.flow-succeeded": "subject: '{{ secrets.smtp_password }}'\nbody: x\n",
            "template.flow-failed": "subject: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n"
            "body: x\n",
        },
    )
    await _flows(world)
    annotations = {
        f"{SUBSCRIBE}health-exploded.email": "oncall@example.com",
        f"{SUBSCRIBE}flow-succeeded.email": "oncall@example.com",
    }
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(
            zookeeper_app("app", NS, annotations, {"cron": "* * * * * */2"})
        )

        async def condition() -> dict[str, Any] | None:
            app = await world.application(NS, "app")
            found = [
                c
                for c in (app.get("status") or {}).get("conditions") or []
                if c["type"] == "NotificationsValid"
            ]
            return found[0] if found else None

        found = await world.eventually(condition, within=60, what="NotificationsValid")
        assert found["status"] == "False"
        assert f"{SUBSCRIBE}health-exploded.email" in found["message"]
        run = await _submit(operator, world, "quick")
        # The subscriber still gets the message, from the built-in template; the broken
        # template is reported on the Application.
        mails = await world.eventually(
            lambda: mails_with(mailbox, f"quick:{run}"), within=30, what="the built-in mail"
        )
        assert "smtp_password" not in str(mails[0]["Subject"])

        async def template_reported() -> dict[str, Any] | None:
            got = await condition()
            return got if got and "secrets" in got["message"] else None

        found = await world.eventually(template_reported, within=30, what="template reported")
        assert "'secrets' is undefined" in found["message"]
        events = [
            e
            async for e in world.mgmt.list(Event, namespace=NS)
            if e.reason == "NotificationsInvalid"
        ]
        assert any("health-exploded" in (e.message or "") for e in events)
        assert operator.session is not None

        # The operator still works: the application is still reconciled and checked.
        async def checked() -> bool:
            app = await world.application(NS, "app")
            return bool(((app.get("status") or {}).get("health") or {}).get("checkedAt"))

        await world.eventually(checked, within=30, what="a health report despite it all")


@pytest.mark.slow
async def test_a_flow_notify_step_mails_through_the_configured_service(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(world.mgmt, mailbox, slack)
    await _flows(world)
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await ensure_namespace(world.mgmt, NS)
        run = await _submit(operator, world, "announce")
        done = await operator.session.engine_for(NS).wait(run, within=60)
        assert done.status.phase == "Succeeded", done.status.message
        assert done.status.nodes["log"].outputs == {"channel": "nowhere", "delivered": 0}
    mails = mails_with(mailbox, "maintenance", run)
    assert len(mails) == 1
    assert mails[0]["Subject"] == "maintenance" and mails[0]["To"] == "team@example.com"


@pytest.mark.slow
async def test_an_approval_is_told_when_requested_and_when_decided(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(world.mgmt, mailbox, slack)
    await _flows(world)
    annotations = {
        f"{SUBSCRIBE}approval-requested.slack": "#approvers",
        f"{SUBSCRIBE}approval-decided.email": "oncall@example.com",
    }
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(zookeeper_app("app", NS, annotations, {"enabled": False}))
        run = await _submit(operator, world, "gated")
        await world.eventually(
            lambda: slack_with(slack, "APPROVAL_REQUESTED:confirm", run),
            within=60,
            what="the approval request on Slack",
        )
        engine = operator.session.engine_for(NS)
        await engine.request(run, "approve", "bob", step="confirm", reason="go ahead")
        assert (await engine.wait(run, within=60)).status.phase == "Succeeded"
        mails = await world.eventually(
            lambda: mails_with(mailbox, "APPROVAL_DECIDED:confirm", run),
            within=60,
            what="the decision by mail",
        )
    assert "was approved by bob. go ahead" in text_of(mails[0])
    assert len(slack_with(slack, "APPROVAL_REQUESTED:confirm")) == 1
