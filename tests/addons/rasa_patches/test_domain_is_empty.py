"""addons.rasa_patches.domain_is_empty: Rasa's answer, computed once per domain."""

from __future__ import annotations

from rasa.shared.core.domain import Domain

from clinic.settings import PROJECT_DIR
from tests.addons.rasa_patches.helpers import original


def test_a_domain_is_empty_exactly_when_rasa_says_so(patched: None) -> None:
    domains = (Domain.empty(), Domain.load(str(PROJECT_DIR / "domain.yml")), Domain.from_dict({"intents": ["greet"]}))
    for domain in domains:
        assert domain.is_empty() == original(domain.is_empty) == domain.is_empty()
    assert Domain.empty().is_empty() and not Domain.from_dict({"intents": ["greet"]}).is_empty()
