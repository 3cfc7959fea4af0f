"""The demo's front door, in parts that need no cluster: a taken port is refused before
anything starts, the bindings and the directory's people say what the docs say."""

from __future__ import annotations

import socket

import pytest

from milkyway.cli.demo_directory import PEOPLE, seed_ldif
from milkyway.cli.demo_server import DEMO_BINDINGS, DEMO_USERS, DemoApiError, _check_free, binding


def test_a_taken_port_is_refused_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DemoApiError, match=rf"--api-port {port}: .* is taken"):
            _check_free(port)


def test_each_demo_person_is_in_the_group_the_bindings_name() -> None:
    passwords = {u.uid: f"pw-{u.uid}" for u in DEMO_USERS}
    ldif = seed_ldif(DEMO_USERS, passwords, "reader-pw")
    bound = {group for _, _, group in DEMO_BINDINGS}
    for user in DEMO_USERS:
        assert f"dn: uid={user.uid},{PEOPLE}" in ldif
        assert f"member: uid={user.uid},{PEOPLE}" in ldif
        assert user.group in bound
    assert binding("", "milkyway-auditor", "demo-admins")["kind"] == "ClusterRoleBinding"
    namespaced = binding("milkyway", "milkyway-viewer", "demo-viewers")
    assert namespaced["kind"] == "RoleBinding"
    assert namespaced["metadata"]["namespace"] == "milkyway"
