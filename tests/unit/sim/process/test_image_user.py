"""Which user a container of a mapped image runs as: its ``runAsUser`` where the image's
programs are readable by every user, the runtime's own user where they are not (a
virtualenv under a private home), so a Deployment asking for a non-root user works in
both places."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from milkyway.sim.process.images import ImageMap, ImageRule, _unreadable_by_others
from milkyway.sim.process.network import PodNetwork
from milkyway.sim.process.runtime import ClusterFacts, ProcessRuntime


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every user can search, directly under the machine's temporary folder
    (pytest's own temporary folders are private to their user)."""
    folder = Path(tempfile.mkdtemp(prefix="mw-image-user-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _program(folder: Path) -> Path:
    program = folder / "bin" / "python"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_a_program_in_a_private_folder_runs_only_as_root(shared_folder: Path) -> None:
    private = shared_folder / "home"
    program = _program(private)
    private.chmod(0o700)
    reason = _unreadable_by_others(program)
    assert str(private) in reason and "runs only as root" in reason


def test_a_program_every_user_can_reach_needs_no_root(shared_folder: Path) -> None:
    program = _program(shared_folder / "opt")
    assert _unreadable_by_others(program) == ""


POD = {
    "spec": {
        "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532},
        "containers": [{"name": "operator", "image": "milkyway/milkyway:0.1.0"}],
    }
}


@pytest.mark.parametrize(
    ("root_only", "uid"), [("", 65532), ("/root is not searchable by other users", None)]
)
def test_the_container_runs_as_its_user_unless_the_image_is_root_only(
    tmp_path: Path, root_only: str, uid: int | None
) -> None:
    runtime = ProcessRuntime(ClusterFacts("east"), ImageMap(), PodNetwork(), tmp_path)
    container = SimpleNamespace(spec={"securityContext": {"readOnlyRootFilesystem": True}})
    rule = ImageRule("milkyway/*", entrypoint=("milkyway",), root_only=root_only)
    security = runtime._security(POD, container, rule)  # type: ignore[arg-type]
    assert security["uid"] == uid
    assert security["gid"] == uid
    assert security["read_only_root"] is True
