"""The audit table (SQLAlchemy 2 Core); Alembic migrations create and evolve it."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

audit_records = Table(
    "audit_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("request_id", String(64), nullable=False, index=True),
    Column("actor", String(256), nullable=False, index=True),
    Column("groups", Text, nullable=False),
    Column("auth_method", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("action", String(128), nullable=False, index=True),
    Column("target", String(512), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("result", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
