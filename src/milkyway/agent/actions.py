"""Running a declared admin action and reporting what it did."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from milkyway.agent.fourletter import send_word
from milkyway.model.agent_spec import AgentAction

MAX_OUTPUT = 256 * 1024


@dataclass(frozen=True)
class ActionOutcome:
    action: str
    ok: bool
    exit_code: int | None
    output: str
    duration_seconds: float


async def run_action(action: AgentAction, host: str) -> ActionOutcome:
    started = time.perf_counter()
    if action.kind == "zookeeper":
        assert action.word is not None and action.port is not None
        try:
            answer = await send_word(host, action.port, action.word, action.timeout_seconds)
        except (OSError, TimeoutError) as error:
            return ActionOutcome(
                action.name,
                False,
                None,
                f"{type(error).__name__}: {error}",
                time.perf_counter() - started,
            )
        return ActionOutcome(
            action.name, True, None, answer[:MAX_OUTPUT], time.perf_counter() - started
        )
    assert action.command is not None
    try:
        process = await asyncio.create_subprocess_exec(
            *action.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return ActionOutcome(
            action.name,
            False,
            None,
            f"cannot start {action.command[0]}: {error}",
            time.perf_counter() - started,
        )
    try:
        async with asyncio.timeout(action.timeout_seconds):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return ActionOutcome(
            action.name,
            False,
            None,
            f"stopped after {action.timeout_seconds:g} s",
            time.perf_counter() - started,
        )
    text = output.decode(errors="replace")
    if len(text) > MAX_OUTPUT:
        text = text[-MAX_OUTPUT:]
    return ActionOutcome(
        action.name,
        process.returncode == 0,
        process.returncode,
        text,
        time.perf_counter() - started,
    )
