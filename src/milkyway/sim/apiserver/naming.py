"""The syntax rules Kubernetes applies to names, label keys and values.

Each check returns a list of problem descriptions (empty when valid), worded like the
Kubernetes apimachinery validators so the ``Invalid`` causes read the same as a real
server's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = rf"{_LABEL_FMT}(\.{_LABEL_FMT})*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_LABEL_RE = re.compile(f"^{_LABEL_FMT}$")
_SUBDOMAIN_RE = re.compile(f"^{_SUBDOMAIN_FMT}$")
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")

LABEL_MAX = 63
SUBDOMAIN_MAX = 253


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{fmt}')"


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label(value: str) -> list[str]:
    problems = [_too_long(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _LABEL_RE.match(value):
        problems.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
                _LABEL_FMT,
                "my-name",
                "123-abc",
            )
        )
    return problems


def dns1123_subdomain(value: str) -> list[str]:
    problems = [_too_long(SUBDOMAIN_MAX)] if len(value) > SUBDOMAIN_MAX else []
    if not _SUBDOMAIN_RE.match(value):
        problems.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return problems


def dns1035_label(value: str) -> list[str]:
    problems = [_too_long(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _DNS1035_RE.match(value):
        problems.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035_FMT,
                "my-name",
                "abc-123",
            )
        )
    return problems


def path_segment_name(value: str) -> list[str]:
    """Names that only need to be usable as one URL path segment (RBAC objects)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in value]


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: ``[prefix/]name`` with a DNS-subdomain prefix."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        problems: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            problems = ["prefix part must be non-empty"]
        else:
            problems = [f"prefix part {p}" for p in dns1123_subdomain(prefix)]
    else:
        return [
            _regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _QUALIFIED_NAME_FMT,
                "MyName",
                "my.name",
                "123-abc",
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        problems.append("name part must be non-empty")
        return problems
    if len(name) > LABEL_MAX:
        problems.append(f"name part {_too_long(LABEL_MAX)}")
    if not _QUALIFIED_NAME_RE.match(name):
        problems.append(
            _regex_error(
                "name part must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _QUALIFIED_NAME_FMT,
                "MyName",
                "my.name",
                "123-abc",
            )
        )
    return problems


def label_value(value: str) -> list[str]:
    problems = [_too_long(LABEL_MAX)] if len(value) > LABEL_MAX else []
    if not _LABEL_VALUE_RE.match(value):
        problems.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return problems


def config_key(value: str) -> list[str]:
    """A key of ``ConfigMap``/``Secret`` data: usable as a file name."""
    problems = [_too_long(SUBDOMAIN_MAX)] if len(value) > SUBDOMAIN_MAX else []
    if not _CONFIG_KEY_RE.match(value):
        problems.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    elif value in (".", ".."):
        problems.append(f"must not be '{value}'")
    elif value.startswith(".."):
        problems.append("must not start with '..'")
    return problems


NameCheck = Callable[[str], list[str]]
