"""The cost of a CEL validation rule, before it is accepted and before it runs.

A real API server estimates each ``x-kubernetes-validations`` rule's worst-case cost when
the CRD is written, from the schema: a macro such as ``all()`` costs its body once per
element, and a list, map or string without ``maxItems``, ``maxProperties`` or
``maxLength`` is assumed as long as the 3 MiB request limit allows. Rules whose estimate
exceeds the per-expression budget make the CRD invalid ("estimated rule cost exceeds
budget by factor of …"). At runtime every request has a cost budget too.

The same walk serves both: over schema nodes it bounds the estimate, over the values of
an object it gives the cost the rule will really have, so a rule is refused *before* the
interpreter runs it. The simulator's interpreter (cel-python) is about four orders of
magnitude slower than cel-go, so its runtime budget (:data:`RUNTIME_BUDGET`) is far below
the real server's 10,000,000; one request can then never hold the event loop that serves
every simulated cluster of the process for more than about a second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from lark import Token, Tree

STATIC_COST_LIMIT = 10_000_000
"""Most a single rule's estimated cost may be (the real per-expression limit)."""

CRD_COST_LIMIT = 100_000_000
"""Most the rules of one schema may cost together, each weighted by how many times it can
run in one object (the real limit)."""

RUNTIME_BUDGET = 5_000
"""Cost all rules of one request may spend in the simulator's interpreter."""

MAX_REQUEST_BYTES = 3 * 1024 * 1024

_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_STRING_SCANS = {"contains", "startsWith", "endsWith", "matches", "indexOf", "lastIndexOf"}
_OPERATORS = {
    "relation_eq",
    "relation_ne",
    "relation_lt",
    "relation_le",
    "relation_gt",
    "relation_ge",
    "relation_in",
    "addition_add",
    "addition_sub",
    "multiplication_mul",
    "multiplication_div",
    "multiplication_mod",
    "unary_not",
    "unary_neg",
    "member_dot",
    "member_index",
    "ident",
    "literal",
}
_MIN_SIZE = {"string": 2, "integer": 1, "number": 1, "boolean": 4, "object": 2, "array": 2}


class _Shapes(ABC):
    """What the walk knows about a sub-expression: schema nodes or concrete values."""

    @abstractmethod
    def field(self, shape: Any, name: str) -> Any: ...

    @abstractmethod
    def element(self, shape: Any) -> Any: ...

    @abstractmethod
    def size(self, shape: Any) -> float: ...


class _SchemaShapes(_Shapes):
    """Shapes are schema nodes (``None``: unknown); sizes are the schema's worst case."""

    def field(self, shape: Any, name: str) -> Any:
        if not isinstance(shape, dict):
            return None
        properties = shape.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get(name), dict):
            return properties[name]
        extra = shape.get("additionalProperties")
        return extra if isinstance(extra, dict) else None

    def element(self, shape: Any) -> Any:
        if not isinstance(shape, dict):
            return None
        if shape.get("type") == "array":
            return shape.get("items") if isinstance(shape.get("items"), dict) else None
        if shape.get("type") == "object":
            return {"type": "string"}  # a macro over a map iterates its keys
        return None

    def size(self, shape: Any) -> float:
        if not isinstance(shape, dict):
            return MAX_REQUEST_BYTES / 2
        kind = shape.get("type")
        for bound in ("maxItems", "maxProperties", "maxLength"):
            if isinstance(shape.get(bound), int):
                return float(shape[bound])
        if kind == "array":
            items = shape.get("items") if isinstance(shape.get("items"), dict) else {}
            return MAX_REQUEST_BYTES / (_MIN_SIZE.get(str(items.get("type")), 2) + 1)
        if kind == "object":
            return MAX_REQUEST_BYTES / 4  # "k":0 with a comma is at least 4 bytes per entry
        return MAX_REQUEST_BYTES - 2


class _ValueShapes(_Shapes):
    """Shapes are lists of the values a sub-expression can take in one object; the size of
    a shape is the largest of them, an upper bound of the cost the interpreter will have."""

    def __init__(self, unknown_size: float) -> None:
        self.unknown_size = unknown_size

    def field(self, shape: Any, name: str) -> Any:
        if shape is None:
            return None
        return [value[name] for value in shape if isinstance(value, dict) and name in value]

    def element(self, shape: Any) -> Any:
        if shape is None:
            return None
        found: list[Any] = []
        for value in shape:
            if isinstance(value, list | dict):
                found.extend(value)  # a macro over a map iterates its keys
        return found

    def size(self, shape: Any) -> float:
        if shape is None:
            return self.unknown_size
        sizes = [len(v) for v in shape if isinstance(v, list | dict | str)]
        return float(max(sizes, default=0))


class _Walk:
    def __init__(self, shapes: _Shapes, root: Any) -> None:
        self.shapes = shapes
        self.root = root

    def cost(self, node: Any, scope: dict[str, Any]) -> float:
        if not isinstance(node, Tree):
            return 0.0
        if node.data == "member_dot_arg":
            return self._call(node, scope)
        own = 1.0 if node.data in _OPERATORS else 0.0
        if node.data in ("conditionalor", "conditionaland") and len(node.children) > 1:
            own = 1.0
        return own + sum(self.cost(child, scope) for child in node.children)

    def _call(self, node: Tree, scope: dict[str, Any]) -> float:
        target, method = node.children[0], str(node.children[1])
        args = _arguments(node)
        target_cost = self.cost(target, scope)
        if method in _MACROS and len(args) >= 2:
            variable = _identifier(args[0])
            shape = self.shape(target, scope)
            count = self.shapes.size(shape)
            inner = {**scope}
            if variable is not None:
                inner[variable] = self.shapes.element(shape)
            body = sum(self.cost(arg, inner) for arg in args[1:])
            return 1.0 + target_cost + count * (body + 1.0)
        own = 1.0
        if method in _STRING_SCANS:
            own += 0.1 * self.shapes.size(self.shape(target, scope))
        return own + target_cost + sum(self.cost(arg, scope) for arg in args)

    def shape(self, node: Any, scope: dict[str, Any]) -> Any:
        """The shape of ``node`` when it is a path from ``self`` or a macro variable."""
        while isinstance(node, Tree) and len(node.children) == 1 and node.data != "ident":
            node = node.children[0]
        if not isinstance(node, Tree):
            return None
        if node.data == "ident":
            name = str(node.children[0])
            if name == "self":
                return self.root
            return scope.get(name)
        if node.data == "member_dot":
            return self.shapes.field(self.shape(node.children[0], scope), str(node.children[1]))
        if node.data == "member_index":
            return self.shapes.element(self.shape(node.children[0], scope))
        if node.data == "member_dot_arg" and str(node.children[1]) == "filter":
            return self.shape(node.children[0], scope)
        return None


def _arguments(call: Tree) -> list[Any]:
    for child in call.children[2:]:
        if isinstance(child, Tree) and child.data == "exprlist":
            return list(child.children)
    return []


def _identifier(expr: Any) -> str | None:
    for token in _tokens(expr):
        return str(token)
    return None


def _tokens(node: Any) -> Iterator[Token]:
    if isinstance(node, Token):
        yield node
    elif isinstance(node, Tree):
        for child in node.children:
            yield from _tokens(child)


def estimated_cost(ast: Any, schema: dict[str, Any] | None) -> float:
    """The worst-case cost of a rule on the schema node it is declared on."""
    return _Walk(_SchemaShapes(), schema).cost(ast, {})


def repetitions(schema: dict[str, Any], key: str) -> float:
    """How many times the schema under ``key`` (``items`` or ``additionalProperties``) of
    ``schema`` can occur in one object."""
    return _SchemaShapes().size(schema) if key in ("items", "additionalProperties") else 1.0


def total_over_budget_message(cost: float, limit: float) -> str:
    """The real server's words when the rules of a schema together exceed the budget."""
    return (
        "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema "
        f"exceeds budget by factor of {cost / limit:.1f}x (try simplifying the rule, or "
        "adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are "
        "declared)"
    )


def actual_cost(ast: Any, value: Any) -> float:
    """The cost the rule will have on ``value`` (an upper bound, known before running it)."""
    return _Walk(_ValueShapes(float(_count(value))), [value]).cost(ast, {})


def _count(value: Any) -> int:
    """Every node of ``value``: the largest collection an unknown expression can build."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        total += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            total += len(item)
    return total


def over_budget_message(cost: float, limit: float) -> str:
    """The real server's words for a rule whose estimate exceeds the budget."""
    return (
        f"estimated rule cost exceeds budget by factor of {cost / limit:.1f}x (try simplifying "
        "the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and "
        "strings are declared)"
    )
