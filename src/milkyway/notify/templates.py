"""Message templates: sandboxed Jinja2, with a built-in template for every trigger.

A template has a ``subject``, a ``body`` (plain text; email's text part, Slack's
section, the webhook's ``text``) and optionally ``html`` (email's HTML part; by default
the body, escaped). Templates come from the operator's config and so from people who
may not read Secrets: they run in Jinja2's immutable sandbox, with no loader (no
``include``, no files), see only the event's variables (never a credential) and fail on
an undefined name, so a typo is reported instead of sent as an empty line.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

FINDINGS = (
    "{% for f in findings %}- {{ f.component }}"
    "{% if f.zone %} zone {{ f.zone }}{% endif %}"
    "{% if f.member %} member {{ f.member }}{% endif %}: {{ f.check }}: {{ f.observed }}"
    " (since {{ f.since }})\n{% endfor %}"
)
HEALTH_BODY = (
    "Application {{ namespace }}/{{ application }} is {{ status }}"
    " (was {{ previous }}).\n" + FINDINGS + "{% if link %}{{ link }}\n{% endif %}"
)

BUILTIN: Mapping[str, Mapping[str, str]] = {
    "health-degraded": {
        "subject": "[milkyway] [Degraded] {{ namespace }}/{{ application }}: "
        "{{ findings|length }} finding{{ 's' if findings|length != 1 }}",
        "body": HEALTH_BODY,
    },
    "health-unhealthy": {
        "subject": "[milkyway] [Unhealthy] {{ namespace }}/{{ application }}: "
        "{{ findings|length }} finding{{ 's' if findings|length != 1 }}",
        "body": HEALTH_BODY,
    },
    "health-recovered": {
        "subject": "[milkyway] [Recovered] {{ namespace }}/{{ application }} is Healthy",
        "body": "Application {{ namespace }}/{{ application }} is Healthy again"
        " (was {{ previous }}).\n",
    },
    "heartbeat": {
        "subject": "[milkyway] [Heartbeat] {{ namespace }} Health Report for "
        "[{{ components|join(', ') }}]",
        "body": "{{ application }}: {{ status }}\n"
        "{% if findings %}" + FINDINGS + "{% else %}No alerts\n{% endif %}",
    },
    "task-failed": {
        "subject": "[TASK_FAILED:{{ task }}] Task {{ task }}:{{ attempt }} in Flow "
        "{{ flow }}:{{ run }} failed",
        "body": "[TASK_FAILED:{{ task }}] Task {{ task }}:{{ attempt }} in Flow "
        "{{ flow }}:{{ run }} failed. Details: {{ details }} | {{ link }}\n",
    },
    "flow-failed": {
        "subject": "[FLOW_FAILED:{{ flow }}] Flow {{ flow }}:{{ run }} failed",
        "body": "Flow {{ flow }}:{{ run }} of {{ namespace }}/{{ application }} failed."
        " Details: {{ details }} | {{ link }}\n",
    },
    "flow-succeeded": {
        "subject": "[FLOW_SUCCEEDED:{{ flow }}] Flow {{ flow }}:{{ run }} succeeded",
        "body": "Flow {{ flow }}:{{ run }} of {{ namespace }}/{{ application }} succeeded."
        " | {{ link }}\n",
    },
    "approval-requested": {
        "subject": "[APPROVAL_REQUESTED:{{ step }}] Flow {{ flow }}:{{ run }} waits for approval",
        "body": "Step {{ step }} of flow {{ flow }}:{{ run }} ({{ namespace }}/"
        "{{ application }}) waits for approval. {{ details }} | {{ link }}\n",
    },
    "approval-decided": {
        "subject": "[APPROVAL_DECIDED:{{ step }}] Flow {{ flow }}:{{ run }}: {{ decision }}",
        "body": "Step {{ step }} of flow {{ flow }}:{{ run }} ({{ namespace }}/"
        "{{ application }}) was {{ decision }} by {{ by }}. {{ details }} | {{ link }}\n",
    },
}
HTML = (
    '<html><body><h3>{{ subject|e }}</h3><pre style="font-family: monospace">'
    "{{ body|e }}</pre></body></html>"
)

_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, trim_blocks=False, keep_trailing_newline=True
)


class TemplateProblem(ValueError):
    """A template that does not compile or render; the message names it and why."""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """Each template source is compiled once (compiling costs more than rendering)."""
    return _ENV.from_string(source)


def _render(name: str, part: str, source: str, variables: Mapping[str, Any]) -> str:
    try:
        return _compiled(source).render(**variables)
    except Exception as exc:
        # Any error of a configured template (syntax, sandbox, include, 1/0, a wrong
        # type) is the template's problem to report, never the operator's crash.
        raise TemplateProblem(f"template {name!r} {part}: {type(exc).__name__}: {exc}") from None


def check_template(name: str, template: Mapping[str, str]) -> None:
    """Compile every part now, so a broken template is reported when configured."""
    for part, source in template.items():
        if part not in ("subject", "body", "html"):
            raise TemplateProblem(
                f"template {name!r} has part {part!r}; the parts are subject, body and html"
            )
        try:
            _ENV.parse(source)
        except TemplateError as exc:
            raise TemplateProblem(f"template {name!r} {part}: {exc}") from None


def render(
    trigger: str,
    variables: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> Message:
    """Render the message of ``trigger``: the configured template, else the built-in."""
    template = dict(BUILTIN[trigger])
    name = f"builtin:{trigger}"
    if overrides and trigger in overrides:
        template.update(overrides[trigger])
        name = trigger
    subject = _render(name, "subject", template["subject"], variables).strip()
    text = _render(name, "body", template["body"], variables)
    html_source = template.get("html", HTML)
    html = _render(name, "html", html_source, {**variables, "subject": subject, "body": text})
    return Message(subject=" ".join(subject.split()), text=text, html=html)
