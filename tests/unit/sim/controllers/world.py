"""A tiny in-memory world that applies controller actions, for property tests of the cores.

It does what the API server would (assign names, uids, creation order; merge status
patches; remove deleted objects) and nothing else, so a property test can drive a pure
core through any interleaving of pod readiness that hypothesis picks.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from milkyway.sim.controllers.actions import PODS, Action, Create, Delete, Patch

_counter = itertools.count()


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stamp(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    md = obj.setdefault("metadata", {})
    n = next(_counter)
    if not md.get("name"):
        md["name"] = f"{md.get('generateName', 'obj-')}{n:05d}"
    md["uid"] = f"uid-{n}"
    md["creationTimestamp"] = f"2026-01-01T00:00:{n % 60:02d}Z"
    md.setdefault("generation", 1)
    obj.setdefault("status", {})
    return obj


def ready_pod(pod: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return pod


class World:
    def __init__(self) -> None:
        self.objects: dict[tuple[tuple[str, str, str], str], dict[str, Any]] = {}
        self.log: list[Action] = []

    def put(self, resource: tuple[str, str, str], obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[(resource, obj["metadata"]["name"])] = obj
        return obj

    def of(self, resource: tuple[str, str, str]) -> list[dict[str, Any]]:
        return [o for (r, _), o in self.objects.items() if r == resource]

    def get(self, resource: tuple[str, str, str], name: str) -> dict[str, Any] | None:
        return self.objects.get((resource, name))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            self.log.append(action)
            if isinstance(action, Create):
                obj = stamp(action.obj)
                if (action.resource, obj["metadata"]["name"]) not in self.objects:
                    self.put(action.resource, obj)
            elif isinstance(action, Patch):
                key = (action.resource, action.name)
                if key in self.objects:
                    self.objects[key] = merge(self.objects[key], action.patch)
            elif isinstance(action, Delete):
                self.objects.pop((action.resource, action.name), None)

    def pods(self) -> list[dict[str, Any]]:
        return self.of(PODS)
