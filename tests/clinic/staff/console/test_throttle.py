"""Sign-in throttling: per address, per account and address, and a lock-out no single address can cause."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import ip_network

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.staff import audit
from clinic.staff.accounts import MAX_FAILED_LOGINS, StaffMember
from clinic.staff.console.addresses import forwarded_client, throttle_key
from clinic.staff.console.app import create_app
from clinic.staff.console.throttle import ADDRESS_FAILURES, PAIR_FAILURES, WINDOW
from tests.clinic.staff.console.conftest import Browser, Clock

ATTACKER = "203.0.113.66"
CLINIC = "198.51.100.7"
WRONG = "not the password"


@pytest.fixture
def from_address(app: Starlette) -> Callable[..., Browser]:
    """``from_address("203.0.113.66")``: a browser whose connections come from that address."""
    clients: list[TestClient] = []

    def make(address: str, *, on: Starlette | None = None, **headers: str) -> Browser:
        client = TestClient(on or app, base_url="https://testserver", client=(address, 50000), headers=headers)
        clients.append(client)
        return Browser(client)

    yield make
    for client in clients:
        client.close()


def _error_text(html: str) -> str:
    return re.search(r'id="login-error">([^<]*)<', html).group(1)


def test_one_address_cannot_lock_out_other_accounts(
    from_address: Callable[..., Browser], staff_user: StaffMember, admin_user: StaffMember, clock: Clock
) -> None:
    attacker = from_address(ATTACKER)
    for _ in range(6):  # an hour and a half of trying, at the throttle's pace
        for username in ("sam", "ada"):
            for _ in range(PAIR_FAILURES + 2):
                attacker.login(username, WRONG)
        clock.advance(seconds=WINDOW.total_seconds() + 1)

    assert from_address(CLINIC).login("sam").status_code == 303
    assert from_address("198.51.100.8").login("ada").status_code == 303


def test_too_many_failures_from_one_address_get_429_with_retry_after(
    from_address: Callable[..., Browser], staff_user: StaffMember, clock: Clock, db: str
) -> None:
    attacker = from_address(ATTACKER)
    for attempt in range(ADDRESS_FAILURES):
        assert attacker.login(f"user{attempt}", WRONG).status_code == 200

    refused = attacker.login("sam")

    assert refused.status_code == 429 and "console_session" not in refused.cookies
    assert 0 < int(refused.headers["retry-after"]) <= WINDOW.total_seconds()
    assert "Too many failed sign-ins from your network. Wait 15 min" in _error_text(refused.text)
    assert from_address(CLINIC).login("sam").status_code == 303  # another address is not affected
    details = [e.detail for e in audit.list_events(db, action="login_failed")]
    assert len(details) == ADDRESS_FAILURES and "the address now waits 900 s" in details[0]  # newest first
    clock.advance(seconds=int(refused.headers["retry-after"]))
    assert attacker.login("sam").status_code == 303


def test_a_refused_attempt_is_not_even_checked(
    from_address: Callable[..., Browser], staff_user: StaffMember, clock: Clock, db: str
) -> None:
    attacker = from_address(ATTACKER)
    for _ in range(PAIR_FAILURES):
        attacker.login("sam", WRONG)

    for _ in range(20):
        assert attacker.login("sam").status_code == 429

    assert len(audit.list_events(db, action="login_failed")) == PAIR_FAILURES  # refusals write nothing


def test_failures_for_one_account_make_only_that_address_wait_for_it(
    from_address: Callable[..., Browser], staff_user: StaffMember, admin_user: StaffMember, clock: Clock
) -> None:
    typo_prone = from_address(CLINIC)
    for _ in range(PAIR_FAILURES):
        assert typo_prone.login("sam", WRONG).status_code == 200

    refused = typo_prone.login("sam")

    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert "with this username from your network" in _error_text(refused.text)
    assert from_address(CLINIC).login("ada").status_code == 303
    assert from_address("192.0.2.10").login("sam").status_code == 303


def test_failures_from_many_addresses_lock_the_account_for_everyone(
    from_address: Callable[..., Browser], staff_user: StaffMember, clock: Clock, db: str
) -> None:
    for n in range(MAX_FAILED_LOGINS):
        assert from_address(f"203.0.113.{n + 1}").login("sam", WRONG).status_code == 200

    locked = from_address(CLINIC).login("sam")

    assert locked.status_code == 200 and "console_session" not in locked.cookies
    assert _error_text(locked.text) == _error_text(from_address(CLINIC).login("nobody", WRONG).text)
    details = [e.detail for e in audit.list_events(db, action="login_failed")]
    assert any("locked now" in d for d in details) and any(d.startswith("locked;") for d in details)


def test_an_address_counts_once_toward_the_lock_out(
    from_address: Callable[..., Browser], staff_user: StaffMember, clock: Clock
) -> None:
    for n in range(MAX_FAILED_LOGINS - 1):
        address = f"203.0.113.{n + 1}"
        for _ in range(PAIR_FAILURES):
            from_address(address).login("sam", WRONG)

    assert from_address(CLINIC).login("sam").status_code == 303


@contextmanager
def _behind_proxy(app_args: dict, peer: str, forwarded: str) -> Iterator[Browser]:
    app = create_app(**app_args, trusted_proxies=[ip_network("10.0.0.0/8")])
    with TestClient(app, base_url="https://testserver", client=(peer, 443),
                    headers={"X-Forwarded-For": forwarded}) as client:
        yield Browser(client)


@pytest.fixture
def app_args(db: str, hasher: object, fake: object) -> dict:
    return {"database_url": db, "password_hasher": hasher}


def test_the_client_behind_a_trusted_proxy_is_the_one_it_names(
    app_args: dict, staff_user: StaffMember, db: str
) -> None:
    with _behind_proxy(app_args, "10.0.0.2", "192.0.2.99, 203.0.113.50") as browser:
        browser.login("sam", WRONG)

    [event] = audit.list_events(db, action="login_failed")
    assert event.detail.endswith("from 203.0.113.50")  # not the proxy, nor what the client wrote itself


def test_forwarded_for_from_anyone_else_is_ignored(
    from_address: Callable[..., Browser], app_args: dict, staff_user: StaffMember, clock: Clock
) -> None:
    app = create_app(**app_args, trusted_proxies=[ip_network("10.0.0.0/8")])
    for n in range(ADDRESS_FAILURES):
        from_address(ATTACKER, on=app, **{"X-Forwarded-For": f"192.0.2.{n}"}).login(f"user{n}", WRONG)

    refused = from_address(ATTACKER, on=app, **{"X-Forwarded-For": "192.0.2.200"}).login("sam")

    assert refused.status_code == 429


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", ["1.2.3.4"], "203.0.113.5"),  # not a proxy: its header is ignored
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["1.2.3.4, 198.51.100.9"], "198.51.100.9"),
        ("10.0.0.2", ["1.2.3.4", "198.51.100.9, 10.0.0.3"], "198.51.100.9"),  # two proxies, two headers
        ("10.0.0.2", ["not an address, 10.0.0.3"], "10.0.0.3"),
        ("10.0.0.2", ["garbage"], "10.0.0.2"),
        ("::ffff:10.0.0.2", ["2001:db8::1"], "2001:db8::1"),
    ],
)
def test_forwarded_client(peer: str, forwarded: list[str], client: str) -> None:
    assert forwarded_client(peer, forwarded, [ip_network("10.0.0.0/8")]) == client


def test_ipv6_addresses_are_counted_by_their_64_network() -> None:
    assert throttle_key("2001:db8:1:2::5") == throttle_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::5") != throttle_key("2001:db8:1:2::5")
    assert throttle_key("203.0.113.5") == "203.0.113.5"
