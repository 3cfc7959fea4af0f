"""Static tokens: parsing, lookup, and what happens when the Secret cannot be read."""

from __future__ import annotations

import pytest

from milkyway.server.authn import AuthUnavailable
from milkyway.server.authn.static_tokens import StaticTokens, parse_tokens
from milkyway.server.identity import Identity


def test_parse_tokens_rejects_a_line_without_a_user() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_tokens('t1,alice,alice,"a,b"\nt2\n')


async def test_tokens_survive_a_failed_refresh_and_unknown_tokens_do_not_match() -> None:
    answers: list[str | Exception] = ['t1,alice,alice,"team-a,ops"', AuthUnavailable("down")]

    async def load() -> str:
        answer = answers.pop(0) if answers else AuthUnavailable("down")
        if isinstance(answer, Exception):
            raise answer
        return answer

    tokens = StaticTokens(load, refresh_seconds=0)
    assert await tokens.authenticate_token("t1") == Identity(
        "alice", ("team-a", "ops"), "static-token"
    )
    assert await tokens.authenticate_token("t1") is not None  # the failed refresh kept them
    assert await tokens.authenticate_token("t2") is None


async def test_no_tokens_and_an_unreadable_secret_is_unavailable() -> None:
    async def load() -> str:
        raise AuthUnavailable("forbidden")

    with pytest.raises(AuthUnavailable, match="static tokens: forbidden"):
        await StaticTokens(load).authenticate_token("t1")
