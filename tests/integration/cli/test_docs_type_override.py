"""docs/operator-flows.md's ComponentType override, run as written with kubectl."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from milkyway.components.registry import component_type_from_resource
from milkyway.kube.resources import COMPONENT_TYPE

from .conftest import Mgmt

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[3] / "docs" / "operator-flows.md"


def _example() -> tuple[str, str]:
    """The Flow of the override example and the shell commands that install it."""
    text = DOC.read_text()
    section = text[text.index("### Example: Kafka waits") :]
    flow = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    commands = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert flow and commands, "the example lost its yaml or sh block"
    return flow.group(1), commands.group(1)


async def test_the_override_example_works_as_written(mgmt: Mgmt, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: apt-get install kubectl (scripts/bootstrap.sh)"
    flow, commands = _example()
    (tmp_path / "kafka-member-health.yaml").write_text(flow)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "milkyway").write_text(
        f'#!/bin/sh\nexec {sys.executable} -m milkyway.cli.main "$@"\n'
    )
    (bin_dir / "milkyway").chmod(0o755)
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        f"kubectl config use-context mgmt >/dev/null\n{commands}",
        cwd=tmp_path,
        env={
            **os.environ,
            "KUBECONFIG": str(mgmt.sim.kubeconfig_path),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    stored = (await mgmt.client.get(COMPONENT_TYPE, "kafka")).to_dict()
    kafka = component_type_from_resource(stored)
    assert kafka.spec.flows == {"member-health": "kafka-member-health"}
    assert kafka.spec.config_files and all(f.template for f in kafka.spec.config_files)
