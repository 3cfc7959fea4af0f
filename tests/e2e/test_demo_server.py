"""``milkyway demo`` starts the server and a throw-away LDAP directory: a demo person signs
in with the printed line and password, lists Applications through the server as RBAC lets
them, is refused what their role does not allow; stopping the demo stops both."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from milkyway.cli.main import app as cli

pytestmark = pytest.mark.slow

MILKYWAY = (sys.executable, "-m", "milkyway.cli.main")


async def _read_until(process: asyncio.subprocess.Process, text: str, within: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(within):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"exited before {text!r}:\n{''.join(seen)}")
            seen.append(line)
            if text in line:
                return "".join(seen)


async def _cli(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str]:
    """A CLI command as a person types it (in this process: the demo is the subprocess)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args), input=stdin, env=env)
    return result.exit_code, result.output


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_demo_person_signs_in_and_lists_through_the_server(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "demo" / "kubeconfig"
    env = {"COLUMNS": "400", "MILKYWAY_SESSIONS": str(tmp_path / "sessions.json")}
    demo = await asyncio.create_subprocess_exec(
        *MILKYWAY,
        "demo",
        "--fast",
        "--no-processes",
        "--nodes",
        "2",
        "--timeout",
        "300",
        f"--kubeconfig={kubeconfig}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )
    try:
        text = await _read_until(demo, "milkyway login --server", 240)
        login = re.search(r"(milkyway login --server (https://127\.0\.0\.1:(\d+)) .*)$", text, re.M)
        assert login is not None, text
        url, port = login.group(2), int(login.group(3))
        passwords = dict(re.findall(r"^\s+(demo-\w+)\s+password (\S+)", text, re.M))
        assert set(passwords) == {"demo-admin", "demo-operator", "demo-viewer"}, text
        slapd_pid = int((kubeconfig.parent / "ldap" / "slapd.pid").read_text())
        # The printed line, as a person copies it, with the viewer's name and password.
        words = login.group(1).split()[1:]
        words[words.index("-u") + 1] = "demo-viewer"
        code, out = await _cli(
            *words, "--password-stdin", env=env, stdin=passwords["demo-viewer"] + "\n"
        )
        assert code == 0 and "as demo-viewer (demo-viewers)" in out, out
        listed: list[str] = []
        for _ in range(120):  # the demo applies its Applications right after printing
            code, out = await _cli("get", "-n", "milkyway", "-o", "json", env=env)
            assert code == 0, out
            listed = [a["metadata"]["name"] for a in json.loads(out)]
            if listed:
                break
            await asyncio.sleep(1)
        assert listed == ["stream1"]
        code, out = await _cli("get", "-n", "streaming", env=env)
        assert code == 1 and "forbidden" in out, out
        code, out = await _cli(
            "scale", "stream1", "kafka1", "--zone", "phx", "--size", "4", "-n", "milkyway",
            env=env,
        )  # fmt: skip
        assert code == 1 and "cannot patch" in out, out
        code, out = await _cli(
            "login", "--server", url, "-u", "demo-viewer", "--password-stdin",
            "--ca-file", str(kubeconfig.parent / "tls" / "tls.crt"),
            env=env, stdin="not-the-password\n",
        )  # fmt: skip
        assert code == 1 and "sign-in refused (401)" in out, out
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(90):
                await demo.communicate()
        finally:
            if demo.returncode is None:
                demo.kill()
                await demo.wait()
    assert not _pid_alive(slapd_pid), "stopping the demo stops slapd"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "stopping the demo stops the server"
