"""``milkyway sudo`` and ``MILKYWAY_SUDO`` against the real server over HTTPS: refusals
print the server's reason and exit 1, a request prints its grant, ``status`` says it
waits, and a call naming a grant not in force is refused; ``milkyway restart --server``
stamps the caller as the requester."""

from __future__ import annotations

import json
from pathlib import Path

from milkyway.kube.decision_key import decision_key
from milkyway.kube.resources import APPLICATION, APPROVAL_POLICY
from milkyway.security.change_stamp import stamped_user

from .conftest import Front, application
from .test_cli_login import _cli, https_server
from .test_sudo import POLICY


async def test_sudo_from_the_command_line(front: Front, tmp_path: Path) -> None:
    await front.apply(application())
    sessions = tmp_path / "sessions.json"
    env = {"MILKYWAY_SESSIONS": str(sessions)}
    async with https_server(front, tmp_path / "tls") as (url, cert):
        sessions.write_text(
            json.dumps({url: {"token": front.tokens["alice"], "caFile": str(cert)}})
        )
        ask = ["sudo", "--role", "milkyway-admin", "-n", "team-a", "--server", url]
        code, out = await _cli(*ask, "--for", "30m", env=env)
        assert code != 0 and "--reason" in out
        code, out = await _cli(*ask, "--for", "30m", "--reason", "INC-7", env=env)
        assert code == 1 and "no ApprovalPolicy covers sudo in namespace team-a" in out
        await front.admin.create(APPROVAL_POLICY.from_dict(POLICY), namespace="milkyway-system")
        code, out = await _cli(*ask, "--for", "3h", "--reason", "INC-7", env=env)
        assert code == 1 and "longer than the ApprovalPolicies" in out
        code, out = await _cli(*ask, "--for", "30m", "--reason", "INC-7", env=env)
        assert code == 0, out
        assert "Waiting" in out and "MILKYWAY_SUDO=team-a/" in out
        grant = out.split("MILKYWAY_SUDO=team-a/")[1].split()[0]
        code, out = await _cli("sudo", "status", grant, "-n", "team-a", "--server", url, env=env)
        assert code == 0 and f"team-a/{grant}" in out and "Waiting" in out, out

        restart = ["restart", "stream1", "kafka1", "-n", "team-a", "--server", url]
        code, out = await _cli(*restart, env={**env, "MILKYWAY_SUDO": f"team-a/{grant}"})
        assert code == 1 and "not in force" in out, out
        code, out = await _cli(*restart, env=env)
        assert code == 0 and "restart of kafka1 requested" in out, out
    stored = (await front.admin.get(APPLICATION, "stream1", namespace="team-a")).to_dict()
    assert stamped_user(await decision_key(front.admin), stored) == "alice"
    rows = front.state.audit.search(action="restart", limit=10)
    assert [(r["actor"], r["result"]) for r in rows] == [("alice", 403), ("alice", 200)]
