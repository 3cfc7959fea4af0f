"""The demo's notifications: a local mail server and Slack-webhook receiver, the
operator's notification config pointing at them, and the demo's namespaces subscribed.

Mail lands as ``.eml`` files in ``mailbox/`` and Slack posts as ``.json`` files in
``slack/``, both next to the demo's kubeconfig.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

from milkyway.notify.config import CONFIG_MAP
from milkyway.notify.receivers import MailboxServer, WebhookReceiver
from milkyway.notify.subscriptions import PREFIX

EMAIL_TRIGGERS = ("health-degraded", "health-unhealthy", "health-recovered", "task-failed")
SLACK_TRIGGERS = ("health-unhealthy", "health-recovered", "flow-failed")


async def start_notifications(
    stack: contextlib.AsyncExitStack,
    client: AsyncClient,
    kubeconfig: Path,
    system_namespace: str,
    namespaces: Sequence[str],
) -> str:
    """Start the receivers, configure and subscribe; returns how to read what arrives."""
    mailbox = MailboxServer(kubeconfig.with_name("mailbox"))
    await mailbox.start()
    stack.push_async_callback(mailbox.stop)
    slack = WebhookReceiver(kubeconfig.with_name("slack"))
    await slack.start()
    stack.push_async_callback(slack.stop)
    config = ConfigMap(
        metadata=ObjectMeta(name=CONFIG_MAP, namespace=system_namespace),
        data={
            "service.email": f"host: 127.0.0.1\nport: {mailbox.port}\nfrom: milkyway@demo\n",
            "service.slack": f"url: {slack.url}/services/demo\n",
        },
    )
    try:
        await client.create(config)
    except ApiError as exc:
        if exc.status.code != 409:
            raise
        await client.replace(config)
    annotations = {f"{PREFIX}{t}.email": "oncall@demo" for t in EMAIL_TRIGGERS}
    annotations |= {f"{PREFIX}{t}.slack": "#milkyway" for t in SLACK_TRIGGERS}
    for name in namespaces:
        with contextlib.suppress(ApiError):
            await client.create(Namespace(metadata=ObjectMeta(name=name)))
        await client.patch(
            Namespace, name, {"metadata": {"annotations": annotations}}, patch_type=PatchType.MERGE
        )
    return (
        f"Notifications: mail to {mailbox.directory}/*.eml, Slack posts to "
        f"{slack.directory}/*.json; list deliveries with `milkyway notifications`. "
        "Break an ensemble to see one, e.g. "
        "`milkyway sim fault crash-loop stream1-zookeeper1-phx-0 -c na-phx -n milkyway`."
    )
