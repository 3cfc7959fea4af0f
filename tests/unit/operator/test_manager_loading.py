"""The operator loads its tasks for real: a broken tasks package is an error, not an
operator without tasks; ``--tasks`` adds modules; the module docstring's usage works."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

import milkyway.operator.manager as manager
from milkyway.cli.main import app
from milkyway.flows.tasks import REGISTRY


def test_an_import_error_inside_the_tasks_package_is_not_swallowed() -> None:
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class Missing(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "milkyway.operator.tasks.zone":
                    raise ModuleNotFoundError("No module named 'a_dependency'")
                return None

        sys.meta_path.insert(0, Missing())
        try:
            from milkyway.operator.manager import Operator
        except ModuleNotFoundError as exc:
            print("raised:", exc)
        else:
            tasks = Operator({}, None).tasks
            print("tasks:", "milkyway.apply-zone" in tasks.names())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert "raised: No module named 'a_dependency'" in result.stdout, result.stdout + result.stderr


def test_operator_run_loads_task_modules_before_starting(tmp_path: Path) -> None:
    module = tmp_path / "broker_tasks.py"
    module.write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel
            from milkyway.flows.tasks import TaskContext, task

            class Params(BaseModel):
                name: str

            @task("example.broker-check")
            async def broker_check(params: Params, ctx: TaskContext) -> dict:
                return {"checked": params.name}
            """
        )
    )
    kubeconfig = tmp_path / "missing-kubeconfig"
    result = CliRunner().invoke(
        app, ["operator", "run", "--kubeconfig", str(kubeconfig), "--tasks", str(module)]
    )
    assert "example.broker-check" in REGISTRY.names()
    assert result.exit_code == 2 and "does not exist" in result.output, result.output

    missing = CliRunner().invoke(
        app, ["operator", "run", "--kubeconfig", str(kubeconfig), "--tasks", "no.such.module"]
    )
    assert missing.exit_code == 2 and "no.such.module" in missing.output, missing.output


def test_the_docstring_usage_constructs_an_operator() -> None:
    doc = manager.__doc__ or ""
    block = doc[doc.index("Usage in-process") :].split("::", 1)[1]
    lines = [line[4:] for line in block.splitlines() if line.startswith("    ")]
    setup = []
    for line in lines:
        opened = re.match(r"async with (.*) as operator:$", line.strip())
        if opened:
            setup.append(f"operator = {opened.group(1)}")
            break
        setup.append(line)
    namespace: dict[str, object] = {
        **vars(manager),
        "kubeconfig": {"apiVersion": "v1", "kind": "Config"},
    }
    exec("\n".join(setup), namespace)
    operator = namespace["operator"]
    assert isinstance(operator, manager.Operator)
    assert operator.context == "mgmt" and operator.settings.namespace == "milkyway-system"
