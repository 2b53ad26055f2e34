"""Fixtures for the deployment files' tests: the tools that check them (nginx, systemd-analyze).

A missing tool skips its tests with the command that installs it, except under ``CI=true``,
where it fails them instead (CI must check every shipped file).
"""

from __future__ import annotations

import pytest

from clinic import nginx
from tests.conftest import running_in_ci


def require_tool(found: str | None, what: str, install: str) -> str:
    """``found`` (a tool's path), or skip (fail under ``CI=true``) saying how to install ``what``."""
    if found:
        return found
    message = f"{what} is not installed ({install})"
    if running_in_ci():
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(f"{message}; required under CI=true")


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Debian's nginx (``make nginx`` installs it)."""
    return require_tool(nginx.find_binary(), "nginx", "`make nginx` or `sudo apt-get install nginx`")
