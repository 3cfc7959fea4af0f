"""Health checks and notifications end to end: the operator on simulated clusters, a real
SMTP server (aiosmtpd) and a real HTTP receiver standing in for Slack."""

from __future__ import annotations

from typing import Any

import pytest

from milkyway.notify.receivers import MailboxServer, WebhookReceiver, text_of

from .notify_helpers import SUBSCRIBE, configure, mails_with, slack_with, zookeeper_app

NS = "health"


def health_of(app: dict[str, Any]) -> str:
    return ((app.get("status") or {}).get("health") or {}).get("status", "")


@pytest.mark.slow
async def test_a_broken_ensemble_is_mailed_and_slacked_and_its_recovery_told_once(
    world: Any, mailbox: MailboxServer, slack: WebhookReceiver
) -> None:
    await configure(world.mgmt, mailbox, slack)
    annotations = {
        f"{SUBSCRIBE}health-unhealthy.email": "oncall@example.com",
        f"{SUBSCRIBE}health-unhealthy.slack": "#ops",
        f"{SUBSCRIBE}health-recovered.email": "oncall@example.com",
        f"{SUBSCRIBE}health-recovered.slack": "#ops",
        # The operator would replace members crash-looping for a minute; this test is
        # about telling, not healing, so on a slow machine it must not race a remedy.
        "milkyway.ebay.com/remediate-after": "3600",
    }
    async with world.operator() as operator:
        await operator.wait_until_leading(10)
        await world.apply_application(zookeeper_app("zk", NS, annotations))

        async def healthy() -> bool:
            return health_of(await world.application(NS, "zk")) == "Healthy"

        try:
            await world.eventually(healthy, within=120, what="zk Healthy")
        except AssertionError:
            print(await world.story(NS, "zk"))
            raise
        faults = world.control.faults
        broken = [("na-phx-1", "zk-zookeeper-phx-0"), ("na-slc-1", "zk-zookeeper-slc-0")]
        lifted = []
        for cluster, pod in broken:
            lifted.append(await faults.crash_loop(cluster, pod, namespace=NS))

        def unhealthy_mail() -> list[Any]:
            return mails_with(mailbox, "[Unhealthy]", "health/zk")

        mails = await world.eventually(unhealthy_mail, within=120, what="the Unhealthy mail")
        text = text_of(mails[0])
        assert "zk-zookeeper-phx-0" in text and "zk-zookeeper-slc-0" in text
        assert "zone phx" in text and "zone slc" in text and "zookeeper" in text
        assert "quorum: 1/3 members Ready across all zones, need 2" in text
        assert "member-ready" in text
        assert mails[0]["To"] == "oncall@example.com"
        assert mails[0]["Message-ID"]
        assert mails[0].get_body(preferencelist=("html",)) is not None
        posts = await world.eventually(
            lambda: slack_with(slack, "Unhealthy", "zk-zookeeper-phx-0", "quorum"),
            within=60,
            what="the Unhealthy Slack message",
        )
        assert posts[0]["json"]["blocks"][0]["type"] == "header"
        assert posts[0]["json"]["channel"] == "#ops"

        async def unhealthy() -> dict[str, Any] | None:
            app = await world.application(NS, "zk")
            return app if health_of(app) == "Unhealthy" else None

        app = await world.eventually(unhealthy, within=60, what="status.health Unhealthy")
        health = app["status"]["health"]
        assert health["components"]["zookeeper"]["zones"]["ams"]["status"] == "Healthy"
        assert health["components"]["zookeeper"]["zones"]["phx"]["status"] == "Degraded"
        members = {f["member"] for f in health["findings"] if f["check"] == "member-ready"}
        assert members == {"zk-zookeeper-phx-0", "zk-zookeeper-slc-0"}
        assert all(f["since"] for f in health["findings"])

        for fault in lifted:
            await faults.lift(fault.id)
        await world.eventually(
            lambda: mails_with(mailbox, "[Recovered]", "health/zk"),
            within=120,
            what="the Recovered mail",
        )
        await world.eventually(
            lambda: slack_with(slack, "Recovered"), within=60, what="the Recovered Slack message"
        )
        # A few more checks pass while healthy: still one recovery message of each kind.
        checked = app["status"]["health"]["checkedAt"]

        async def checked_again() -> bool:
            now = (await world.application(NS, "zk"))["status"]["health"]
            return (
                now["checkedAt"] > checked
                and now["status"] == "Healthy"
                and len([h for h in now["history"] if h["status"] == "Healthy"]) >= 3
            )

        await world.eventually(checked_again, within=120, what="more healthy checks")
    assert len(mails_with(mailbox, "[Recovered]")) == 1
    assert len(slack_with(slack, "Recovered")) == 1
    assert len({m["Message-ID"] for m in mails_with(mailbox, "[Unhealthy]")}) == 1
