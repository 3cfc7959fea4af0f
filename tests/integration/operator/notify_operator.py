"""The operator in a process of its own, for the test that kills it with SIGKILL.

``python notify_operator.py KUBECONFIG CONTEXT``; with ``MILKYWAY_TEST_HOLD_SEND=PATH``
every notification is rendered, then the process writes PATH and hangs instead of
sending: the moment between render and send, held open for the test to kill it in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import milkyway.notify.center as center
from milkyway.operator.manager import Operator, OperatorSettings


def main() -> None:
    kubeconfig, context = sys.argv[1:3]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    hold = os.environ.get("MILKYWAY_TEST_HOLD_SEND")
    if hold:

        async def held(*args: Any, **kwargs: Any) -> dict[str, Any]:
            with open(hold, "w") as marker:  # noqa: ASYNC230 - one line, then hang
                marker.write("rendered\n")
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        center.send = held  # type: ignore[assignment]
    settings = OperatorSettings(
        namespace="milkyway-system",
        leader_election=False,
        flow_lease_seconds=2.0,
        engine_poll_interval=0.2,
        heartbeat_interval=0.5,
        heartbeat_timeout=1.0,
        resync_period=5.0,
    )
    asyncio.run(Operator(kubeconfig, context, settings).run_forever())


if __name__ == "__main__":
    main()
