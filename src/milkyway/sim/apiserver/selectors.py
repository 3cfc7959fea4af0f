"""Label and field selectors, parsed once and matched many times.

Selectors are applied to every list and to every watch event, so parsing happens once per
request and matching is a few dictionary lookups per object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from milkyway.sim.apiserver.errors import ApiError, bad_request


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` semantics: ``None`` matches nothing, ``{}`` everything.

    Selectors read from stored objects are valid; one that is not (an unknown operator, a
    malformed expression) matches nothing rather than raising.
    """
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(_expression_matches(e, labels) for e in expressions)


def _expression_matches(expression: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(expression, Mapping) or not isinstance(expression.get("key"), str):
        return False
    key, operator = expression["key"], expression.get("operator")
    values = expression.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        present = self.key in labels
        if op == "=":
            return present and labels[self.key] in self.values
        if op == "in":
            return present and labels[self.key] in self.values
        if op == "!=":
            return not present or labels[self.key] not in self.values
        return not present or labels[self.key] not in self.values  # notin


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self.matches(obj.get("metadata", {}).get("labels"))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "exists":
                parts.append(r.key)
            elif r.op == "!exists":
                parts.append(f"!{r.key}")
            elif r.op in ("=", "!="):
                parts.append(f"{r.key}{r.op}{next(iter(r.values))}")
            else:
                parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        return ",".join(parts)


_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise bad_request(f'unable to parse requirement: invalid label selector "{text}"')
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k``; raise 400 naming the bad part."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail(why: str) -> ApiError:
        return bad_request(f'unable to parse requirement: {why} in label selector "{text}"')

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            if i + 1 >= len(toks):
                raise fail("missing key after '!'")
            reqs.append(Requirement(toks[i + 1], "!exists"))
            i += 2
        else:
            key = tok
            if key in ("=", "==", "!=", "(", ")", ","):
                raise fail(f"found '{key}', expected a key")
            nxt = toks[i + 1] if i + 1 < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "==", "!="):
                if i + 2 >= len(toks) or toks[i + 2] in (",", "(", ")"):
                    value = ""
                    i += 2
                else:
                    value = toks[i + 2]
                    i += 3
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", frozenset({value})))
            elif nxt in ("in", "notin"):
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    raise fail(f"expected '(' after '{nxt}'")
                j = i + 3
                values: set[str] = set()
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        values.add(toks[j])
                    j += 1
                if j >= len(toks):
                    raise fail("missing ')'")
                reqs.append(Requirement(key, nxt, frozenset(values)))
                i = j + 1
            else:
                raise fail(f"found '{nxt}', expected: '=', '!=', '==', 'in', 'notin'")
        if i < len(toks):
            if toks[i] != ",":
                raise fail(f"found '{toks[i]}', expected ','")
            i += 1
    return LabelSelector(tuple(reqs))


def selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (``matchLabels`` + ``matchExpressions``) as a LabelSelector.

    An absent selector matches nothing in the workload APIs, but callers decide that;
    here ``None`` and ``{}`` both give the empty selector, which matches everything.
    """
    if not selector:
        return LabelSelector()
    reqs = [
        Requirement(k, "=", frozenset({str(v)}))
        for k, v in (selector.get("matchLabels") or {}).items()
    ]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(
                f"invalid label selector operator {expr.get('operator')!r}: "
                "use In, NotIn, Exists or DoesNotExist"
            )
        reqs.append(Requirement(expr["key"], op, frozenset(expr.get("values") or ())))
    return LabelSelector(tuple(reqs))


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The string form of a ``metav1.LabelSelector`` (as Scale ``status.selector`` shows it)."""
    return str(selector_from_dict(selector))


FieldGetter = Callable[[Mapping[str, Any]], Any]


def _path_getter(path: str) -> FieldGetter:
    parts = path.split(".")

    def get(obj: Mapping[str, Any]) -> Any:
        node: Any = obj
        for part in parts:
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node

    return get


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")

SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
    "persistentvolumeclaims": ("status.phase",),
    "persistentvolumes": ("status.phase",),
    "replicasets": ("status.replicas",),
}

_SPECIAL_GETTERS: dict[str, FieldGetter] = {
    "source": lambda o: (o.get("source") or {}).get("component"),
}


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = _render(self.getter(obj))
        if actual is None:
            actual = ""
        return (actual != self.value) if self.negate else (actual == self.value)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name a ``metadata.name=x`` requirement pins, so lookups can skip scanning."""
        for r in self.requirements:
            if r.path == "metadata.name" and not r.negate:
                return r.value
        return None


def parse_field_selector(text: str | None, plural: str, *, custom: bool = False) -> FieldSelector:
    """Parse ``a=b,c!=d`` for resource ``plural``; unsupported fields are 400 as in Kubernetes."""
    if not text or not text.strip():
        return FieldSelector()
    allowed = (
        set(_COMMON_FIELDS)
        if custom
        else set(_COMMON_FIELDS) | set(SUPPORTED_FIELDS.get(plural, ()))
    )
    reqs: list[FieldRequirement] = []
    for raw in _split_unescaped(text):
        part = raw.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+)(==|!=|=)(.*)$", part)
        if not m:
            raise bad_request(
                f'invalid selector: "{text}"; the field selector needs an operator '
                "(=, == or !=), e.g. metadata.name=web-0"
            )
        path, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise bad_request(
                f'field label not supported: {path} (resource "{plural}" supports: '
                f"{', '.join(sorted(allowed))})"
            )
        getter = _SPECIAL_GETTERS.get(path) or _path_getter(path)
        reqs.append(FieldRequirement(path, op == "!=", value.replace("\\,", ","), getter))
    return FieldSelector(tuple(reqs))


def _split_unescaped(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    escaped = False
    for ch in text:
        if escaped:
            current += "\\" + ch if ch != "," else ","
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts
