"""Built-in messages match the design's wording; templates are sandboxed."""

from __future__ import annotations

import pytest

from milkyway.notify.config import parse
from milkyway.notify.templates import TemplateProblem, check_template, render


def test_the_heartbeat_of_a_healthy_application_says_no_alerts() -> None:
    message = render(
        "heartbeat",
        {
            "namespace": "milkyway",
            "application": "stream1",
            "components": ["kafka", "flink"],
            "status": "Healthy",
            "findings": [],
        },
    )
    assert message.subject == "[milkyway] [Heartbeat] milkyway Health Report for [kafka, flink]"
    assert message.text == "stream1: Healthy\nNo alerts\n"
    assert "<h3>[milkyway] [Heartbeat]" in message.html


def test_the_heartbeat_lists_the_findings_when_there_are() -> None:
    finding = {
        "component": "zk",
        "zone": "phx",
        "member": "zk-0",
        "check": "member-ready",
        "observed": "CrashLoopBackOff (restarts 3)",
        "since": "2026-01-01T00:00:00Z",
    }
    message = render(
        "heartbeat",
        {
            "namespace": "ns",
            "application": "a",
            "components": ["zk"],
            "status": "Degraded",
            "findings": [finding],
        },
    )
    assert "No alerts" not in message.text
    assert (
        "- zk zone phx member zk-0: member-ready: CrashLoopBackOff (restarts 3) "
        "(since 2026-01-01T00:00:00Z)" in message.text
    )


def test_a_task_failure_names_task_attempt_flow_run_details_and_link() -> None:
    message = render(
        "task-failed",
        {
            "task": "apply",
            "attempt": 2,
            "flow": "milkyway-provision",
            "run": "milkyway-provision-1a2b",
            "details": "boom",
            "link": "https://mw/runs/1a2b",
        },
    )
    assert message.text == (
        "[TASK_FAILED:apply] Task apply:2 in Flow milkyway-provision:milkyway-provision-1a2b "
        "failed. Details: boom | https://mw/runs/1a2b\n"
    )


def test_the_html_part_escapes_what_it_shows() -> None:
    message = render(
        "task-failed",
        {"task": "t", "attempt": 1, "flow": "f", "run": "r", "details": "<b>", "link": ""},
    )
    assert "&lt;b&gt;" in message.html and "<b>" not in message.html


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ findings.append(1) }}",
    ],
)
def test_a_template_cannot_reach_python_internals(source: str) -> None:
    with pytest.raises(TemplateProblem, match=r"SecurityError|UndefinedError"):
        render("flow-failed", {"findings": []}, {"flow-failed": {"subject": source}})


@pytest.mark.parametrize(
    "source", ["{% include '/etc/passwd' %}", "{% import '/etc/passwd' as x %}", "{{ 1 / 0 }}"]
)
def test_a_template_cannot_include_files_nor_crash_the_caller(source: str) -> None:
    with pytest.raises(TemplateProblem, match="template 'flow-failed' subject"):
        render("flow-failed", {}, {"flow-failed": {"subject": source}})


def test_a_template_sees_no_secret_even_when_the_config_has_them() -> None:
    config = parse(
        {"template.flow-failed": "subject: '{{ secrets }}'\nbody: x\n"},
        {"smtp-password": "aHVudGVyMg=="},
    )
    with pytest.raises(TemplateProblem, match="'secrets' is undefined"):
        render("flow-failed", {"flow": "f"}, config.templates)


def test_a_template_with_a_syntax_error_is_refused_when_configured() -> None:
    with pytest.raises(TemplateProblem, match="template 'heartbeat' subject"):
        check_template("heartbeat", {"subject": "{{ unclosed"})
    config = parse({"template.heartbeat": "subject: '{{ unclosed'\n"}, None)
    assert "heartbeat" in config.template_problems
    assert "heartbeat" not in config.templates
