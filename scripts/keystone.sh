#!/usr/bin/env bash
# Installs OpenStack Keystone (the identity service the server signs users in against) into
# a virtual environment of its own, so its ~100 dependencies never meet Milkyway's.
# The first run takes about three minutes; later runs find the stamp and return at once.
# Usage: scripts/keystone.sh [VENV]   (default: $MILKYWAY_KEYSTONE_VENV or ~/.cache/milkyway/keystone)
set -euo pipefail
VENV=${1:-${MILKYWAY_KEYSTONE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/milkyway/keystone}}
PYTHON=${PYTHON:-python3}
KEYSTONE_VERSION=30.0.0
PYTHON_LDAP_VERSION=3.4.8
LDAPPOOL_VERSION=3.0.0
stamp="$VENV/.keystone-$KEYSTONE_VERSION-ldap"
if [ -f "$stamp" ]; then
  echo "$VENV"
  exit 0
fi
# python-ldap (Keystone's LDAP identity driver) builds against these headers.
for pkg in libldap2-dev libsasl2-dev; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "keystone.sh: missing Debian package $pkg (apt-get install -y libldap2-dev libsasl2-dev)" >&2
    exit 1
  fi
done
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
"$VENV/bin/python" -m pip install -q "keystone==$KEYSTONE_VERSION" "python-ldap==$PYTHON_LDAP_VERSION" \
  "ldappool==$LDAPPOOL_VERSION" >&2
"$VENV/bin/python" -c "import keystone.server.wsgi, ldap, ldappool" >&2
touch "$stamp"
echo "$VENV"
