"""Shared by the notification tests: real receivers, the operator's notification config
and a ZooKeeper Application subscribed to its health changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from milkyway.notify.config import CONFIG_MAP
from milkyway.notify.receivers import MailboxServer, WebhookReceiver, text_of

SYSTEM = "milkyway-system"
SUBSCRIBE = "notifications.milkyway.ebay.com/subscribe."


def zookeeper_app(
    name: str,
    namespace: str,
    annotations: Mapping[str, str],
    health: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ZooKeeper ensemble of one member in each of three zones."""
    return {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations)},
        "spec": {
            "healthCheck": dict(health or {"cron": "* * * * * */2"}),
            "components": [
                {
                    "name": "zookeeper",
                    "version": "3.8.4",
                    "regions": [
                        {
                            "name": "NA",
                            "zones": [{"name": "phx", "size": 1}, {"name": "slc", "size": 1}],
                        },
                        {"name": "EU", "zones": [{"name": "ams", "size": 1}]},
                    ],
                }
            ],
        },
    }


async def configure(
    mgmt: AsyncClient, mailbox: MailboxServer, slack: WebhookReceiver, **extra: str
) -> None:
    """The operator's notifications ConfigMap: an email and a Slack service."""
    data = {
        "service.email": f"host: 127.0.0.1\nport: {mailbox.port}\nfrom: milkyway@example.com\n",
        "service.slack": f"url: {slack.url}/services/T000/B000/XXX\n",
        **extra,
    }
    config = ConfigMap(metadata=ObjectMeta(name=CONFIG_MAP, namespace=SYSTEM), data=data)
    try:
        await mgmt.create(config)
    except ApiError as exc:
        if exc.status.code != 409:
            raise
        await mgmt.replace(config)


def mails_with(mailbox: MailboxServer, *needles: str) -> list[Any]:
    return [
        m
        for m in mailbox.messages()
        if all(n in str(m["Subject"]) + "\n" + text_of(m) for n in needles)
    ]


def slack_with(slack: WebhookReceiver, *needles: str) -> list[dict[str, Any]]:
    return [r for r in slack.received if all(n in r["raw"] for n in needles)]
