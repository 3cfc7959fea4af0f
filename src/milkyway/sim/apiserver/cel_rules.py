"""``x-kubernetes-validations`` rules: CEL expressions over ``self`` (and ``oldSelf``).

Rules are compiled once when the CRD is accepted (a rule that does not compile makes
the CRD invalid, as on a real server) and evaluated per object with ``cel-python``.
A rule that mentions ``oldSelf`` is a transition rule and only runs on updates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

from milkyway.sim.apiserver import fielderrors as fe
from milkyway.sim.apiserver.cel_cost import (
    STATIC_COST_LIMIT,
    actual_cost,
    estimated_cost,
    over_budget_message,
)
from milkyway.sim.apiserver.errors import Cause
from milkyway.sim.apiserver.json_values import schema_type

_ENV = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")
_REASONS = {
    fe.INVALID: "Invalid value",
    fe.FORBIDDEN: "Forbidden",
    fe.REQUIRED: "Required value",
    fe.DUPLICATE: "Duplicate value",
}


@dataclass(frozen=True)
class CelRule:
    rule: str
    message: str
    reason: str
    field_path: str
    uses_old_self: bool
    program: Any
    message_program: Any
    ast: Any = None
    estimate: float = 0.0
    """The worst-case cost on the schema node the rule is declared on."""

    def cost(self, value: Any) -> float:
        """What evaluating the rule on ``value`` costs, computed without evaluating it."""
        return actual_cost(self.ast, value) if self.ast is not None else 1.0

    def evaluate(self, value: Any, old: Any, field: str) -> Cause | None:
        """The cause when the rule fails for ``value`` at ``field``, else ``None``."""
        type_name = schema_type(value)
        where = _join(field, self.field_path)
        try:
            activation = {"self": celpy.json_to_cel(value)}
            if self.uses_old_self:
                activation["oldSelf"] = celpy.json_to_cel(old)
            result = self.program.evaluate(activation)
        except (celpy.CELEvalError, TypeError, ValueError, KeyError) as err:
            return fe.invalid(where, type_name, f"{_eval_error(err)} evaluating rule: {self.rule}")
        if isinstance(result, celpy.CELEvalError):
            return fe.invalid(
                where, type_name, f"{_eval_error(result)} evaluating rule: {self.rule}"
            )
        if isinstance(result, celtypes.BoolType):
            result = bool(result)
        if not isinstance(result, bool):
            return fe.invalid(where, type_name, f"rule did not evaluate to a bool: {self.rule}")
        if result:
            return None
        return Cause(self.reason, self._body(type_name, activation), where)

    def _body(self, type_name: str, activation: dict[str, Any]) -> str:
        message = self.message or f"failed rule: {self.rule}"
        if self.message_program is not None:
            try:
                computed = self.message_program.evaluate(activation)
            except (celpy.CELEvalError, TypeError, ValueError, KeyError):
                computed = None
            if isinstance(computed, str) and computed.strip():
                message = str(computed)
        label = _REASONS.get(self.reason, "Invalid value")
        if self.reason in (fe.FORBIDDEN, fe.REQUIRED):
            return f"{label}: {message}"
        return f"{label}: {fe.show_value(type_name)}: {message}"


class RuleTooCostly(ValueError):
    """A rule's estimated cost exceeds the per-expression budget (a Forbidden cause)."""


def compile_rule(rule: Any, path: str, schema: dict[str, Any] | None = None) -> CelRule:
    """Compile one ``x-kubernetes-validations`` entry; ``ValueError`` names what is wrong.

    ``schema``: the node the rule is declared on; its bounds (``maxItems``…) bound the
    rule's estimated cost, and :class:`RuleTooCostly` refuses a rule over the budget."""
    if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str) or not rule["rule"]:
        raise ValueError(f"{path}.rule must be a non-empty CEL expression")
    text = rule["rule"]
    reason = rule.get("reason") or fe.INVALID
    if reason not in _REASONS:
        raise ValueError(f"reason must be one of {', '.join(sorted(_REASONS))}, not {reason!r}")
    try:
        ast = _ENV.compile(text)
        program = _ENV.program(ast)
    except Exception as err:  # cel-python raises several unrelated parse error types
        raise ValueError(f"compilation failed: {err}".strip()) from err
    estimate = estimated_cost(ast, schema)
    if estimate > STATIC_COST_LIMIT:
        raise RuleTooCostly(over_budget_message(estimate, STATIC_COST_LIMIT))
    message_program = None
    if isinstance(rule.get("messageExpression"), str) and rule["messageExpression"]:
        try:
            message_program = _ENV.program(_ENV.compile(rule["messageExpression"]))
        except Exception as err:  # same as above, for the message expression
            raise ValueError(f"messageExpression compilation failed: {err}".strip()) from err
    return CelRule(
        rule=text,
        message=str(rule.get("message") or ""),
        reason=reason,
        field_path=str(rule.get("fieldPath") or ""),
        uses_old_self=bool(_OLD_SELF.search(text)),
        program=program,
        message_program=message_program,
        ast=ast,
        estimate=estimate,
    )


def _join(field: str, relative: str) -> str:
    """Append a rule's ``fieldPath`` (``.spec.x`` or ``['key']``) to the node's path."""
    if not relative:
        return field
    if relative.startswith("."):
        return f"{field}{relative}" if field else relative[1:]
    return f"{field}{relative}"


def _eval_error(err: Any) -> str:
    args = getattr(err, "args", ())
    return str(args[0]) if args else str(err)
