"""addons.rasa_patches.domain_is_empty: Rasa's answer, computed once per domain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rasa.shared.core.domain import Domain

from clinic.settings import PROJECT_DIR
from tests.addons.rasa_patches.helpers import original


@pytest.mark.parametrize(
    "make",
    [
        Domain.empty,
        lambda: Domain.load(str(PROJECT_DIR / "domain.yml")),
        lambda: Domain.from_dict({"intents": ["greet"]}),
    ],
    ids=["empty", "the clinic's", "one intent"],
)
def test_a_domain_is_empty_exactly_when_rasa_says_so(patched: None, make: Callable[[], Domain]) -> None:
    domain = make()

    assert domain.is_empty() == original(domain.is_empty) == domain.is_empty()


def test_only_the_empty_domain_is_empty(patched: None) -> None:
    assert Domain.empty().is_empty() and not Domain.from_dict({"intents": ["greet"]}).is_empty()
