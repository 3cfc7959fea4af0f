"""The web console in a real browser (Debian's Chromium driven by Playwright) against the
simulated clusters, the operator, a real OpenLDAP directory and ``milkyway server``.

Scenarios share one world; each leaves the Applications Ready for the next. Screenshots of
the main pages go to docs/images/console-*.png (shown in docs/console.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from milkyway.cli.app_commands import apply_documents

from ..conftest import unfinished_steps
from .conftest import screenshot, serious_violations
from .world import NAMESPACE, ConsoleWorld

pytestmark = pytest.mark.slow
SignIn = Callable[..., Any]


def zone_size(app: dict[str, Any], component: str, zone: str) -> int:
    item = next(c for c in app["spec"]["components"] if c["name"] == component)
    return next(z["size"] for r in item["regions"] for z in r["zones"] if z["name"] == zone)


def open_application(page: Any, name: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/applications/{NAMESPACE}/{name}")
    page.locator("#topology").wait_for()


def test_sign_in_and_out(console: ConsoleWorld, browser: Any) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{console.url}/console/")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill("not-her-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in-error")).to_contain_text("wrong user name or password")
        assert not context.cookies()
        screenshot(page, "sign-in")
        page.get_by_label("Password").fill("alice-pw-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who-name")).to_have_text("alice (team-a)")
        (cookie,) = context.cookies()
        assert cookie["name"] == "milkyway_session"
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # no script can read the session
        page.reload()
        expect(page.locator("#who-name")).to_have_text("alice (team-a)")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in to Milkyway")).to_be_visible()
        assert not context.cookies()
        page.reload()
        expect(page.get_by_role("heading", name="Sign in to Milkyway")).to_be_visible()
    finally:
        context.close()


def test_applications_table_shows_the_ready_applications(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    page = sign_in("carol")
    rows = page.locator("#view tbody tr")
    expect(rows).to_have_count(2)
    for name in ("stream1", "ledger"):
        row = page.locator(f'tr[data-key="{NAMESPACE}/{name}"]')
        expect(row).to_contain_text("Running")
        expect(row).to_contain_text("none")  # no flow running
    stream1 = page.locator(f'tr[data-key="{NAMESPACE}/stream1"]')
    expect(stream1).to_contain_text("zookeeper1, kafka1, zookeeper2")
    expect(stream1).to_contain_text("kafka1 1.1.0")
    page.get_by_label("Search").fill("ledger")
    expect(rows).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1 of 2 Applications")
    page.get_by_label("Search").fill("")
    page.get_by_label("Phase").select_option("Failed")
    expect(rows).to_have_count(0)
    page.get_by_label("Phase").select_option("")
    expect(rows).to_have_count(2)
    screenshot(page, "applications")


def test_stream1_topology_shows_every_member_in_its_zone_and_cluster(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    app = console.application("stream1")
    page = sign_in("carol")
    open_application(page, "stream1")
    zone = page.locator('#topology li[data-zone="phx"]')
    expect(zone).to_contain_text("cluster na-phx")
    expect(zone.locator(":scope > .badge")).to_have_text("reachable")
    for component in app["spec"]["components"]:
        size = zone_size(app, component["name"], "phx")
        item = zone.locator(f'li[data-component="{component["name"]}"]')
        expect(item).to_contain_text(f"{size}/{size} ready")
        members = item.locator("li.member")
        expect(members).to_have_count(size)
        pods = app["status"]["components"][component["name"]]["zones"]["phx"]["pods"]
        assert len(pods) == size, pods
        for pod in pods:
            member = item.locator(f'li[data-member="{pod["name"]}"]')
            expect(member).to_contain_text("Ready")
            expect(member).to_contain_text(f"version {component['version']}")
            expect(member.locator(".node")).to_have_text(f" on node {pod['node']}")
    expect(page.locator("#components")).to_contain_text("kafka1")
    expect(page.locator("#conditions")).to_contain_text("Ready")
    expect(page.locator("#flow-history")).to_contain_text("Succeeded")
    screenshot(page, "application")


def test_scale_through_the_form_and_watch_the_flow_live_to_ready(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    page = sign_in("alice")
    open_application(page, "stream1")
    page.evaluate("window.notReloaded = true")
    form = page.locator("form#scale")
    form.get_by_label("Component").select_option("kafka1")
    form.get_by_label("Zone").fill("phx")
    form.get_by_label("Members").fill("4")
    form.get_by_role("button", name="Preview").click()
    plan = form.get_by_role("region", name="Scale a zone plan")
    expect(plan).to_contain_text("kafka1: zone phx size 3 -> 4")
    expect(plan).to_contain_text("dry run")
    assert zone_size(console.application("stream1"), "kafka1", "phx") == 3
    plan.get_by_role("button", name="Confirm").click()
    expect(form.get_by_role("status")).to_contain_text("size 3 -> 4")
    # The running flow shows up without a reload, then the run's page follows it live.
    flow_link = page.locator("#summary a")
    expect(flow_link).to_be_visible(timeout=120_000)
    flow_link.click()
    expect(page.locator("#run-summary")).to_contain_text("Succeeded", timeout=240_000)
    steps = page.locator("#steps li.step")
    assert steps.count() >= 2
    expect(page.locator("#steps")).not_to_contain_text("Failed")
    screenshot(page, "flowrun")
    page.go_back()
    kafka = page.locator('#topology li[data-component="kafka1"]')
    expect(kafka).to_contain_text("4/4 ready", timeout=120_000)
    expect(kafka.locator("li.member")).to_have_count(4)
    assert page.evaluate("window.notReloaded") is True
    console.wait_ready("stream1")


def test_an_invalid_size_is_shown_next_to_the_field(console: ConsoleWorld, sign_in: SignIn) -> None:
    before = zone_size(console.application("stream1"), "kafka1", "phx")
    page = sign_in("alice")
    open_application(page, "stream1")
    form = page.locator("form#scale")
    form.get_by_label("Component").select_option("kafka1")
    form.get_by_label("Zone").fill("phx")
    form.get_by_label("Members").fill("-2")
    form.get_by_role("button", name="Preview").click()
    error = form.locator("#scale-size-error")
    expect(error).to_contain_text("greater than or equal to 0")
    expect(form.get_by_label("Members")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_role("region")).to_have_count(0)  # no plan, nothing to confirm
    # A zone the component lacks: the server's edit error, shown on the form.
    form.get_by_label("Members").fill("3")
    form.get_by_label("Zone").fill("nowhere")
    form.get_by_role("button", name="Preview").click()
    expect(form.locator(".form-error")).to_contain_text("no zone 'nowhere'")
    expect(error).to_have_text("")
    screenshot(page, "field-error")
    assert zone_size(console.application("stream1"), "kafka1", "phx") == before


def test_a_viewer_sees_no_action_and_a_forged_request_is_refused(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    before = zone_size(console.application("stream1"), "kafka1", "phx")
    page = sign_in("bob")
    page.get_by_label("Namespace").fill(NAMESPACE)
    page.get_by_label("Namespace").press("Enter")
    expect(page.locator("#view tbody tr")).to_have_count(2)
    open_application(page, "stream1")
    expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    expect(page.locator("form.action")).to_have_count(0)
    run = console.runs("stream1")[-1]["metadata"]["name"]
    page.goto(page.url.split("#")[0] + f"#/flowruns/{NAMESPACE}/{run}")
    page.locator("#run-summary").wait_for()
    expect(page.locator("#view button")).to_have_count(0)
    # A request bob crafts himself, with his valid CSRF token: RBAC refuses it.
    scale = f"/api/v1/namespaces/{NAMESPACE}/applications/stream1/scale"
    forged = page.evaluate(
        """async (path) => {
          const session = await (await fetch('/api/v1/session')).json();
          const answer = await fetch(path, {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': session.csrfToken},
            body: JSON.stringify({component: 'kafka1', zone: 'phx', size: 1})});
          return [answer.status, (await answer.json()).type];
        }""",
        scale,
    )
    assert forged == [403, "urn:milkyway:problem:forbidden"]
    # alice may scale, but not from a request without the CSRF token (what another
    # site's form could make her browser send): refused before anything is read.
    alice = sign_in("alice")
    no_token = alice.evaluate(
        """async (path) => {
          const answer = await fetch(path, {method: 'POST', headers: {
            'Content-Type': 'application/json'},
            body: JSON.stringify({component: 'kafka1', zone: 'phx', size: 1})});
          return [answer.status, (await answer.json()).type];
        }""",
        scale,
    )
    assert no_token == [403, "urn:milkyway:problem:csrf"]
    assert zone_size(console.application("stream1"), "kafka1", "phx") == before


def test_an_approval_asked_by_one_user_is_given_by_another(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    alice = sign_in("alice")
    open_application(alice, "ledger")
    form = alice.locator("form#scale")
    form.get_by_label("Component").select_option("kafka")
    form.get_by_label("Zone").fill("ams")
    form.get_by_label("Members").fill("1")
    form.get_by_role("button", name="Preview").click()
    form.get_by_role("region").get_by_role("button", name="Confirm").click()
    expect(form.get_by_role("status")).to_contain_text("size 2 -> 1")
    flow_link = alice.locator("#summary a")
    expect(flow_link).to_be_visible(timeout=120_000)
    run = flow_link.inner_text()
    flow_link.click()
    gate = alice.locator('#steps li.step[data-phase="Waiting"]')
    expect(gate).to_contain_text("Asked by alice", timeout=120_000)
    expect(gate).to_contain_text("group platform")
    expect(gate.get_by_role("button")).to_have_count(0)  # the requester may not approve
    # alice may steer the run (an editor); bob, a viewer, sees no button at all.
    expect(alice.locator("#run-actions")).to_contain_text("Cancel")
    bob = sign_in("bob", f"#/flowruns/{NAMESPACE}/{run}")
    expect(bob.locator('#steps li.step[data-phase="Waiting"]')).to_contain_text("Asked by alice")
    expect(bob.locator("#view button")).to_have_count(0)

    carol = sign_in("carol", "#/approvals")
    row = carol.locator(f'#inbox tr[data-run="{run}"]')
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("yes")
    screenshot(carol, "approvals")
    row.get_by_role("link").click()
    carol.locator('#steps li.step[data-phase="Waiting"]').wait_for()
    carol.get_by_label(re.compile("Reason for")).fill("capacity review done")
    carol.get_by_role("button", name=re.compile("^Approve")).click()
    expect(carol.locator("#flow-message")).to_contain_text("approve")
    # alice's page follows the run without a reload: approved, then finished.
    expect(alice.locator("#steps")).to_contain_text("Approved by carol", timeout=120_000)
    expect(alice.locator("#run-summary")).to_contain_text("Succeeded", timeout=240_000)
    carol.goto(carol.url.split("#")[0] + "#/approvals")
    expect(carol.locator("#inbox")).to_have_text("Nothing waits for an approval.")
    console.wait_ready("ledger")


def test_a_cluster_cut_off_shows_unreachable_and_recovers(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    page = sign_in("carol", "#/clusters")
    row = page.locator('tr[data-cluster="eu-ams"]')
    expect(row.locator(".badge")).to_have_text("reachable")
    expect(row).to_contain_text("EU")
    # Every Node of the cluster is Ready, as the operator last listed them.
    expect(row.locator("td.nodes")).to_have_text(re.compile(r"^([1-9]\d*)/\1 Ready$"))
    assert console.control is not None
    faults = console.control.faults
    fault = console.call(lambda: faults.cut_off("eu-ams"))
    try:
        expect(row.locator(".badge")).to_have_text("unreachable", timeout=120_000)
        screenshot(page, "clusters")
        open_application(page, "ledger")
        expect(page.locator('#topology li[data-zone="ams"] > .badge')).to_have_text(
            "unreachable", timeout=60_000
        )
        page.go_back()
    finally:
        console.call(lambda: faults.lift(fault.id))
    expect(page.locator('tr[data-cluster="eu-ams"] .badge')).to_have_text(
        "reachable", timeout=120_000
    )
    console.wait_ready("ledger")


def test_the_audit_page_lists_what_happened(console: ConsoleWorld, sign_in: SignIn) -> None:
    page = sign_in("alice")
    open_application(page, "stream1")
    form = page.locator("form#restart")
    form.get_by_label("Component").select_option("kafka1")
    form.get_by_role("button", name="Preview").click()
    expect(form.get_by_role("region")).to_contain_text("would be requested (dry run)")
    refused = page.evaluate(
        """async () => (await fetch('/api/v1/namespaces/team-a/applications/stream1',
                                    {method: 'DELETE'})).status"""
    )
    assert refused == 403
    page.goto(page.url.split("#")[0] + "#/audit")
    search = page.locator("#audit-search")
    search.get_by_label("Action").fill("restart")
    search.get_by_role("button", name="Search").click()
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_contain_text("stream1/restart")
    expect(rows.first).to_contain_text("allowed")
    expect(rows.first).to_contain_text("alice")
    screenshot(page, "audit")
    search.get_by_label("Action").fill("")
    search.get_by_label("Decision").select_option("denied")
    search.get_by_role("button", name="Search").click()
    expect(rows.last).to_contain_text("DELETE /api/v1/namespaces/team-a/applications/stream1")
    assert all("denied" in t for t in rows.all_inner_texts())
    search.get_by_label("Decision").select_option("")
    search.get_by_role("button", name="Search").click()
    expect(rows.first).to_contain_text("session")  # from the first sign-in on


def test_upgrade_parameter_and_replace_forms_preview_and_refuse_with_reasons(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    before = console.application("stream1")["spec"]
    page = sign_in("alice")
    open_application(page, "stream1")
    upgrade = page.locator("form#upgrade")
    upgrade.get_by_label("Component").select_option("zookeeper1")
    upgrade.get_by_label("Version", exact=True).fill("9.9.9")
    upgrade.get_by_role("button", name="Preview").click()
    error = upgrade.locator("#upgrade-version-error")
    expect(error).to_contain_text("no version '9.9.9'")
    expect(error).to_contain_text("3.4.14")  # the fix names the versions there are
    params = page.locator("form#set-param")
    params.get_by_label("Component").select_option("zookeeper1")
    params.get_by_label("Parameter").fill("tickTime")
    params.get_by_label("Value (JSON; null removes it)").fill("3000")
    params.get_by_role("button", name="Preview").click()
    plan = params.get_by_role("region", name="Set a parameter plan")
    expect(plan).to_contain_text("zookeeper1: tickTime=3000")
    plan.get_by_role("button", name="Cancel").click()
    expect(params.get_by_role("region")).to_have_count(0)
    params.get_by_label("Value (JSON; null removes it)").fill('"often"')
    params.get_by_role("button", name="Preview").click()
    expect(params.locator(".form-error")).to_contain_text("tickTime")
    replace = page.locator("form#replace")
    replace.get_by_label("Member (pod name)").fill("stream1-kafka1-phx-1")
    replace.get_by_role("button", name="Preview").click()
    plan = replace.get_by_role("region", name="Replace a member plan")
    expect(plan).to_contain_text("replacement of stream1-kafka1-phx-1 would be requested")
    plan.get_by_role("button", name="Cancel").click()
    replace.get_by_label("Member (pod name)").fill("someone-else-0")
    replace.get_by_role("button", name="Preview").click()
    expect(replace.locator(".form-error")).to_contain_text("is not a member of team-a/stream1")
    after = console.application("stream1")
    assert after["spec"] == before
    assert "milkyway.ebay.com/replace" not in (after["metadata"].get("annotations") or {})


def test_decommission_with_a_preview_and_the_table_follows_live(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    table = sign_in("carol")
    expect(table.locator("#view tbody tr")).to_have_count(2)
    manifest = (
        "apiVersion: milkyway.ebay.com/v1\nkind: Application\n"
        f"metadata: {{name: scratch, namespace: {NAMESPACE}}}\n"
        "spec:\n  components:\n    - name: zookeeper\n      version: 3.8.4\n"
        "      regions: [{name: EU, zones: [{name: ams, size: 1}]}]\n"
    )
    assert console.client is not None
    client = console.client
    console.call(lambda: apply_documents(client, manifest, NAMESPACE))
    row = table.locator(f'tr[data-key="{NAMESPACE}/scratch"]')
    expect(row).to_contain_text("Running", timeout=180_000)  # added, then provisioned, live

    admin = sign_in("carol")
    open_application(admin, "scratch")
    form = admin.locator("form#decommission")
    form.get_by_label("Type scratch to confirm").fill("scrach")
    form.get_by_role("button", name="Preview").click()
    expect(form.locator("#decommission-confirm-error")).to_contain_text("type scratch")
    form.get_by_label("Type scratch to confirm").fill("scratch")
    form.get_by_role("button", name="Preview").click()
    plan = form.get_by_role("region", name="Decommission plan")
    expect(plan).to_contain_text("would be decommissioned (dry run)")
    assert console.application("scratch")["metadata"].get("deletionTimestamp") is None
    plan.get_by_role("button", name="Confirm").click()
    expect(form.get_by_role("status")).to_contain_text("deletion requested")
    expect(row).to_have_count(0, timeout=180_000)
    expect(table.locator("#view tbody tr")).to_have_count(2)


def test_a_run_shows_its_step_logs_and_the_request_that_caused_it(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    page = sign_in("alice")
    open_application(page, "ledger")
    before = {r["metadata"]["name"] for r in console.runs("ledger")}
    form = page.locator("form#restart")
    form.get_by_label("Component").select_option("zookeeper")
    form.get_by_role("button", name="Preview").click()
    form.get_by_role("region").get_by_role("button", name="Confirm").click()
    expect(form.get_by_role("status")).to_be_visible()
    # The restart may be over before a look at the summary would catch it running: its
    # row in the flow history is followed instead.
    restart = page.locator("#flow-history tbody tr", has_text="milkyway-restart").first
    expect(restart).to_be_visible(timeout=120_000)
    run = restart.locator("a").first.inner_text()
    assert run not in before, (run, sorted(before))
    restart.locator("a").first.click()
    try:
        expect(page.locator("#run-summary")).to_contain_text("Succeeded", timeout=240_000)
    except AssertionError as error:
        stored = next(r for r in console.runs("ledger") if r["metadata"]["name"] == run)
        raise AssertionError(f"{error}\nsteps not finished:\n{unfinished_steps(stored)}") from None
    attempt = page.locator("#step-logs li.attempt").first
    expect(attempt).to_contain_text("attempt 1")
    expect(attempt).to_contain_text("Succeeded")
    expect(attempt).to_contain_text(" UTC")
    expect(page.locator("#step-logs")).not_to_contain_text("Failed")
    stored = next(r for r in console.runs("ledger") if r["metadata"]["name"] == run)
    request_id = stored["metadata"]["annotations"]["milkyway.ebay.com/request-id"]
    expect(page.locator("#run-request")).to_contain_text(request_id)
    audit = page.locator("#run-audit tbody tr")
    expect(audit.first).to_contain_text("alice")
    expect(page.locator("#run-audit")).to_contain_text("ledger/restart")
    screenshot(page, "flowrun-logs")
    page.get_by_role("link", name="its audit records").click()
    expect(page.get_by_label("Request id")).to_have_value(request_id)
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_contain_text(request_id)
    assert all(request_id in t for t in rows.all_inner_texts())
    console.wait_ready("ledger")


def test_health_notifications_and_events_on_the_application_page(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    ams = zone_size(console.application("ledger"), "kafka", "ams")
    page = sign_in("bob")  # a viewer reads them all
    open_application(page, "ledger")
    # ledger is checked every minute: a report comes, then one more (so one in history).
    summary = page.locator("#health-summary")
    expect(summary).to_contain_text("Last report", timeout=150_000)
    expect(
        page.locator('#health-zones tr[data-component="kafka"][data-zone="ams"]')
    ).to_contain_text(f"{ams}/{ams}", timeout=150_000)
    expect(page.locator("#health-history tbody tr").first).to_be_visible(timeout=150_000)
    report = console.application("ledger")["status"]["health"]
    assert report["history"], report
    # The webhook got ledger's finished flows: each delivery listed, Sent.
    sent = page.locator("#notifications tbody tr", has_text="flow-succeeded")
    expect(sent.first).to_contain_text("Sent", timeout=120_000)
    expect(sent.first).to_contain_text("ops-hook")
    assert console.hook is not None and console.hook.received
    expect(page.locator("#events")).to_contain_text("FlowSucceeded")
    screenshot(page, "reports")


def test_sudo_is_asked_refused_with_reasons_and_granted_live(
    console: ConsoleWorld, sign_in: SignIn
) -> None:
    page = sign_in("alice", "#/sudo")
    form = page.locator("form#sudo-form")
    form.get_by_label("Namespace").fill(NAMESPACE)
    form.get_by_label("Role").select_option("milkyway-admin")
    form.get_by_label("Reason").fill("INC-42 cleanup")
    form.get_by_label("For (like 30m or 1h)").fill("3h")
    form.get_by_role("button", name="Ask").click()
    expect(form.locator(".form-error")).to_contain_text("longer than the ApprovalPolicies")
    form.get_by_label("For (like 30m or 1h)").fill("30m")
    form.get_by_label("Reason").fill("no")
    form.get_by_role("button", name="Ask").click()
    expect(form.locator("#sudo-reason-error")).to_contain_text("at least 3")
    expect(form.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Reason").fill("INC-42 cleanup")
    form.get_by_role("button", name="Ask").click()
    expect(form.get_by_role("status")).to_contain_text("waiting for approval")
    row = page.locator("#sudo-requests tbody tr").first
    grant = row.get_attribute("data-grant")
    expect(row).to_contain_text("Waiting", timeout=60_000)
    expect(row).to_contain_text("milkyway-admin")
    screenshot(page, "sudo")
    carol = sign_in("carol", f"#/flowruns/{NAMESPACE}/milkyway-sudo-{grant}")
    carol.locator('#steps li.step[data-phase="Waiting"]').wait_for()
    carol.get_by_label(re.compile("Reason for")).fill("INC-42 is real")
    carol.get_by_role("button", name=re.compile("^Approve")).click()
    # alice's list follows the run without a reload.
    expect(row).to_contain_text("Granted", timeout=120_000)
    expect(row).to_contain_text(f"X-Milkyway-Sudo: {NAMESPACE}/{grant}")


MAIN_PAGES = {
    "applications": "#/applications",
    "application": f"#/applications/{NAMESPACE}/stream1",
    "approvals": "#/approvals",
    "sudo": "#/sudo",
    "clusters": "#/clusters",
    "audit": "#/audit",
}


def test_no_serious_accessibility_violations_on_the_main_pages(
    console: ConsoleWorld, browser: Any, sign_in: SignIn
) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        signin_page = context.new_page()
        signin_page.goto(f"{console.url}/console/")
        signin_page.get_by_label("User name").wait_for()
        found = {"sign-in": serious_violations(signin_page)}
        # The checker does find what it should: an input without a label is serious.
        signin_page.set_content('<html lang="en"><title>t</title><input id="x"></html>')
        assert any(v.startswith("label ") for v in serious_violations(signin_page))
    finally:
        context.close()
    page = sign_in("alice")
    page.get_by_label("Namespace").fill(NAMESPACE)
    page.get_by_label("Namespace").press("Enter")
    for name, path in MAIN_PAGES.items():
        page.goto(page.url.split("#")[0] + path)
        page.locator("#view h1").wait_for()
        page.wait_for_load_state("networkidle")
        found[name] = serious_violations(page)
    run = console.runs("stream1")[-1]["metadata"]["name"]
    page.goto(page.url.split("#")[0] + f"#/flowruns/{NAMESPACE}/{run}")
    page.locator("#steps").wait_for()
    found["flowrun"] = serious_violations(page)
    assert all(not v for v in found.values()), found
    # Keyboard: on a page just loaded the skip link comes first and the navigation
    # follows it (going from view to view moves the focus to the new view instead).
    page.reload()
    page.locator("#steps").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Applications"
