"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` that ``kubectl get`` shows.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
whatever columns the server returns, so the columns here are those of the real server's
printers (``kubectl get pods`` shows NAME READY STATUS RESTARTS AGE, ``-o wide`` adds
the priority-1 columns). Custom resources get NAME plus their CRD's
``additionalPrinterColumns`` (evaluated with their JSONPath), or NAME and AGE when the
CRD declares none, as on a real server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from milkyway.sim.apiserver import jsonpath
from milkyway.sim.apiserver.errors import bad_request
from milkyway.sim.apiserver.printers_batch import BATCH_PRINTERS
from milkyway.sim.apiserver.printers_builtin import BUILTIN_PRINTERS, Column, name_column
from milkyway.sim.apiserver.timefmt import age, human_duration, parse_time

INCLUDE_OBJECT = ("None", "Metadata", "Object")

__all__ = ["INCLUDE_OBJECT", "age", "human_duration", "to_table"]


def to_table(
    objects: list[dict],
    *,
    group: str,
    kind: str,
    printer_columns: list[dict] | None,
    include_object: str = "Metadata",
    list_metadata: dict | None = None,
    now: datetime | None = None,
) -> dict:
    """A ``Table`` of ``objects`` of one kind, with the columns kubectl would show.

    ``printer_columns`` are a CRD version's ``additionalPrinterColumns`` (``None`` for
    built-in kinds); ``include_object`` is the request's ``includeObject``.
    """
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(
            f'invalid includeObject "{include_object}": use one of {", ".join(INCLUDE_OBJECT)}'
        )
    moment = now or datetime.now(UTC)
    if printer_columns is not None:
        columns = _crd_columns(printer_columns)
    else:
        columns = (
            BUILTIN_PRINTERS.get((group, kind))
            or BATCH_PRINTERS.get((group, kind))
            or _default_columns()
        )
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [column.cell(obj, moment) for column in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = _partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_metadata or {}),
        "columnDefinitions": [column.definition() for column in columns],
        "rows": rows,
    }


def _partial_metadata(obj: dict) -> dict:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def _default_columns() -> list[Column]:
    return [
        name_column(),
        Column(
            "Age",
            "string",
            lambda obj, now: age(obj, now),
            description="CreationTimestamp is a timestamp representing the server time when "
            "this object was created.",
        ),
    ]


def _crd_columns(printer_columns: list[dict]) -> list[Column]:
    if not printer_columns:
        return _default_columns()
    columns = [name_column()]
    for spec in printer_columns:
        steps = jsonpath.parse(str(spec.get("jsonPath", "")))
        columns.append(
            Column(
                str(spec.get("name", "")),
                str(spec.get("type", "string")),
                _crd_cell(steps, str(spec.get("type", "string"))),
                format=str(spec.get("format", "")),
                description=str(spec.get("description", "")),
                priority=int(spec.get("priority", 0) or 0),
            )
        )
    return columns


def _crd_cell(steps: list[jsonpath.Step], type_: str) -> Callable[[dict, datetime], Any]:
    def cell(obj: dict, now: datetime) -> Any:
        values = jsonpath.evaluate(steps, obj)
        if not values:
            return None
        value = values[0]
        if type_ == "date" and isinstance(value, str):
            moment = parse_time(value)
            return human_duration(now - moment) if moment else value
        if type_ == "string":
            return ",".join(_text(v) for v in values)
        if type_ == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"))
        return value

    return cell


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
