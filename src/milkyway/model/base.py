"""Shared building blocks of every Milkyway resource model.

All resources are plain pydantic v2 models. Field names are snake_case in Python and
camelCase on the wire (as Kubernetes does), unknown fields are rejected (a typo must not
silently become a default), and attribute docstrings become the CRD field descriptions
that ``kubectl explain`` shows.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "milkyway.ebay.com"
VERSION = "v1"
API_VERSION: Final = "milkyway.ebay.com/v1"
"""``GROUP/VERSION``, spelled out so that it types as the literal the models declare."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*$"
IMAGE_PATTERN = r"^[^\s]+$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"


class Model(BaseModel):
    """Base of every spec/status model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        validate_default=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The resource as the API server stores it: camelCase, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


DnsLabel = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN),
]
"""A lower-case RFC 1123 label: the form of every name that ends up in a Kubernetes name."""

VersionString = Annotated[str, Field(min_length=1, max_length=63, pattern=VERSION_PATTERN)]
"""A version as written by users (``3.4.7``); always text, never a YAML number."""

Image = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)]
"""A container image reference."""


def _number_to_quantity(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_number_to_quantity),
    Field(pattern=QUANTITY_PATTERN),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
"""A Kubernetes resource quantity (``500m``, ``2Gi``, ``1``); bare numbers are accepted."""


def _scalar_map(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if item is None or isinstance(item, dict | list):
            raise ValueError(
                f"param {key!r} must be a string, number or boolean, not {type(item).__name__}"
            )
    return value


ParamMap = Annotated[
    dict[str, Any],
    AfterValidator(_scalar_map),
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""Free-form configuration parameters: names to scalar values (string, number, boolean)."""

LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class ObjectMeta(BaseModel):
    """The part of Kubernetes ``metadata`` Milkyway reads; server-filled extras are ignored."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    name: DnsLabel
    namespace: DnsLabel | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[dict[str, Any]] = Field(default_factory=list)
    """Objects this one belongs to: it is garbage-collected once they are deleted (a
    FlowRun belongs to the Application it changes)."""
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None

    def to_wire(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {key: value for key, value in data.items() if value not in ({}, [])}


class Condition(Model):
    """A Kubernetes-style condition: the latest observation of one aspect of the resource."""

    type: str
    """CamelCase condition type, e.g. ``Ready`` or ``Progressing``."""
    status: str = Field(default="Unknown", pattern="^(True|False|Unknown)$")
    """``True``, ``False`` or ``Unknown``."""
    reason: str | None = None
    """Machine-readable CamelCase reason of the last transition."""
    message: str | None = None
    """Human-readable detail."""
    last_transition_time: str | None = None
    """RFC 3339 time of the last status change."""
    observed_generation: int | None = None
    """The ``metadata.generation`` this condition was computed from."""
