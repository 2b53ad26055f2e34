"""Command line: ``python -m clinic.cli migrate | escalations [--all] | reconcile | answers``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _escalations(show_all: bool) -> int:
    from clinic.escalation import list_escalations

    rows = list_escalations(status=None if show_all else "open")
    if not rows:
        print("No open escalations." if not show_all else "No escalations.")
        return 0
    print(f"{'#':>5}  {'urgency':8} {'status':9} {'reason':17} {'channel':9} {'opened (UTC)':17} guard rule")
    for e in rows:
        rule = (e.guard_reason or {}).get("rule") or "-"
        print(
            f"{e.id:>5}  {e.urgency:8} {e.status:9} {e.reason:17} {e.channel:9} "
            f"{e.created_at:%Y-%m-%d %H:%M}  {rule}  conversation={e.conversation_id}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the clinic database")
    listing = sub.add_parser("escalations", help="list open escalations, urgent first")
    listing.add_argument("--all", action="store_true", help="include resolved ones")
    sub.add_parser("reconcile", help="record escalations that failed action calls missed")
    sub.add_parser("answers", help="FAQ answers filled from clinic.yml: length and reading grade")
    args = parser.parse_args(argv)

    if args.command == "migrate":
        from clinic.db import migrate

        migrate()
        return 0
    if args.command == "escalations":
        return _escalations(args.all)
    if args.command == "answers":
        from clinic.answers import filled_answers, report

        print(report(filled_answers()))
        return 0
    from clinic.reconcile import reconcile

    print(f"Recorded {reconcile()} missed escalation(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
