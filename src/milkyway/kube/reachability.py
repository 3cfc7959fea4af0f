"""Say once that a cluster cannot be reached, and once that it can again.

While a cluster is cut off, every loop that talks to it (informers, the leader's lease
renewals, flow engines' scans, reconciles) fails at its own pace, and logging each
failure buried the one fact worth knowing under dozens of tracebacks a minute. A
:class:`ReachabilityLog` per cluster turns those failures into one WARNING when the
cluster becomes unreachable and one when it answers again; repeats go to DEBUG.
"""

from __future__ import annotations

import logging

from milkyway.kube.errors import UNREACHABLE_CODES, is_unreachable


def connection_error(exc: BaseException) -> bool:
    """``exc`` says the cluster could not be reached, not that it refused the request
    (:func:`milkyway.kube.errors.is_unreachable`), also when wrapped in another error
    (its cause or context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_unreachable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


class ReachabilityLog:
    """One WARNING per change of reachability of one cluster; every loop that talks to
    the cluster reports to the same instance."""

    def __init__(self, cluster: str, logger: logging.Logger | None = None) -> None:
        self.cluster = cluster
        self.reachable = True
        self.log = logger or logging.getLogger("milkyway.kube.reachability")

    def failed(self, exc: BaseException, doing: str = "") -> bool:
        """Report a failure; True if it was a connection error (then logged here: once
        as a WARNING on the change, at DEBUG afterwards), False for any other error,
        which the caller reports itself."""
        if not connection_error(exc):
            return False
        what = f" ({doing})" if doing else ""
        if self.reachable:
            self.reachable = False
            self.log.warning(
                "cluster %s unreachable%s: %s: %s; retrying quietly until it answers",
                self.cluster,
                what,
                type(exc).__name__,
                exc,
            )
        else:
            self.log.debug("cluster %s still unreachable%s: %s", self.cluster, what, exc)
        return True

    def succeeded(self) -> None:
        """Report a success: logs once if the cluster was unreachable."""
        if not self.reachable:
            self.reachable = True
            self.log.warning("cluster %s reachable again", self.cluster)


__all__ = ["UNREACHABLE_CODES", "ReachabilityLog", "connection_error"]
