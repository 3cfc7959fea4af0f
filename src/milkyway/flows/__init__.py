"""The workflow engine: declarative flows of idempotent, retryable tasks.

Layers, each importing only the ones above it:

* ``expr`` (CEL), ``group`` (batch planning), ``retry`` (backoff) — pure helpers;
* ``events`` and ``core`` — the pure state machine ``(spec, status, event) -> (status,
  commands)``;
* ``tasks`` (the ``@task`` API) and ``builtin`` (generic tasks); ``dsl`` (loading and
  checking flows) and ``plan`` (dry-run);
* ``store`` / ``kube_store`` (persistence), ``engine`` (the asyncio shell) and
  ``schedule`` (cron).
"""
