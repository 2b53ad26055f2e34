"""Fixtures of the notifier tests: a clean environment and a sample alert."""

from __future__ import annotations

import pytest

from clinic.staff.notifiers import StaffAlert
from tests.clinic.staff.notifiers.servers import clear_notifier_environment


@pytest.fixture(autouse=True)
def _no_notifier_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_notifier_environment(monkeypatch)


@pytest.fixture
def alert() -> StaffAlert:
    """An urgent alert for escalation 12 (a crisis over SMS)."""
    return StaffAlert(
        escalation_id=12, event="opened", urgent=True, reason="crisis", channel="twilio",
        console_link="https://console.clinic.test/escalations/12",
    )
