"""pytest.ini: warnings are errors in the project's code, third-party deprecations are ignored."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.parametrize("category", [DeprecationWarning, UserWarning, PendingDeprecationWarning, RuntimeWarning])
@pytest.mark.parametrize("module", ["clinic.profile", "actions.safety", "addons.clinic_nlg", "tests.test_x"])
def test_a_warning_from_the_project_is_an_error(module: str, category: type[Warning]) -> None:
    with pytest.raises(category):
        warnings.warn_explicit("deprecated call", category, filename=f"{module}.py", lineno=1, module=module)


@pytest.mark.parametrize("category", [DeprecationWarning, UserWarning, PendingDeprecationWarning])
@pytest.mark.parametrize("module", ["rasa.core.agent", "tensorflow", "sqlalchemy.orm", "sanic.app", "clinical_lib"])
def test_a_third_party_deprecation_is_ignored(module: str, category: type[Warning]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("deprecated call", category, filename=f"{module}.py", lineno=1, module=module)

    assert caught == []


def test_sanic_cannot_override_the_policy() -> None:
    import sanic  # noqa: F401 - already imported by tests/conftest.py, so this changes nothing

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("deprecated call", DeprecationWarning, filename="clinic/x.py", lineno=1,
                               module="clinic.x")
