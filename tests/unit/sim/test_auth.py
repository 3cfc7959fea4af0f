"""Bearer tokens from a kube-apiserver style token file."""

from __future__ import annotations

import pytest

from milkyway.sim.apiserver.auth import (
    AUTHENTICATED_GROUP,
    TokenAuthenticator,
    parse_token_file,
    render_token_file,
)


def test_token_file_round_trip_and_authentication() -> None:
    users = parse_token_file('t-admin,admin,u1,"system:masters"\n# comment\nt-bob,bob,u2\n')
    assert users["t-admin"].groups == ("system:masters", AUTHENTICATED_GROUP)
    assert users["t-bob"].name == "bob" and users["t-bob"].groups == (AUTHENTICATED_GROUP,)
    assert parse_token_file(render_token_file(users)) == users
    auth = TokenAuthenticator(users)
    assert auth.authenticate("Bearer t-bob") == users["t-bob"]
    assert auth.authenticate("Bearer unknown") is None
    assert auth.authenticate("Basic dDpw") is None
    assert auth.authenticate(None) is None


def test_malformed_token_line_names_the_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_token_file("t,admin\nlonely\n")
