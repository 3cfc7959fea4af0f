"""Fuzz the REST create endpoint with the same generated and mutated Applications as
``milkyway validate`` and ``milkyway apply`` (tests/integration/cli/test_fuzz_manifests.py).

Each document goes to ``POST /api/v1/namespaces/team-a/applications`` as a signed-in
editor would send it: JSON when the text parses as YAML, the raw bytes otherwise. Every
answer must be a clean verdict: no 5xx, nothing over 10 s, 201 for a valid Application
and otherwise a problem-details body whose errors name a field and a problem.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from ..cli.test_fuzz_manifests import DOCUMENTS, SLOWEST_RUN, STREAM1_DATA, Tally
from .conftest import API, Front

CREATE_DOCUMENTS = 10_000
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _body(document: bytes, serial: int) -> tuple[bytes, str]:
    """The request body: the document as JSON (its name made unique, so that valid ones
    are created rather than refused as existing, and the example's namespace replaced by
    the path's), or its raw bytes when it is not YAML or has no JSON form (a ``!!binary``
    key)."""
    try:
        data = yaml.load(document.decode("utf-8"), Loader=_LOADER)
        if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            data["metadata"]["name"] = f"fuzz-{serial}"
            if data["metadata"].get("namespace") == STREAM1_DATA["metadata"]["namespace"]:
                data["metadata"]["namespace"] = "team-a"
        return json.dumps(data, default=str).encode(), "application/json"
    except (UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError, TypeError):
        return document, "application/json"


def _check_verdict(status: int, body: dict[str, Any], document: bytes) -> None:
    assert status < 500, (status, body, document[:300])
    if status == 201:
        assert body["kind"] == "Application", body
        return
    assert status in (400, 409, 413, 415, 422), (status, body, document[:300])
    assert body["status"] == status and body["detail"], body
    if status == 422:
        assert body["errors"], body
        for error in body["errors"]:
            assert isinstance(error["field"], str) and error["field"], error
            assert error["problem"], error


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_create_endpoint_fuzz(front: Front) -> None:
    tally = Tally()
    documents: list[bytes] = []

    @settings(
        max_examples=CREATE_DOCUMENTS,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(DOCUMENTS)
    def collect(document: bytes) -> None:
        documents.append(document)

    await asyncio.to_thread(collect)
    assert len(documents) >= CREATE_DOCUMENTS
    async with front.as_user("alice") as http:
        for serial, document in enumerate(documents):
            content, content_type = _body(document, serial)
            started = time.perf_counter()
            response = await http.post(
                f"{API}/namespaces/team-a/applications",
                content=content,
                headers={"Content-Type": content_type},
            )
            elapsed = time.perf_counter() - started
            assert elapsed < SLOWEST_RUN, (elapsed, document[:300])
            _check_verdict(response.status_code, response.json(), document)
            tally.record(elapsed, response.status_code == 201)
    print(
        f"REST create: {tally.runs} documents, {tally.accepted} created, {tally.rejected} "
        f"refused, slowest {tally.slowest:.2f}s"
    )
    assert tally.accepted > 0 and tally.rejected > 0
