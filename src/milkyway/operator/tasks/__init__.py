"""Milkyway's lifecycle tasks (``milkyway.*`` actions), used by the operator's flows.

Importing this package registers every task in the engine's default registry. Tasks reach
member clusters only through lightkube clients the engine hands them (``ctx.client``),
keyed by Cluster name. Each one is idempotent (the engine runs tasks at least once): it
declares an end state, checks before acting, and treats "already done" as success.

An unreachable member cluster never fails a task: it heartbeats "unreachable, waiting"
and resumes when the cluster answers again (see :mod:`.common`).
"""

from milkyway.operator.tasks import member, namespace, secret_rotation, zone

__all__ = ["member", "namespace", "secret_rotation", "zone"]
