"""The audit trail's chain: an edited, a deleted and a swapped row are each found by
``milkyway audit verify``, on SQLite and on PostgreSQL; appends from many threads keep one
unbroken chain."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from milkyway.cli.main import app as cli
from milkyway.server.audit import AuditLog, AuditRecord

from .postgres import running_postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    log = AuditLog(url)
    with log.engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_records"))
        connection.execute(text("DROP TABLE alembic_version"))
    log.close()


def _fill(log: AuditLog, count: int = 6) -> None:
    for i in range(count):
        log.append_sync(
            AuditRecord(
                request_id=f"req-{i:04d}",
                actor="alice" if i % 2 else "bob",
                groups=["team-a"],
                auth_method="ldap",
                source="10.0.0.1",
                action="scale",
                target=f"POST /api/v1/namespaces/team-a/applications/app{i}/scale",
                decision="allowed" if i % 3 else "denied",
                result=200 if i % 3 else 403,
            )
        )


def _verify(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--db", url])
    return result.exit_code, result.output


def test_an_untouched_log_verifies(audit_url: str) -> None:
    log = AuditLog(audit_url)
    _fill(log)
    findings, head, rows = log.verify()
    log.close()
    assert findings == [] and rows == 6 and len(head) == 64
    code, output = _verify(audit_url)
    assert code == 0, output
    assert "6 record(s), chain intact" in output and head in output


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE audit_records SET decision = 'allowed' WHERE id = 4", "row 4: its contents"),
        ("DELETE FROM audit_records WHERE id = 3", "row 4: row ids jump from 2 to 4"),
        (
            "UPDATE audit_records SET id = -3 WHERE id = 3; "
            "UPDATE audit_records SET id = 3 WHERE id = 4; "
            "UPDATE audit_records SET id = 4 WHERE id = -3",
            "row 3: its link to the previous row does not match",
        ),
    ],
    ids=["edited", "deleted", "swapped"],
)
def test_tampering_is_detected(audit_url: str, tamper: str, expected: str) -> None:
    log = AuditLog(audit_url)
    _fill(log)
    with log.engine.begin() as connection:
        for statement in tamper.split(";"):
            connection.execute(text(statement))
    findings, _, _ = log.verify()
    log.close()
    assert findings
    code, output = _verify(audit_url)
    assert code == 1
    assert expected in output, output


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(audit_url: str) -> None:
    """Whoever edits a row and recomputes its hash still breaks the row after it."""
    from milkyway.server.audit.log import record_hash

    log = AuditLog(audit_url)
    _fill(log)
    with log.engine.begin() as connection:
        row = dict(
            connection.execute(text("SELECT * FROM audit_records WHERE id = 2")).mappings().one()
        )
        row["actor"] = "someone-else"
        new_hash = record_hash(row, row["prev_hash"])
        connection.execute(
            text("UPDATE audit_records SET actor = :actor, hash = :hash WHERE id = 2"),
            {"actor": "someone-else", "hash": new_hash},
        )
    findings, _, _ = log.verify()
    log.close()
    assert [(f.id, f.problem.split(" ")[1]) for f in findings] == [(3, "link")]


def test_concurrent_appends_keep_one_chain(audit_url: str) -> None:
    logs = [AuditLog(audit_url) for _ in range(3)]  # three "replicas"

    def write(index: int) -> None:
        log = logs[index % 3]
        log.append_sync(
            AuditRecord(
                request_id=f"r{index}",
                actor="x",
                action="get",
                target="t",
                decision="allowed",
                result=200,
            )
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(60)))
    findings, _, rows = logs[0].verify()
    for log in logs:
        log.close()
    assert findings == [] and rows == 60


def test_audit_list_filters(audit_url: str) -> None:
    log = AuditLog(audit_url)
    _fill(log)
    log.close()
    result = CliRunner().invoke(
        cli, ["audit", "list", "--db", audit_url, "--decision", "denied", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(result.output)
    assert [r["request_id"] for r in rows] == ["req-0000", "req-0003"]


async def test_concurrent_requests_are_committed_in_batches_on_one_chain(audit_url: str) -> None:
    import asyncio

    log = AuditLog(audit_url)
    batches: list[int] = []
    write = log.append_many_sync

    def counted(records: list[AuditRecord]) -> list[AuditRecord]:
        batches.append(len(records))
        return write(records)

    log.append_many_sync = counted  # type: ignore[method-assign]
    records = await asyncio.gather(
        *(
            log.append(
                AuditRecord(
                    request_id=f"c{i}",
                    actor="x",
                    action="get",
                    target="t",
                    decision="allowed",
                    result=200,
                )
            )
            for i in range(200)
        )
    )
    findings, _, rows = log.verify()
    log.close()
    assert findings == [] and rows == 200
    assert sorted(r.id for r in records) == list(range(1, 201))
    assert sum(batches) == 200 and len(batches) < 20  # one transaction per batch
