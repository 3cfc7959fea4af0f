"""The operator's notification config: a ConfigMap and a Secret in its namespace.

ConfigMap ``milkyway-notifications`` (keys as Argo CD's ``argocd-notifications-cm``)::

    service.email: |            # a service named "email"; service.email.<name> names it <name>
      host: smtp.example.com
      port: 587
      starttls: true
      username: $smtp-username  # $key: the value of key in the Secret
      password: $smtp-password
      from: milkyway@example.com
      cc: [audit@example.com]
    service.slack: |
      url: $slack-webhook-url
    service.webhook.ops: |
      url: https://ops.example.com/hooks/milkyway
      secret: $ops-hmac-secret
    template.health-degraded: |
      subject: "{{ application }} is degraded"
      body: "..."
    subscriptions: |
      - triggers: [health-unhealthy, task-failed]
        service: email
        recipients: [oncall@example.com]
    context: |
      flowRunUrl: https://milkyway.example.com/ns/{namespace}/flowruns/{run}
    rateLimit: "30/60"          # at most 30 messages per subscription per 60 seconds

Secret ``milkyway-notifications-secret`` holds what ``$key`` refers to. Credentials are
resolved when a message is sent and are never logged nor handed to templates.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from milkyway.notify.subscriptions import Subscription, from_config
from milkyway.notify.templates import TemplateProblem, check_template
from milkyway.notify.triggers import TRIGGERS

CONFIG_MAP = "milkyway-notifications"
SECRET = "milkyway-notifications-secret"
SERVICE_TYPES = ("email", "slack", "webhook")
DEFAULT_FLOWRUN_URL = "/apis/milkyway.ebay.com/v1/namespaces/{namespace}/flowruns/{run}"


class ConfigProblem(ValueError):
    """A config entry that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    type: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class NotifyConfig:
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    flowrun_url: str = DEFAULT_FLOWRUN_URL
    rate: tuple[int, float] = (30, 60.0)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = ()
    template_problems: Mapping[str, str] = field(default_factory=dict)
    """Trigger to what is wrong with its configured template (the built-in is used)."""

    def link(self, namespace: str, run: str) -> str:
        return self.flowrun_url.replace("{namespace}", namespace).replace("{run}", run)

    def resolve(self, value: Any) -> Any:
        """``$key`` to the Secret's value (raises when the key is missing)."""
        if isinstance(value, str) and value.startswith("$"):
            key = value[1:]
            if key not in self.secrets:
                raise ConfigProblem(
                    f"{value!r} names key {key!r}, which Secret {SECRET} does not have; "
                    "add it to the Secret"
                )
            return self.secrets[key]
        return value


def _yaml(key: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigProblem(f"ConfigMap {CONFIG_MAP} key {key!r} is not YAML: {exc}") from None


def parse(data: Mapping[str, str] | None, secret_data: Mapping[str, str] | None) -> NotifyConfig:
    """The config from the ConfigMap's and the Secret's data (the Secret's base64-encoded).

    Unusable entries are left out and described in ``problems``; the rest still works.
    """
    services: dict[str, ServiceConfig] = {}
    templates: dict[str, dict[str, str]] = {}
    subscriptions: list[Subscription] = []
    problems: list[str] = []
    flowrun_url = DEFAULT_FLOWRUN_URL
    rate = (30, 60.0)
    template_problems: dict[str, str] = {}
    secrets = {
        k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret_data or {}).items()
    }
    for key, text in sorted((data or {}).items()):
        try:
            if key.startswith("service."):
                parts = key.split(".")
                kind = parts[1]
                name = parts[2] if len(parts) > 2 else kind
                if kind not in SERVICE_TYPES or len(parts) > 3:
                    raise ConfigProblem(
                        f"ConfigMap {CONFIG_MAP} key {key!r}: use service.<type> or "
                        f"service.<type>.<name> with type one of {', '.join(SERVICE_TYPES)}"
                    )
                settings = _yaml(key, text)
                if not isinstance(settings, dict):
                    raise ConfigProblem(f"ConfigMap {CONFIG_MAP} key {key!r}: not a mapping")
                services[name] = ServiceConfig(name, kind, settings)
            elif key.startswith("template."):
                trigger = key[len("template.") :]
                if trigger not in TRIGGERS:
                    raise ConfigProblem(
                        f"ConfigMap {CONFIG_MAP} key {key!r}: no trigger {trigger!r}; "
                        f"known: {', '.join(TRIGGERS)}"
                    )
                template = _yaml(key, text)
                if not isinstance(template, dict) or not all(
                    isinstance(v, str) for v in template.values()
                ):
                    raise ConfigProblem(
                        f"ConfigMap {CONFIG_MAP} key {key!r}: a mapping of subject/body/html "
                        "to template text"
                    )
                try:
                    check_template(trigger, template)
                except TemplateProblem as exc:
                    template_problems[trigger] = str(exc)
                    raise
                templates[trigger] = template
            elif key == "subscriptions":
                found, errors = from_config(_yaml(key, text) or [])
                subscriptions.extend(found)
                problems.extend(errors)
            elif key == "context":
                context = _yaml(key, text) or {}
                flowrun_url = str(context.get("flowRunUrl") or flowrun_url)
            elif key == "rateLimit":
                count, _, seconds = text.partition("/")
                rate = (int(count), float(seconds or 60))
                if rate[0] < 1 or rate[1] <= 0:
                    raise ValueError(text)
            else:
                problems.append(f"ConfigMap {CONFIG_MAP} key {key!r} is not known; ignored")
        except (ConfigProblem, TemplateProblem) as exc:
            problems.append(str(exc))
        except ValueError:
            problems.append(
                f"ConfigMap {CONFIG_MAP} key rateLimit {text!r}: use '<messages>/<seconds>'"
            )
    return NotifyConfig(
        services=services,
        templates=templates,
        subscriptions=tuple(subscriptions),
        flowrun_url=flowrun_url,
        rate=rate,
        secrets=secrets,
        problems=tuple(problems),
        template_problems=template_problems,
    )
