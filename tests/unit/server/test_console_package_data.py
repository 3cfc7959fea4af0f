"""Every file of the web console is package data, so a wheel install serves it: a file
type the package-data globs in pyproject.toml do not name would be left out of the wheel
and the console would break only once installed."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from milkyway.server.console_files import CONSOLE_DIR

ROOT = Path(__file__).parents[3]


def _matches(path: str, glob: str) -> bool:
    """As setuptools globs package data: ``*`` stays within one directory."""
    parts, pattern = path.split("/"), glob.split("/")
    return len(parts) == len(pattern) and all(map(fnmatch.fnmatchcase, parts, pattern))


def test_every_console_file_is_declared_package_data() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    globs = package_data["milkyway.server"]
    base = CONSOLE_DIR.parent
    files = [p.relative_to(base).as_posix() for p in CONSOLE_DIR.rglob("*") if p.is_file()]
    assert "console/index.html" in files
    missing = [f for f in files if not any(_matches(f, g) for g in globs)]
    assert missing == [], f"add globs for {missing} to [tool.setuptools.package-data]"


def test_the_page_loads_only_its_own_modules() -> None:
    """No CDN: every script and stylesheet the console names is one of its own files."""
    for path in (CONSOLE_DIR / "index.html", CONSOLE_DIR / "console.css"):
        assert "://" not in path.read_text(), f"{path.name} names another site"
    for path in CONSOLE_DIR.rglob("*.js"):
        for line in path.read_text().splitlines():
            if line.startswith("import "):
                target = line.rsplit(" from ", 1)[-1].strip('";')
                assert target.startswith("."), f"{path.name}: {line}"
                assert (path.parent / target).resolve().is_file(), f"{path.name}: {line}"
