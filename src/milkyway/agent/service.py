"""The agent's state and its periodic work: checks, volume readings, config and secret
versions. HTTP handlers only read this state or ask it to run an action."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from milkyway.agent.actions import ActionOutcome, run_action
from milkyway.agent.checks import CheckResult, run_check
from milkyway.agent.config import AGENT_FILE, AgentSettings
from milkyway.agent.dirhash import directory_hash
from milkyway.agent.disk import LEVEL_ORDER, DiskAlert, DiskAlertState, VolumeReading, read_volume
from milkyway.agent.metrics import AgentMetrics
from milkyway.model.agent_spec import AgentAction, AgentCheck
from milkyway.security.agent_tokens import (
    ActionGrant,
    PublicKeyDirectory,
    ReplayGuard,
    TokenRejected,
    pod_audience,
    verify_action_token,
)

log = logging.getLogger(__name__)
audit_log = logging.getLogger("milkyway.agent.audit")

Health = Literal["Healthy", "Degraded", "Unhealthy", "Unknown"]
VOLUME_PERIOD_SECONDS = 10.0
VERSION_PERIOD_SECONDS = 2.0


@dataclass
class CheckState:
    result: CheckResult
    since: float


@dataclass
class AppliedVersion:
    current: str | None
    applied: str | None
    applied_at: float | None = None
    last_error: str | None = None


class AgentService:
    def __init__(
        self,
        settings: AgentSettings,
        volume_period: float = VOLUME_PERIOD_SECONDS,
        version_period: float = VERSION_PERIOD_SECONDS,
    ) -> None:
        self.settings = settings
        self.spec = settings.spec
        self.started_at = time.time()
        self.checks: dict[str, CheckState] = {}
        self.volumes: dict[str, VolumeReading] = {}
        self.alerts = DiskAlertState()
        self.alert_history: list[DiskAlert] = []
        self.metrics = AgentMetrics(lambda: {n: s.result.observed for n, s in self.checks.items()})
        self.keys = PublicKeyDirectory(settings.keys_dir)
        self.replay = ReplayGuard()
        self.volume_period = volume_period
        self.version_period = version_period
        self.config = AppliedVersion(current=self._config_hash(), applied=self._config_hash())
        self.secrets = {
            s.name: AppliedVersion(current=directory_hash(Path(s.path)), applied=None)
            for s in self.spec.secrets
        }
        for secret in self.secrets.values():
            secret.applied = secret.current
        self._critical_down = False
        self._tasks: list[asyncio.Task[None]] = []
        self._action_lock = asyncio.Lock()

    @property
    def audience(self) -> str:
        return pod_audience(self.settings.namespace, self.settings.pod)

    async def start(self) -> None:
        for check in self.spec.checks:
            self._tasks.append(asyncio.create_task(self._check_loop(check)))
        self._tasks.append(asyncio.create_task(self._volume_loop()))
        self._tasks.append(asyncio.create_task(self._version_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- checks -------------------------------------------------------------------------

    async def _check_loop(self, check: AgentCheck) -> None:
        while True:
            await self.run_check_once(check)
            await asyncio.sleep(check.period_seconds)

    async def run_check_once(self, check: AgentCheck) -> CheckResult:
        result = await run_check(check, self.settings.host)
        previous = self.checks.get(check.name)
        since = previous.since if previous and previous.result.ok == result.ok else time.time()
        self.checks[check.name] = CheckState(result, since)
        self.metrics.check_up.labels(check.name).set(1 if result.ok else 0)
        self.metrics.check_seconds.labels(check.name).observe(result.duration_seconds)
        self._count_restart()
        return result

    def _count_restart(self) -> None:
        critical = [c.name for c in self.spec.checks if c.critical]
        states = [self.checks.get(name) for name in critical]
        if not critical or any(state is None for state in states):
            return
        down = any(state is not None and not state.result.ok for state in states)
        if self._critical_down and not down:
            self.metrics.restarts.inc()
        self._critical_down = down

    def health(self) -> Health:
        """Unhealthy when a critical check fails or a volume is critical or failed;
        Degraded for a failing non-critical check or a volume past its warning."""
        if any(c.name not in self.checks for c in self.spec.checks):
            return "Unknown"
        failed = [c for c in self.spec.checks if not self.checks[c.name].result.ok]
        disk = max((LEVEL_ORDER[r.level] for r in self.volumes.values()), default=0)
        if any(c.critical for c in failed) or disk >= LEVEL_ORDER["critical"]:
            return "Unhealthy"
        if failed or disk >= LEVEL_ORDER["warning"]:
            return "Degraded"
        return "Healthy"

    # --- volumes ------------------------------------------------------------------------

    async def _volume_loop(self) -> None:
        while True:
            self.read_volumes()
            await asyncio.sleep(self.volume_period)

    def read_volumes(self) -> list[DiskAlert]:
        alerts: list[DiskAlert] = []
        for volume in self.spec.volumes:
            reading = read_volume(volume)
            self.volumes[volume.name] = reading
            self.metrics.volume_used.labels(volume.name).set(reading.used_bytes)
            self.metrics.volume_size.labels(volume.name).set(reading.size_bytes)
            self.metrics.volume_healthy.labels(volume.name).set(
                0 if reading.level == "failed" else 1
            )
            self.metrics.volume_level.labels(volume.name).set(LEVEL_ORDER[reading.level])
            alert = self.alerts.update(reading)
            if alert is not None:
                alerts.append(alert)
                self.alert_history = ([*self.alert_history, alert])[-50:]
                log.warning(
                    "volume %s: %s -> %s: %s",
                    alert.volume,
                    alert.previous,
                    alert.level,
                    alert.message,
                )
        return alerts

    # --- config and secret versions -----------------------------------------------------

    def _config_hash(self) -> str | None:
        return directory_hash(self.settings.config_dir, frozenset({AGENT_FILE}))

    async def _version_loop(self) -> None:
        while True:
            await self.refresh_versions()
            await asyncio.sleep(self.version_period)

    async def refresh_versions(self) -> None:
        """Notice new config or Secret files; a Secret that changed is applied at once by
        its reload action (rotation needs no one to ask), the config only when asked."""
        self.config.current = self._config_hash()
        actions = {a.name: a for a in self.spec.actions}
        for spec in self.spec.secrets:
            state = self.secrets[spec.name]
            state.current = directory_hash(Path(spec.path))
            if state.current is None or state.current == state.applied:
                continue
            outcome = await self._run_locked(actions[spec.reload_action])
            self._audit(
                "secret-rotation",
                spec.reload_action,
                "system:agent",
                "ran",
                outcome=outcome.ok,
                secret=spec.name,
                version=state.current,
            )
            if outcome.ok:
                state.applied, state.applied_at, state.last_error = state.current, time.time(), None
            else:
                state.last_error = outcome.output[-500:]

    # --- actions ------------------------------------------------------------------------

    def authorize(self, action_name: str, token: str | None) -> tuple[AgentAction, ActionGrant]:
        """The declared action and the grant of ``token`` for it, or TokenRejected."""
        action = next((a for a in self.spec.actions if a.name == action_name), None)
        if action is None:
            declared = ", ".join(a.name for a in self.spec.actions) or "none"
            self._audit(
                "action",
                action_name,
                None,
                "refused",
                status=404,
                reason=f"not declared (declared: {declared})",
            )
            raise TokenRejected(
                404, f"action {action_name!r} is not declared (declared: {declared})"
            )
        if not token:
            self._audit("action", action_name, None, "refused", status=401, reason="no token")
            raise TokenRejected(
                401, "an action needs an operator-signed token in X-Milkyway-Action-Token"
            )
        try:
            grant = verify_action_token(
                token, self.keys.keys(), audience=self.audience, action=action_name
            )
            if action.one_shot:
                self.replay.claim(grant)
        except TokenRejected as refused:
            self._audit(
                "action", action_name, None, "refused", status=refused.status, reason=refused.reason
            )
            self.metrics.actions.labels(action_name, "refused").inc()
            raise
        return action, grant

    async def run_authorized(self, action: AgentAction, grant: ActionGrant) -> ActionOutcome:
        self._audit(
            "action",
            action.name,
            grant.requester,
            "allowed",
            token=grant.token_id,
            key=grant.key_id,
        )
        self.metrics.actions.labels(action.name, "allowed").inc()
        config_before = self._config_hash()
        outcome = await self._run_locked(action)
        if outcome.ok and action.name == self.spec.config_reload_action:
            self.config.applied, self.config.applied_at = config_before, time.time()
            self.config.current = self._config_hash()
        self._audit(
            "action-result",
            action.name,
            grant.requester,
            "ran",
            outcome=outcome.ok,
            exitCode=outcome.exit_code,
            token=grant.token_id,
        )
        return outcome

    async def _run_locked(self, action: AgentAction) -> ActionOutcome:
        async with self._action_lock:
            return await run_action(action, self.settings.host)

    def _audit(
        self, kind: str, action: str, requester: str | None, decision: str, **extra: Any
    ) -> None:
        record = {
            "time": time.time(),
            "kind": kind,
            "pod": self.audience,
            "action": action,
            "requester": requester,
            "decision": decision,
            **extra,
        }
        audit_log.info(json.dumps(record, sort_keys=True))

    # --- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        checks = [
            {
                "check": name,
                "ok": state.result.ok,
                "message": state.result.message,
                "observed": {k: v for k, v in state.result.observed.items() if k != "mntr"},
                "since": _rfc3339(state.since),
            }
            for name, state in sorted(self.checks.items())
        ]
        volumes = [
            {
                "volume": r.volume,
                "level": r.level,
                "usedPercent": round(r.used_percent, 2),
                "usedBytes": r.used_bytes,
                "sizeBytes": r.size_bytes,
                "message": r.message,
                "since": _rfc3339(self.alerts.since.get(r.volume, self.started_at)),
            }
            for r in sorted(self.volumes.values(), key=lambda r: r.volume)
        ]
        return {
            "pod": self.audience,
            "health": self.health(),
            "checks": checks,
            "volumes": volumes,
            "config": {"current": self.config.current, "applied": self.config.applied},
            "secrets": {
                name: {"current": s.current, "applied": s.applied, "lastError": s.last_error}
                for name, s in sorted(self.secrets.items())
            },
        }


def _rfc3339(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
