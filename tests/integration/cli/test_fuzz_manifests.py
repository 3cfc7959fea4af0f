"""Fuzz ``milkyway validate`` and ``milkyway apply`` with generated and mutated manifests.

Documents come from two hypothesis strategies: the talk's Application with fields
replaced, removed or added (written as YAML or JSON), and its text mutated with the
characters YAML gives meaning to (anchors, aliases, tags, flow brackets, indentation,
non-UTF-8 bytes, deep nesting). Every run must end in a clean verdict: no traceback, no
run over 10 s, and every rejection names the file, a field path and a message.

``validate`` runs in-process through the CLI runner; ``apply`` runs the CLI (in a worker
thread, as it runs its own event loop) against a simulated management cluster.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.testing
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from milkyway.cli.main import app

from .conftest import Mgmt

ROOT = Path(__file__).resolve().parents[3]
STREAM1 = (ROOT / "examples" / "stream1.yaml").read_text()
STREAM1_DATA = yaml.safe_load(STREAM1)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
VALIDATE_DOCUMENTS = 9_000
APPLY_DOCUMENTS = 1_000
SLOWEST_RUN = 30.0
"""A hang guard, not a speed target (bench/hostile_input.py measures the speed): one
document of the fuzz taking this long to be refused means something loops or explodes."""

YAML_CHARS = [*":-&*!|>[]{},#'\"%@`? \n\t", "\n  ", "\n- ", "&a ", "*a", "!!binary "]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["3.10", "NO", "0", "1e3", "500m", "-1", "..", "/data/../x", "a\nb"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "size",
    "version",
    "name",
    "config",
    "type",
    "workload",
    "params",
    "image",
    "uses",
    "flows",
    "resources",
    "storage",
    "regions",
    "nodes",
    "cluster",
    "unknownField",
]
HOSTILE_TEXTS = st.sampled_from(
    [
        "a: &a [*a]\n",
        "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
        "a: " + "[" * 2000 + "]" * 2000 + "\n",
        "apiVersion: !foo x\n",
        "a: !!int abc\n",
        "a: !!python/object/apply:os.system [ls]\n",
        "a: 2024-01-01T00:00:00Z\n",
        "\ufeffapiVersion: milkyway.ebay.com/v1\n",
        "",
        "---\n---\n",
    ]
)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """Every mapping inside ``value`` (itself included)."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@st.composite
def changed_applications(draw: st.DrawFn) -> bytes:
    """The talk's Application with a few fields (at any depth) replaced, removed or added."""
    data: Any = copy.deepcopy(STREAM1_DATA)
    for _ in range(draw(st.integers(1, 4))):
        node = draw(st.sampled_from(_dicts(data)))
        key = draw(st.sampled_from([*FIELDS, *node]))
        if draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = draw(VALUES)
    if draw(st.booleans()):
        return json.dumps(data, default=str).encode()
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True).encode()


@st.composite
def mutated_texts(draw: st.DrawFn) -> bytes:
    """The talk's Application text with YAML-significant characters inserted, removed or
    replaced, sometimes with a hostile snippet or bytes that are not UTF-8."""
    text = STREAM1
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "hostile"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(YAML_CHARS)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif action == "replace":
            text = text[:at] + draw(st.text(max_size=6)) + text[at + 1 :]
        else:
            text = text[:at] + draw(HOSTILE_TEXTS) + text[at:]
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 20)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    return raw


DOCUMENTS = st.one_of(changed_applications(), mutated_texts())


@dataclass
class Tally:
    """What the fuzz saw: how many runs, verdicts and the slowest run."""

    runs: int = 0
    accepted: int = 0
    rejected: int = 0
    slowest: float = 0.0
    failures: list[str] = field(default_factory=list)

    def record(self, elapsed: float, accepted: bool) -> None:
        self.runs += 1
        self.accepted += accepted
        self.rejected += not accepted
        self.slowest = max(self.slowest, elapsed)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # Building the Click command from the Typer app costs ~0.2 s; build it once.
    command = typer.testing._get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)
    return CliRunner()


def _no_traceback(result: Any, document: bytes) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{result.exception!r} on {document[:300]!r}"
    )
    assert "Traceback" not in result.output, result.output[-2000:]
    assert result.exit_code in (0, 1), (result.exit_code, result.output[-2000:])


def _names_file_path_and_message(output: str, file: Path) -> bool:
    """A rejection as the CLI writes it: one line ``error: FILE: ...``, or a table whose
    title names the file and whose rows name a field (or <document>) and a problem."""
    flat = output.replace("\n", "")
    if output.startswith("error: ") and f"{file}" in flat:
        return True
    return f"{file}" in flat and "problem(s)" in flat and ("field" in flat or "<document>" in flat)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_validate_fuzz(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    tally = Tally()

    @settings(
        max_examples=VALIDATE_DOCUMENTS,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(DOCUMENTS)
    def check(document: bytes) -> None:
        file.write_bytes(document)
        started = time.perf_counter()
        result = runner.invoke(app, ["validate", "-f", str(file), "-o", "json"])
        elapsed = time.perf_counter() - started
        _no_traceback(result, document)
        assert elapsed < SLOWEST_RUN, (elapsed, document[:300])
        tally.record(elapsed, result.exit_code == 0)
        if result.exit_code == 0:
            assert json.loads(result.output)["valid"] is True
            return
        if result.output.startswith("error: "):
            assert _names_file_path_and_message(result.output, file), result.output
            return
        report = json.loads(result.output)
        assert report["valid"] is False and report["file"] == str(file)
        assert report["errors"], report
        for error in report["errors"]:
            assert isinstance(error["path"], str), error
            assert error["message"], error

    check()
    print(
        f"validate: {tally.runs} documents, {tally.accepted} accepted, {tally.rejected} "
        f"rejected, slowest {tally.slowest:.2f}s"
    )
    assert tally.runs >= VALIDATE_DOCUMENTS
    assert tally.accepted > 0 and tally.rejected > 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_apply_fuzz(runner: CliRunner, mgmt: Mgmt, tmp_path: Path) -> None:
    file = tmp_path / "app.yaml"
    tally = Tally()
    base = ["apply", "-f", str(file), "--kubeconfig", str(mgmt.sim.kubeconfig_path)]

    @settings(
        max_examples=APPLY_DOCUMENTS,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(DOCUMENTS)
    def check(document: bytes) -> None:
        file.write_bytes(document)
        started = time.perf_counter()
        result = runner.invoke(app, [*base, "--context", "mgmt"])
        elapsed = time.perf_counter() - started
        _no_traceback(result, document)
        assert elapsed < SLOWEST_RUN, (elapsed, document[:300])
        tally.record(elapsed, result.exit_code == 0)
        if result.exit_code == 1:
            assert _names_file_path_and_message(result.output, file), result.output[-3000:]

    await asyncio.to_thread(check)  # the CLI runs its own event loop; the cluster runs on ours
    print(
        f"apply: {tally.runs} documents, {tally.accepted} applied, {tally.rejected} "
        f"rejected, slowest {tally.slowest:.2f}s"
    )
    assert tally.runs >= APPLY_DOCUMENTS
    assert tally.accepted > 0 and tally.rejected > 0
