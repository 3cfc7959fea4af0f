"""Fixtures of the model tests: the talk's Application and helpers to build variants."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def stream1_text() -> str:
    return (EXAMPLES / "stream1.yaml").read_text()


def stream1_data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(stream1_text()))


@pytest.fixture
def stream1() -> dict[str, Any]:
    return stream1_data()
