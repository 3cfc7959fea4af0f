"""The audit trail: one hash-chained row per request, in SQLite or PostgreSQL."""

from milkyway.server.audit.log import AuditLog, AuditRecord, Finding, verify_rows

__all__ = ["AuditLog", "AuditRecord", "Finding", "verify_rows"]
