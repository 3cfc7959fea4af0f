"""The ``generate`` field of an agent secret: defaults, and refusals naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from milkyway.model.agent_spec import AgentSecret, AgentSpec

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


def test_the_documented_declaration_is_valid() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "agent.md").read_text()
    section = doc.split("## Generated Secrets and their rotation", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = AgentSpec.model_validate(yaml.safe_load(block)["spec"]["agent"])
    (secret,) = spec.secrets
    assert secret.generate is not None and secret.reload_action == "reload-auth"
