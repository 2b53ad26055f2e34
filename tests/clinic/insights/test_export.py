"""Closing the loop: a marked message exported as Rasa NLU YAML passes `rasa data validate`; the
CSV export holds numbers only; the command line creates a manager and runs both exports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from clinic import cli
from clinic.insights.export import report_csv
from clinic.insights.labels import LabelError, export_nlu, mark
from clinic.insights.period import Period
from clinic.insights.report import build_report
from clinic.profile import ClinicProfile
from clinic.settings import PROJECT_DIR
from clinic.staff.accounts import list_users
from tests.clinic.insights import scenario

RASA = Path(sys.executable).with_name("rasa")


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CLINIC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRACKER_STORE_URL", sqlite_url)
    scenario.write_tracker(sqlite_url)
    scenario.write_clinic(sqlite_url)
    return sqlite_url


def _event_id(db: str, text: str) -> int:
    import sqlalchemy as sa

    from clinic.db import get_engine

    with get_engine(db).connect() as connection:
        return connection.execute(sa.text("SELECT id FROM events WHERE type_name = 'user' AND data LIKE :t"),
                                  {"t": f'%"text": "{text}"%'}).scalar_one()


def test_a_marked_message_round_trips_through_rasa_data_validate(db: str, tmp_path: Path) -> None:
    mark(_event_id(db, "does it help with migraines"), "faq_conditions_treated", "ada", database_url=db,
         tracker_url=db)
    mark(_event_id(db, "can my dog come to the appointment"), "faq_clinic_info", "ada", database_url=db,
         tracker_url=db)
    document, count = export_nlu(database_url=db, tracker_url=db)
    assert count == 2 and document.startswith('version: "3.1"\nnlu:\n')
    examples = {m.get("intent"): m.get("text") for m in RasaYAMLReader().reads(document).intent_examples}
    assert examples == {"faq_conditions_treated": "does it help with migraines",
                        "faq_clinic_info": "can my dog come to the appointment"}
    data = tmp_path / "data"
    shutil.copytree(PROJECT_DIR / "data", data)
    (data / "nlu" / "reviewed.yml").write_text(document, encoding="utf-8")
    result = subprocess.run(
        [str(RASA), "data", "validate", "--domain", str(PROJECT_DIR / "domain.yml"), "--config",
         str(PROJECT_DIR / "config.yml"), "--data", str(data), "--fail-on-warnings"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_message_cannot_be_marked_with_an_intent_the_domain_lacks(db: str) -> None:
    with pytest.raises(LabelError):
        mark(_event_id(db, "does it help with migraines"), "faq_teleportation", "ada", database_url=db,
             tracker_url=db)


def test_brackets_in_a_message_do_not_become_entity_annotations(db: str) -> None:
    from clinic.insights.labels import example_text

    assert example_text("is [spravato](drug) {covered}\nby insurance") == "is (spravato)(drug) (covered) by insurance"


def test_the_csv_export_holds_numbers_and_no_patient_text(db: str, period: Period, profile: ClinicProfile) -> None:
    text = report_csv(build_report(period, profile, database_url=db, tracker_url=db))
    assert text.splitlines()[0] == "metric,date,key,value"
    assert "conversations,2026-11-10,sms,1" in text and "containment,,rate,0.5714" in text
    assert "faq_topics,,faq_cost_insurance,1" in text
    for secret in ("lithium", "+15550100001", "web-faq", "migraines"):
        assert secret not in text


def test_the_command_line_exports(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "insights.csv"
    assert cli.main(["insights", "export-csv", "--from", "2026-11-10", "--to", "2026-11-11", "--out", str(out)]) == 0
    assert "escalations.by_reason,,crisis,1" in out.read_text()
    assert cli.main(["insights", "export-nlu"]) == 0
    assert capsys.readouterr().out == 'version: "3.1"\nnlu:\n'  # nothing marked yet
    assert cli.main(["insights", "export-csv", "--from", "2026-11-12", "--to", "2026-11-10"]) == 2


def test_the_command_line_creates_a_manager(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a long manager password 42\n"))
    assert cli.main(["staff", "add", "max", "--role", "manager", "--password-stdin"]) == 0
    assert [(u.username, u.effective_role) for u in list_users(database_url=db)] == [("max", "manager")]
    assert cli.main(["staff", "role", "max", "admin"]) == 0
    assert [u.is_admin for u in list_users(database_url=db)] == [True]
