"""Labels and annotations on everything Milkyway renders.

``app.kubernetes.io/*`` for generic tooling, ``milkyway.ebay.com/*`` for the operator:
selectors use only labels that never change for the life of a zone (application,
component, zone), so a version or profile change never orphans pods.
"""

from __future__ import annotations

import re

from milkyway.model.base import GROUP

APPLICATION = f"{GROUP}/application"
COMPONENT = f"{GROUP}/component"
ZONE = f"{GROUP}/zone"
REGION = f"{GROUP}/region"
MEMBER = f"{GROUP}/member"
CONFIG_HASH = f"{GROUP}/config-hash"
MANAGED_BY = "milkyway"
VERSION_LABEL = "app.kubernetes.io/version"

_INVALID = re.compile(r"[^A-Za-z0-9._-]")


def label_value(value: str) -> str:
    """``value`` made a valid label value (invalid characters become ``_``, 63 characters)."""
    cleaned = _INVALID.sub("_", value)[:63]
    return cleaned.strip("._-")


def selector_labels(application: str, component: str, zone: str) -> dict[str, str]:
    return {APPLICATION: application, COMPONENT: component, ZONE: zone}


def common_labels(
    application: str, component: str, zone: str, region: str, type_name: str, version: str
) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": type_name,
        "app.kubernetes.io/instance": f"{application}-{component}",
        VERSION_LABEL: label_value(version),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": application,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        APPLICATION: application,
        COMPONENT: component,
        ZONE: zone,
        REGION: label_value(region),
    }
