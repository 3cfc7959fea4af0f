"""From an event to deliveries: one FlowRun per subscription, named after both.

The run is the delivery's record, written before anything is sent: an operator that
dies at any point resumes it (its engine takes the run over once the lease expires), so
a send is never lost. Its name is a digest of the event's key and the subscription, so
the same event seen again (a retried task, a replayed watch after a restart, a second
operator replica) meets the run that exists and sends nothing more. Each subscription
has its own run, retried on its own: a failing mail server never holds back Slack.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret
from pydantic import BaseModel, ConfigDict, Field

from milkyway.flows.builtin import NotifyParams
from milkyway.flows.store import AlreadyExists
from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, TaskRegistry, TaskSpec
from milkyway.kube.resources import APPLICATION
from milkyway.notify import metrics
from milkyway.notify.config import CONFIG_MAP, SECRET, NotifyConfig, parse
from milkyway.notify.ratelimit import RateLimiter
from milkyway.notify.services import message_id, send
from milkyway.notify.subscriptions import (
    Subscription,
    for_trigger,
    from_annotations,
    split_recipients,
)
from milkyway.notify.templates import Message, TemplateProblem, render
from milkyway.notify.triggers import Event, digest

log = logging.getLogger("milkyway.notify")

DELIVERY_FLOW = "milkyway-notify"
DELIVERY_TASK = "notify.deliver"
NOTIFICATION_LABEL = "milkyway.ebay.com/notification-for"
TRIGGER_LABEL = "milkyway.ebay.com/notification-trigger"
SERVICE_LABEL = "milkyway.ebay.com/notification-service"
CONDITION = "NotificationsValid"
SUBMITTED_MEMORY = 50_000
"""Delivery names remembered to skip a create that would meet an existing run."""


class Recorder(Protocol):
    async def record(
        self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None: ...


def delivery_name(event_key: str, subscription: Subscription) -> str:
    return f"notify-{digest(event_key, subscription.id, length=20)}"


class DeliverParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str
    service: str
    recipients: list[str] = Field(default_factory=list)
    key: str
    subscription: str
    namespace: str
    application: str
    vars: dict[str, Any] = Field(default_factory=dict)


class NotificationCenter:
    """Subscriptions, config and delivery for one operator (or one flow engine)."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        engine_for: Callable[[str], Any],
        recorder: Recorder | None = None,
        *,
        config_ttl: float = 2.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        """Where the ConfigMap and Secret are (the operator's namespace)."""
        self.engine_for = engine_for
        self.recorder = recorder
        self.config_ttl = config_ttl
        self.limiter = RateLimiter()
        self._config: tuple[float, NotifyConfig] | None = None
        self._namespaces: dict[str, tuple[float, dict[str, str]]] = {}
        self._submitted: set[str] = set()
        self._reported: dict[tuple[str, str], str] = {}
        self._render_problems: dict[tuple[str, str], dict[str, str]] = {}

    # --- reading ----------------------------------------------------------------------

    async def config(self) -> NotifyConfig:
        now = time.monotonic()
        if self._config is not None and now - self._config[0] < self.config_ttl:
            return self._config[1]
        data: Mapping[str, str] | None = None
        secret: Mapping[str, str] | None = None
        try:
            data = (await self.client.get(ConfigMap, CONFIG_MAP, namespace=self.namespace)).data
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        try:
            secret = (await self.client.get(Secret, SECRET, namespace=self.namespace)).data
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        config = parse(data, secret)
        metrics.CONFIG_PROBLEMS.set(len(config.problems))
        if config.problems and (
            self._config is None or self._config[1].problems != config.problems
        ):
            for problem in config.problems:
                log.warning("notifications config: %s", problem)
        self._config = (now, config)
        return config

    async def _namespace_annotations(self, namespace: str) -> dict[str, str]:
        now = time.monotonic()
        cached = self._namespaces.get(namespace)
        if cached is not None and now - cached[0] < self.config_ttl:
            return cached[1]
        try:
            found = await self.client.get(Namespace, namespace)
            annotations = dict(found.metadata.annotations or {})
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            annotations = {}
        self._namespaces[namespace] = (now, annotations)
        return annotations

    async def subscriptions(self, app: Mapping[str, Any]) -> tuple[list[Subscription], list[str]]:
        """The Application's, its Namespace's and the config's subscriptions, and the
        problems found in the annotations."""
        metadata = app.get("metadata") or {}
        own, errors = from_annotations(metadata.get("annotations"), "Application")
        namespace_annotations = await self._namespace_annotations(metadata.get("namespace", ""))
        inherited, namespace_errors = from_annotations(namespace_annotations, "Namespace")
        config = await self.config()
        return [*own, *inherited, *config.subscriptions], [*errors, *namespace_errors]

    # --- events -----------------------------------------------------------------------

    async def problems(self, app: Mapping[str, Any], subscription_errors: list[str]) -> list[str]:
        """Everything wrong with an Application's notifications: its subscriptions, the
        config's broken templates and templates that failed to render for it."""
        metadata = app.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        config = await self.config()
        rendering = self._render_problems.get(key, {})
        return [
            *subscription_errors,
            *config.template_problems.values(),
            *(v for k, v in sorted(rendering.items()) if k not in config.template_problems),
        ]

    async def validate(self, app: Mapping[str, Any]) -> list[str]:
        """Check the Application's notifications; report what is wrong on it."""
        _, errors = await self.subscriptions(app)
        problems = await self.problems(app, errors)
        await self.report(app, problems)
        return problems

    async def emit(self, event: Event, app: Mapping[str, Any]) -> list[str]:
        """Start a delivery for every subscription to the event (once per event and
        subscription, however often this is called); returns the delivery runs' names."""
        subscriptions, errors = await self.subscriptions(app)
        await self.report(app, await self.problems(app, errors))
        matching = for_trigger(subscriptions, event.trigger)
        if not matching:
            return []
        metrics.EVENTS.labels(event.trigger).inc()
        names = []
        for subscription in matching:
            name = delivery_name(event.key, subscription)
            names.append(name)
            if name in self._submitted:
                continue
            params = DeliverParams(
                trigger=event.trigger,
                service=subscription.service,
                recipients=list(subscription.recipients),
                key=f"{event.key}/{subscription.id}",
                subscription=subscription.id,
                namespace=event.namespace,
                application=event.application,
                vars=event.template_vars(),
            ).model_dump()
            engine = self.engine_for(event.namespace)
            with contextlib.suppress(AlreadyExists):
                await engine.submit(
                    DELIVERY_FLOW,
                    params,
                    name=name,
                    requested_by="system:notifications",
                    labels={
                        NOTIFICATION_LABEL: event.application,
                        TRIGGER_LABEL: event.trigger,
                        SERVICE_LABEL: subscription.service,
                    },
                )
            if len(self._submitted) >= SUBMITTED_MEMORY:
                # Only a shortcut: the stored run de-duplicates on its own.
                self._submitted.clear()
            self._submitted.add(name)
        return names

    async def report(self, app: Mapping[str, Any], problems: list[str]) -> None:
        """Tell the Application's owner what is wrong with its notifications: an Event per
        new problem and the ``NotificationsValid`` condition (only written on a change)."""
        metadata = app.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        message = "; ".join(problems)
        if self._reported.get(key, "") == message:
            return
        self._reported[key] = message
        if problems and self.recorder is not None:
            await self.recorder.record(app, "NotificationsInvalid", message, warning=True)
        await self._set_condition(key, not problems, message)

    async def _set_condition(self, key: tuple[str, str], valid: bool, message: str) -> None:
        namespace, name = key
        for _ in range(5):
            try:
                current = await self.client.get(APPLICATION, name, namespace=namespace)
            except ApiError as exc:
                if exc.status.code == 404:
                    return
                raise
            data = current.to_dict() if hasattr(current, "to_dict") else dict(current)
            status = dict(data.get("status") or {})
            conditions = list(status.get("conditions") or [])
            before = next((c for c in conditions if c.get("type") == CONDITION), None)
            value = "True" if valid else "False"
            if before is None and valid:
                return
            if (
                before is not None
                and before.get("status") == value
                and (before.get("message") == message)
            ):
                return
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            changed = before is None or before.get("status") != value
            entry = {
                "type": CONDITION,
                "status": value,
                "reason": "SubscriptionsValid" if valid else "InvalidSubscription",
                "message": message,
                "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),
            }
            status["conditions"] = [c for c in conditions if c.get("type") != CONDITION] + [entry]
            data["status"] = status
            try:
                await self.client.replace(
                    APPLICATION.Status.from_dict(data), name, namespace=namespace
                )
                return
            except ApiError as exc:
                if exc.status.code != 409:
                    raise

    # --- delivery ---------------------------------------------------------------------

    async def deliver(self, params: DeliverParams, ctx: TaskContext) -> dict[str, Any]:
        """Render and send one message (the ``notify.deliver`` task)."""
        config = await self.config()
        variables = dict(params.vars)
        if variables.get("run") and not variables.get("link"):
            variables["link"] = config.link(params.namespace, str(variables["run"]))
        variables.setdefault("link", "")
        app_key = (params.namespace, params.application)
        try:
            message = render(params.trigger, variables, config.templates)
            if self._render_problems.get(app_key, {}).pop(params.trigger, None):
                await self._report_template(params)
        except TemplateProblem as exc:
            # The configured template is broken: say so on the Application and still tell
            # the subscriber, with the built-in template.
            self._render_problems.setdefault(app_key, {})[params.trigger] = str(exc)
            await self._report_template(params)
            try:
                message = render(params.trigger, variables)
            except TemplateProblem as builtin:
                raise FatalError(str(builtin)) from None
        ctx.heartbeat(f"rendered {message_id(params.key)} for {params.service}")
        count, per = config.rate
        await self.limiter.acquire(
            params.subscription,
            count,
            per,
            lambda wait: ctx.heartbeat(f"rate limited: next message in {wait:.1f}s"),
        )
        try:
            result = await send(
                config, params.service, params.recipients, message, params.key, variables
            )
        except RetryableError:
            metrics.DELIVERIES.labels(params.trigger, params.service, "retry").inc()
            raise
        except FatalError:
            metrics.DELIVERIES.labels(params.trigger, params.service, "failed").inc()
            raise
        metrics.DELIVERIES.labels(params.trigger, params.service, "sent").inc()
        return {**result, "subject": message.subject, "service": params.service}

    async def _report_template(self, params: DeliverParams) -> None:
        try:
            app = await self.client.get(APPLICATION, params.application, namespace=params.namespace)
        except ApiError:
            return
        data = app.to_dict() if hasattr(app, "to_dict") else dict(app)
        await self.validate(data)

    async def notify(self, params: NotifyParams, ctx: TaskContext) -> dict[str, Any]:
        """The generic ``notify`` step of a flow, sent through the configured service its
        ``channel`` names (``fields``: ``recipients``, ``subject``). A channel that names
        no service is only logged, as the engine's own ``notify`` does."""
        config = await self.config()
        if params.channel not in config.services:
            ctx.logger.info(
                "notify %s (no such service, logged only): %s", params.channel, params.message
            )
            return {"channel": params.channel, "delivered": 0}
        recipients = params.fields.get("recipients") or []
        if isinstance(recipients, str):
            recipients = list(split_recipients(recipients))
        subject = str(params.fields.get("subject") or params.message.splitlines()[0][:150])
        text = params.message if params.message.endswith("\n") else params.message + "\n"
        message = Message(
            subject=subject,
            text=text,
            html=f"<html><body><pre>{html.escape(text)}</pre></body></html>",
        )
        count, per = config.rate
        await self.limiter.acquire(
            f"notify/{params.channel}",
            count,
            per,
            lambda wait: ctx.heartbeat(f"rate limited: next message in {wait:.1f}s"),
        )
        result = await send(
            config,
            params.channel,
            [str(r) for r in recipients],
            message,
            ctx.idempotency_key,
            {"run": ctx.run_id, "step": ctx.step, "fields": params.fields},
        )
        metrics.DELIVERIES.labels("notify", params.channel, "sent").inc()
        return {"channel": params.channel, "delivered": 1, **result}

    def register_tasks(self, registry: TaskRegistry) -> None:
        """Add ``notify.deliver`` and the flows' ``notify``, bound to this center, to
        ``registry``."""

        async def deliver(params: DeliverParams, ctx: TaskContext) -> dict[str, Any]:
            return await self.deliver(params, ctx)

        async def notify(params: NotifyParams, ctx: TaskContext) -> dict[str, Any]:
            return await self.notify(params, ctx)

        registry.register(
            TaskSpec(DELIVERY_TASK, DeliverParams, deliver, "Render and send one notification.")
        )
        registry.replace(
            TaskSpec("notify", NotifyParams, notify, "Send a message through a configured service.")
        )
