"""The ``milkyway`` command against an API server that does not answer: one line naming
the context and the server, never a traceback; the standalone flow engine keeps quiet
while the API is gone and stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
import yaml

from milkyway.model.crds import all_crds
from milkyway.sim.clusters import SimulatedClusters

pytestmark = pytest.mark.slow

MILKYWAY = (sys.executable, "-m", "milkyway.cli.main")
"""``python -m milkyway.cli.main`` runs what the ``milkyway`` script runs."""


def _gone_kubeconfig(path: Path) -> tuple[Path, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        server = f"https://127.0.0.1:{sock.getsockname()[1]}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "gone-ctx", "context": {"cluster": "gone", "user": "u"}}],
                "current-context": "gone-ctx",
            }
        )
    )
    return path, server


async def _milkyway(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *MILKYWAY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    "args",
    [
        ["get"],
        ["apply", "-f", str(Path(__file__).parents[3] / "examples" / "stream1.yaml")],
        ["describe", "stream1", "-n", "milkyway"],
        ["flow", "list"],
        ["flow", "run", "rolling-restart"],
        ["operator", "run", "--no-leader-election"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
async def test_an_unreachable_api_server_is_one_line_naming_context_and_server(
    tmp_path: Path, args: list[str]
) -> None:
    kubeconfig, server = _gone_kubeconfig(tmp_path / "kubeconfig")
    code, out, err = await _milkyway(*args, env={"KUBECONFIG": str(kubeconfig)})
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert server in errors[0] and "gone-ctx" in errors[0], errors[0]
    assert "check" in errors[0]


async def test_flow_engine_is_quiet_while_the_api_is_gone_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    async with SimulatedClusters(["mgmt"], kubeconfig_path=tmp_path / "kubeconfig") as sim:
        from lightkube import codecs

        from milkyway.kube.clients import client_from_kubeconfig

        client = client_from_kubeconfig(sim.kubeconfig_path, "mgmt")
        for crd in all_crds():
            await client.create(codecs.from_dict(crd))
        await client.close()
        process = await asyncio.create_subprocess_exec(
            *MILKYWAY,
            "flow",
            "engine",
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "--context",
            "mgmt",
            "--lease",
            "2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            async with asyncio.timeout(60):
                while b"driving flowruns" not in await process.stderr.readline():
                    pass
            await sim["mgmt"].server.pause_listening()
            await asyncio.sleep(5.0)  # a dozen scans at the engine's poll interval
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await sim["mgmt"].server.resume_listening()
    text = out.decode() + err.decode()
    assert "Traceback" not in text, text
    assert text.count("does not answer") <= 2, text
