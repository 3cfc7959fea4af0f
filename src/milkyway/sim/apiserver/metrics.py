"""``/metrics`` of a simulated API server, in the Prometheus text exposition format.

The families and labels are the real kube-apiserver's, so dashboards and alerts written for
a real cluster read them: ``apiserver_request_total`` (by verb, group, version, resource,
subresource, scope and HTTP code), ``apiserver_request_duration_seconds`` (a histogram with
the real buckets), ``apiserver_longrunning_requests`` (open watches per resource) and
``apiserver_storage_objects`` (stored objects per resource).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
_COMPONENT = "apiserver"


@dataclass(frozen=True, slots=True)
class RequestLabels:
    verb: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    scope: str = ""

    def pairs(self) -> list[tuple[str, str]]:
        return [
            ("component", _COMPONENT),
            ("group", self.group),
            ("resource", self.resource),
            ("scope", self.scope),
            ("subresource", self.subresource),
            ("verb", self.verb),
            ("version", self.version),
        ]


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1


class ApiMetrics:
    """Counts of one API server's requests; :meth:`render` writes the exposition text."""

    def __init__(self) -> None:
        self.requests: dict[tuple[RequestLabels, str], int] = defaultdict(int)
        self.durations: dict[RequestLabels, _Histogram] = {}

    def observe(self, labels: RequestLabels, code: int, seconds: float) -> None:
        self.requests[(labels, str(code))] += 1
        if labels.verb != "WATCH":
            histogram = self.durations.get(labels)
            if histogram is None:
                histogram = self.durations[labels] = _Histogram()
            histogram.observe(seconds)

    def render(self, api: ClusterAPI) -> str:
        lines: list[str] = []
        _family(
            lines,
            "apiserver_request_total",
            "counter",
            "Counter of apiserver requests broken out for each verb, dry run value, group, "
            "version, resource, scope, component, and HTTP response code.",
        )
        for (labels, code), count in sorted(self.requests.items(), key=_request_order):
            pairs = [("code", code), *labels.pairs(), ("dry_run", "")]
            lines.append(f"apiserver_request_total{_labels(sorted(pairs))} {count}")
        _family(
            lines,
            "apiserver_request_duration_seconds",
            "histogram",
            "Response latency distribution in seconds for each verb, dry run value, group, "
            "version, resource, subresource, scope and component.",
        )
        for labels, histogram in sorted(self.durations.items(), key=lambda i: i[0].pairs()):
            base = labels.pairs()
            for bound, count in zip(DURATION_BUCKETS, histogram.buckets, strict=True):
                pairs = sorted([*base, ("le", _number(bound))])
                lines.append(f"apiserver_request_duration_seconds_bucket{_labels(pairs)} {count}")
            pairs = sorted([*base, ("le", "+Inf")])
            lines.append(
                f"apiserver_request_duration_seconds_bucket{_labels(pairs)} {histogram.count}"
            )
            lines.append(
                f"apiserver_request_duration_seconds_sum{_labels(base)} {histogram.total!r}"
            )
            lines.append(
                f"apiserver_request_duration_seconds_count{_labels(base)} {histogram.count}"
            )
        _family(
            lines,
            "apiserver_longrunning_requests",
            "gauge",
            "Gauge of all active long-running apiserver requests broken out by verb, group, "
            "version, resource, scope and component.",
        )
        for (group, plural), count in sorted(api.store.watchers_by_resource().items()):
            pairs = [
                ("component", _COMPONENT),
                ("group", group),
                ("resource", plural),
                ("scope", "cluster"),
                ("subresource", ""),
                ("verb", "WATCH"),
                ("version", _preferred(api, group)),
            ]
            lines.append(f"apiserver_longrunning_requests{_labels(pairs)} {count}")
        _family(
            lines,
            "apiserver_storage_objects",
            "gauge",
            "Number of stored objects at the time of last check split by kind.",
        )
        for group, plural in sorted(api.registry.storage_keys()):
            resource = f"{plural}.{group}" if group else plural
            count = api.store.count((group, plural))
            lines.append(f"apiserver_storage_objects{_labels([('resource', resource)])} {count}")
        return "\n".join(lines) + "\n"


def _request_order(item: tuple[tuple[RequestLabels, str], int]) -> list[tuple[str, str]]:
    (labels, code), _count = item
    return [*labels.pairs(), ("code", code)]


def _preferred(api: ClusterAPI, group: str) -> str:
    versions = api.registry.versions_of(group)
    return versions[0] if versions else ""


def _family(lines: list[str], name: str, kind: str, help_: str) -> None:
    lines.append(f"# HELP {name} [STABLE] {help_}")
    lines.append(f"# TYPE {name} {kind}")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(value)
