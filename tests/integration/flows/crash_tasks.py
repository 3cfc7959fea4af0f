"""Tasks for the engine-process tests: each counts its executions in a ConfigMap.

Counting is deliberately *not* idempotent, so a test can see every execution: the
ConfigMap ``effect-<key>`` holds how many times the step's effect happened.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from pydantic import BaseModel

from milkyway.flows.tasks import RetryableError, TaskContext, task


class CountParams(BaseModel):
    key: str
    delay: float = 0.02


def effect_name(key: str) -> str:
    return "effect-" + key.replace(".", "-").replace("[", "-").replace("]", "").replace("/", "-")


@task("test.count-effect")
async def count_effect(params: CountParams, ctx: TaskContext) -> dict[str, Any]:
    client = ctx.client("c1")
    await asyncio.sleep(params.delay * random.uniform(0.5, 1.5))
    name = effect_name(params.key)
    for _ in range(20):
        try:
            current = await client.get(ConfigMap, name, namespace="default")
        except ApiError as exc:
            if exc.status.code != 404:
                raise RetryableError(str(exc)) from exc
            try:
                await client.create(
                    ConfigMap(
                        metadata=ObjectMeta(name=name, namespace="default"),
                        data={"count": "1", "by": ctx.run_id},
                    )
                )
                return {"count": 1, "effect": name}
            except ApiError as create_error:
                if create_error.status.code == 409:
                    continue
                raise RetryableError(str(create_error)) from create_error
        count = int((current.data or {}).get("count", "0")) + 1
        current.data = {**(current.data or {}), "count": str(count)}
        try:
            await client.replace(current)
            return {"count": count, "effect": name}
        except ApiError as exc:
            if exc.status.code != 409:
                raise RetryableError(str(exc)) from exc
    raise RetryableError(f"{name} kept changing")
