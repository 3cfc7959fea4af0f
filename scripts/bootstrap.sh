#!/usr/bin/env bash
# Creates .venv and installs everything Milkyway needs on a fresh Debian machine:
# the Debian packages the tests and demo use, then the Python dependencies pinned in
# pyproject.toml and requirements.lock. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEBIAN_PACKAGES=(${MILKYWAY_DEBIAN_PACKAGES:-sqlite3 procps zookeeper etcd-server gcc util-linux slapd ldap-utils postgresql libldap2-dev libsasl2-dev chromium})

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "bootstrap: missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.milkyway-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -vE "^WARNING: Location|BuildBackendWarning|^ *$" || true
  "$VENV/bin/python" -m pip install -q -c requirements.lock -e '.[dev]' 2>&1 | grep -vE "^WARNING: Location|BuildBackendWarning|^ *$" || true
  "$VENV/bin/python" -c "import milkyway, lightkube, kubernetes_validate, pytest" \
    || { echo "bootstrap: Python dependencies failed to install" >&2; exit 1; }
  touch "$stamp"
fi
