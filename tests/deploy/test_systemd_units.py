"""deploy/systemd/: ``systemd-analyze verify`` accepts every unit (with /srv/clinic pointed at this
checkout, so the programs they start exist), and the units fit together: the target starts every
service and timer, each timer has its service, and the Rasa instances it starts are the ones
nginx's production configuration sends requests to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from clinic.settings import PROJECT_DIR
from tests.deploy.conftest import require_tool

UNITS = PROJECT_DIR / "deploy" / "systemd"
TARGET = "clinic-assistant.target"


def read_unit(path: Path) -> dict[str, dict[str, str]]:
    """A unit file's keys by section; a key given twice (``Wants=`` may be) has its values joined by a space."""
    sections: dict[str, dict[str, str]] = {}
    section: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
        elif line and not line.startswith("#") and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            section[key] = f"{section[key]} {value}" if key in section else value
    return sections


def wanted_by_target() -> list[str]:
    return read_unit(UNITS / TARGET)["Unit"]["Wants"].split()


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    analyze = require_tool(shutil.which("systemd-analyze"), "systemd-analyze", "Debian's `systemd` package")
    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("/srv/clinic", str(PROJECT_DIR)))
    names = [f"./{name}" for name in (*sorted(p.name for p in UNITS.iterdir() if "@." not in p.name),
                                      *(n for n in wanted_by_target() if "@" in n))]
    result = subprocess.run([analyze, "verify", "--man=no", "--generators=no", *names], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_target_starts_every_service_and_timer() -> None:
    shipped = {p.name for p in UNITS.iterdir()} - {TARGET}
    timed = {p.name.replace(".timer", ".service") for p in UNITS.glob("*.timer")}
    wanted = {re.sub(r"@[^.]+\.", "@.", name) for name in wanted_by_target()}
    assert wanted <= shipped, wanted - shipped
    assert shipped - timed == wanted  # the timers start the rest


def test_every_long_running_unit_restarts_and_is_part_of_the_target() -> None:
    for path in UNITS.glob("*.service"):
        unit = read_unit(path)
        if unit["Service"].get("Type") == "oneshot":
            continue
        assert unit["Service"]["Restart"] == "on-failure", path.name
        assert unit["Unit"]["PartOf"] == TARGET, path.name
        assert "Requires" not in unit["Unit"] and "BindsTo" not in unit["Unit"], path.name


def test_the_rasa_instances_are_the_ones_nginx_sends_requests_to() -> None:
    instances = sorted(int(name.split("@")[1].split(".")[0]) for name in wanted_by_target() if "@" in name)
    production = (PROJECT_DIR / "deploy" / "nginx" / "clinic.conf").read_text()
    for upstream in ("clinic_rasa", "clinic_rasa_socketio"):
        block = re.search(rf"upstream {upstream} \{{(.*?)\}}", production, re.S)
        assert block, upstream
        assert sorted(int(p) for p in re.findall(r"server 127\.0\.0\.1:(\d+)", block.group(1))) == instances
