"""``milkyway sudo`` through the real server with a real operator process: a request
needs a covering ApprovalPolicy and stays within its limit; the requester cannot approve
it; once another approver did, the operator creates the grant's RoleBinding and a call
that was 403 succeeds with the grant, audited with it; nobody else may use the grant; a
run forged around the server grants nothing; and a grant that expires while the operator
is SIGKILLed is refused at once by the server and removed by the next operator."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.resources.rbac_authorization_v1 import RoleBinding
from tests.polling import eventually

from milkyway.kube.resources import APPROVAL_POLICY, FLOWRUN
from milkyway.model import sudo

from .conftest import API, Front, application, bind

pytestmark = pytest.mark.slow  # an operator process and a grant that must expire

POLICY = {
    "apiVersion": "milkyway.ebay.com/v1",
    "kind": "ApprovalPolicy",
    "metadata": {"name": "sudo-approval", "namespace": "milkyway-system"},
    "spec": {
        "match": {"operations": ["sudo"]},
        "approvals": {"users": ["carol"], "groups": ["approvers-a"], "timeout": "1h"},
        "sudo": {"maxDuration": "1h"},
    },
}
GATE = "approval-sudo-approval"
LASTS = 45  # seconds: long enough to use the grant on a loaded machine, short to expire


async def _operator(front: Front, log: Path) -> asyncio.subprocess.Process:
    """``milkyway operator run`` in its own process against the management cluster."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "milkyway.cli.main",
            "operator",
            "run",
            f"--kubeconfig={front.sim.kubeconfig_path}",
            "--context=mgmt",
            "--no-leader-election",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def _stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if process.returncode is None:
        process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _binding(front: Front, grant: str) -> dict[str, Any] | None:
    try:
        found = await front.admin.get(RoleBinding, sudo.binding_name(grant), namespace="team-a")
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    return dict(found.to_dict())


@pytest.fixture
async def operated(front: Front, tmp_path: Path) -> AsyncIterator[tuple[Front, list[Any]]]:
    processes: list[Any] = [await _operator(front, tmp_path / "operator.log")]
    try:
        yield front, processes
    finally:
        for process in processes:
            await _stop(process)
        print((tmp_path / "operator.log").read_text()[-3000:])


async def test_sudo_is_approved_granted_audited_and_expires(
    operated: tuple[Front, list[Any]], tmp_path: Path
) -> None:
    front, processes = operated
    await front.apply(application("scratch"))
    sudo_path = f"{API}/namespaces/team-a/sudo"
    ask = {"role": "milkyway-admin", "duration": f"{LASTS}s", "reason": "INC-123 cleanup"}
    delete = f"{API}/namespaces/team-a/applications/scratch"

    async with front.as_user("alice") as alice:
        # alice edits team-a: deleting an Application needs milkyway-admin.
        answer = await alice.delete(delete)
        assert answer.status_code == 403, answer.text

        # No policy covers sudo yet: nobody could approve it, so it is refused.
        answer = await alice.post(sudo_path, json=ask)
        assert answer.status_code == 403, answer.text
        assert "no ApprovalPolicy covers sudo in namespace team-a" in answer.json()["detail"]
        await front.admin.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")

        # Longer than the policy allows, or a role sudo may not bind: refused, nothing made.
        answer = await alice.post(sudo_path, json={**ask, "duration": "2h"})
        assert answer.status_code == 422, answer.text
        assert "longer than the ApprovalPolicies" in answer.json()["detail"]
        answer = await alice.post(sudo_path, json={**ask, "role": "cluster-admin"})
        assert answer.status_code == 422, answer.text
        assert [r async for r in front.admin.list(FLOWRUN, namespace="team-a")] == []

        answer = await alice.post(sudo_path, json=ask)
        assert answer.status_code == 202, answer.text
        grant, run = answer.json()["grant"], answer.json()["run"]
        elevated = {sudo.HEADER: f"team-a/{grant}"}

        async def waiting() -> bool:
            answer = await alice.get(f"{sudo_path}/{grant}")
            return answer.json()["state"] == "Waiting" and GATE in answer.json()["message"]

        await eventually(waiting, within=60, what="the request waiting at its gate")

        # Not approved yet: the grant may not be used.
        answer = await alice.delete(delete, headers=elevated)
        assert answer.status_code == 403, answer.text
        assert "not in force" in answer.json()["detail"]

        # The requester may not approve her own elevation, approver though she is.
        await front.apply(bind("team-a", "milkyway-approver", user="alice"))
        decide = f"{API}/namespaces/team-a/flowruns/{run}/decisions/approve"
        answer = await alice.post(decide, json={"step": GATE})
        assert answer.status_code == 403, answer.text
        assert f"requested run {run} and may not approve" in answer.json()["detail"]
        assert await _binding(front, grant) is None

    async with front.as_user("erin") as erin:
        answer = await erin.post(decide, json={"step": GATE, "reason": "INC-123 is real"})
        assert answer.status_code == 200, answer.text
    found = await eventually(lambda: _binding(front, grant), within=60, what="the RoleBinding")
    assert found["roleRef"]["name"] == "milkyway-admin"
    assert found["subjects"][0]["name"] == sudo.group_of(grant)
    expires = sudo.expires_at(found)
    assert expires is not None
    assert expires <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LASTS)

    async with front.as_user("bob") as bob:
        answer = await bob.delete(delete, headers=elevated)
        assert answer.status_code == 403, answer.text
        assert "not granted to bob" in answer.json()["detail"]
    async with front.as_user("alice") as alice:
        answer = await alice.get(f"{sudo_path}/{grant}")
        assert answer.json()["state"] == "Granted", answer.text
        answer = await alice.delete(delete, headers=elevated)
        assert answer.status_code == 202, answer.text

    # The operator is killed; the grant expires while no operator runs.
    processes[0].send_signal(signal.SIGKILL)
    await processes[0].wait()
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
    await asyncio.sleep(max(left, 0) + 1)
    assert await _binding(front, grant) is not None, "nothing removed it while down"
    async with front.as_user("alice") as alice:
        answer = await alice.get(f"{API}/namespaces/team-a/applications/scratch", headers=elevated)
        assert answer.status_code == 403, answer.text
        assert "expired at" in answer.json()["detail"]

    # The next operator removes it at once (level-based), and the request reads Expired.
    processes.append(await _operator(front, tmp_path / "operator.log"))

    async def removed() -> bool:
        return await _binding(front, grant) is None

    await eventually(removed, within=60, interval=0.5, what="the expired grant removed")
    async with front.as_user("alice") as alice:
        answer = await alice.get(f"{sudo_path}/{grant}")
        assert answer.json()["state"] == "Expired", answer.text

    rows = front.state.audit.search(action="delete_application", limit=20)
    assert [(r["actor"], r["result"]) for r in rows] == [
        ("alice", 403),
        ("alice", 403),
        ("bob", 403),
        ("alice", 202),
    ]
    used = rows[-1]
    assert sudo.group_of(grant) in used["groups"]
    assert f"sudo grant team-a/{grant}" in used["detail"]
    assert "not in force" in rows[1]["detail"]
    requested = front.state.audit.search(action="request_sudo", limit=20)
    assert [r["result"] for r in requested] == [403, 422, 422, 202]
    assert "INC-123 cleanup" in requested[-1]["detail"]


async def test_a_sudo_run_forged_around_the_server_grants_nothing(
    operated: tuple[Front, list[Any]],
) -> None:
    """carol administers team-a and may create FlowRuns: a milkyway-sudo run of her own,
    without the server's signature or any gate, fails and binds nothing."""
    front, _ = operated
    await front.admin.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")
    as_carol = front.state.clients.as_user("carol", ["platform"])
    forged = {
        "apiVersion": "milkyway.ebay.com/v1",
        "kind": "FlowRun",
        "metadata": {"name": "milkyway-sudo-f0f0f0f0", "namespace": "team-a"},
        "spec": {
            "flow": sudo.FLOW,
            "requestedBy": "carol",
            "params": {
                "namespace": "team-a",
                "grant": "f0f0f0f0",
                "role": "milkyway-admin",
                "user": "carol",
                "seconds": 600,
                "reason": "forged",
                "proof": "0" * 64,
            },
        },
    }
    await as_carol.create(FLOWRUN.from_dict(forged), namespace="team-a")

    async def failed() -> dict[str, Any] | None:
        run = await front.admin.get(FLOWRUN, "milkyway-sudo-f0f0f0f0", namespace="team-a")
        data = run.to_dict()
        return data if (data.get("status") or {}).get("phase") == "Failed" else None

    run = await eventually(failed, within=90, interval=0.5, what="the forged run failed")
    assert "not signed by milkyway server" in str(run["status"]["nodes"]["grant"])
    assert await _binding(front, "f0f0f0f0") is None
