"""The edits that day-2 verbs make to an Application, as pure functions on its document.

``milkyway scale``, ``upgrade``, ``set-param``, ``restart`` and ``replace`` and the REST API's
lifecycle actions all make exactly these changes; only how they reach the cluster differs
(:mod:`milkyway.kube.applications`). An edit that cannot apply raises :class:`EditError`
with a message that names the problem and the way out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, cast

import yaml

from milkyway.model.base import API_VERSION

RESTART_ANNOTATION = "milkyway.ebay.com/restart"
REPLACE_ANNOTATION = "milkyway.ebay.com/replace"

SpecEdit = Callable[[dict[str, Any]], str]
"""Changes an Application's spec in place and returns a one-line summary of the change."""


class EditError(ValueError):
    """An edit that does not fit the Application (no such component, zone, member...)."""


def find_component(spec: dict[str, Any], component: str) -> dict[str, Any]:
    names = [c.get("name") for c in spec.get("components", [])]
    for item in spec.get("components", []):
        if item.get("name") == component:
            return cast(dict[str, Any], item)
    raise EditError(f"no component {component!r}; components: {', '.join(map(str, names))}")


def find_zone(item: dict[str, Any], zone: str) -> dict[str, Any] | None:
    for region in item.get("regions", []):
        for entry in region.get("zones", []):
            if entry.get("name") == zone:
                return cast(dict[str, Any], entry)
    return None


def zone_names(item: dict[str, Any]) -> list[str]:
    return [z.get("name") for r in item.get("regions", []) for z in r.get("zones", [])]


def scale_edit(component: str, zone: str, size: int, region: str | None) -> SpecEdit:
    """Set one zone's size; with ``region``, a zone the component lacks is added there."""

    def edit(spec: dict[str, Any]) -> str:
        item = find_component(spec, component)
        entry = find_zone(item, zone)
        if entry is None:
            if region is None:
                raise EditError(
                    f"component {component!r} has no zone {zone!r} "
                    f"(zones: {', '.join(zone_names(item))}); "
                    "to add it, pass --region with the region it belongs to"
                )
            regions = item.setdefault("regions", [])
            target = next((r for r in regions if r.get("name") == region), None)
            if target is None:
                target = {"name": region, "zones": []}
                regions.append(target)
            target["zones"].append({"name": zone, "size": size})
            return f"{component}: zone {zone} added in region {region} with {size} member(s)"
        old = entry.get("size")
        entry["size"] = size
        return f"{component}: zone {zone} size {old} -> {size}"

    return edit


def upgrade_edit(component: str, version: str, zone: str | None) -> SpecEdit:
    """Set the component's version (or one zone's); zone overrides are cleared when the
    whole component moves, so every zone ends on ``version``."""

    def edit(spec: dict[str, Any]) -> str:
        item = find_component(spec, component)
        if zone is not None:
            entry = _zone_or_error(item, component, zone)
            old = entry.get("version", item.get("version"))
            entry["version"] = version
            return f"{component}: zone {zone} version {old} -> {version}"
        old = item.get("version")
        item["version"] = version
        for region in item.get("regions", []):
            for entry in region.get("zones", []):
                entry.pop("version", None)
        return f"{component}: version {old} -> {version}"

    return edit


def _zone_or_error(item: dict[str, Any], component: str, zone: str) -> dict[str, Any]:
    entry = find_zone(item, zone)
    if entry is None:
        raise EditError(
            f"component {component!r} has no zone {zone!r}; zones: {', '.join(zone_names(item))}"
        )
    return entry


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` (VALUE read as YAML: 3 is a number, "3" text) and ``KEY-`` (remove)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            if pair.endswith("-") and len(pair) > 1:
                out[pair[:-1]] = None
                continue
            raise EditError(
                f"{pair!r} is not KEY=VALUE; write e.g. tickTime=3000 (or KEY- to remove a key)"
            )
        key, _, raw = pair.partition("=")
        if not key:
            raise EditError(f"{pair!r} has no key; write KEY=VALUE")
        try:
            out[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def params_edit(component: str, values: dict[str, Any], zone: str | None) -> SpecEdit:
    """Set parameters (a value of None removes the key) on a component or one zone."""

    def edit(spec: dict[str, Any]) -> str:
        item = find_component(spec, component)
        holder = _zone_or_error(item, component, zone) if zone is not None else item
        params = holder.setdefault("params", {})
        for key, value in values.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        if not params:
            holder.pop("params")
        shown = ", ".join(
            f"{k} removed" if v is None else f"{k}={json.dumps(v)}" for k, v in values.items()
        )
        where = f" zone {zone}" if zone else ""
        return f"{component}{where}: {shown}"

    return edit


def clean_document(obj: dict[str, Any]) -> dict[str, Any]:
    """The user-owned part of a stored Application (what a manifest would hold)."""
    meta = obj.get("metadata", {})
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)
        },
        "spec": copy.deepcopy(obj.get("spec", {})),
    }


def with_request(current: str, subject: str, stamp: str) -> str:
    """A request annotation's value with ``subject@stamp`` set (one entry per subject, the
    newest wins): restart requests name components, replace requests name members."""
    items = [i for i in current.replace(",", " ").split() if i.partition("@")[0] != subject]
    items.append(f"{subject}@{stamp}")
    return ",".join(items)


def check_member(obj: dict[str, Any], member: str) -> None:
    """Raise unless ``member`` names a member (pod) of the Application ``obj``."""
    meta = obj.get("metadata", {})
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    prefix = f"{name}-"
    components = [c.get("name", "") for c in obj.get("spec", {}).get("components", [])]
    if not member.startswith(prefix) or not any(
        member[len(prefix) :].startswith(f"{c}-") for c in components
    ):
        example = components[0] if components else "<component>"
        raise EditError(
            f"{member!r} is not a member of {namespace}/{name}; member names look like "
            f"{name}-<component>-<zone>-<ordinal>, e.g. {name}-{example}-<zone>-0 "
            f"(list them with kubectl get pods in the zone's cluster)"
        )
