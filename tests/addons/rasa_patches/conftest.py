"""Fixtures of the Rasa patch tests (``tests/conftest.py`` removes the patches after each test)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from addons import rasa_patches


@pytest.fixture
def patched() -> None:
    """Every patch but the server-only ones, as a bare ``ClinicNLG()`` installs them."""
    rasa_patches.install(server=False)


@pytest.fixture(scope="package")
def agent() -> Any:
    """The trained clinic model (``make pytest`` sets CLINIC_MODEL), with an in-memory store."""
    from rasa.core.agent import load_agent

    path = os.environ.get("CLINIC_MODEL")
    if not path:
        pytest.fail("CLINIC_MODEL is not set to a trained model; run the suite with `make pytest`")
    return asyncio.run(load_agent(model_path=path))
