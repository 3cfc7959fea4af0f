"""The ``generate`` field of an agent secret: defaults, and refusals naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from milkyway.model.agent_spec import AgentSecret

BASE = {"name": "auth", "path": "/etc/auth", "reloadAction": "reload"}


def test_defaults_are_a_32_character_alphanumeric_password() -> None:
    secret = AgentSecret.model_validate({**BASE, "generate": {}})
    assert secret.generate is not None
    assert (secret.generate.key, secret.generate.length, secret.generate.alphabet) == (
        "password",
        32,
        "alphanumeric",
    )
    assert AgentSecret.model_validate(BASE).generate is None


@pytest.mark.parametrize(
    ("generate", "named"),
    [
        ({"length": 8}, "length"),
        ({"length": 4096}, "length"),
        ({"alphabet": "emoji"}, "alphabet"),
        ({"key": "password.previous"}, "'.previous'"),
        ({"key": "../etc/passwd"}, "key"),
        ({"bytes": 12}, "bytes"),
    ],
)
def test_bad_generators_are_refused_naming_the_field(generate: dict, named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AgentSecret.model_validate({**BASE, "generate": generate})
    assert named in str(refused.value)
