"""Command line: ``python -m clinic.cli migrate | escalations [--all] | reconcile | answers | purge | staff ...``.

``purge [--dry-run] [--days N]`` deletes patient data older than ``retention_days`` in clinic.yml
(or N days): idle conversations, resolved escalations, past bookings and requests, expired staff
sessions, and audit events older than ``audit_retention_days`` (:mod:`clinic.retention`).

``staff`` manages the staff console's accounts and API tokens (new passwords must pass
:mod:`clinic.staff.passwords`): ``add USERNAME [--name NAME] [--admin] [--password-stdin]``, ``passwd USERNAME``,
``unlock USERNAME``, ``disable USERNAME``, ``list``, ``token USERNAME --name NAME``,
``tokens [USERNAME]``, ``revoke-token ID``, ``role USERNAME staff|admin|manager``. ``add --role manager``
creates a manager: the console's insights only, never a conversation.

``insights export-nlu [--out FILE]`` writes the messages admins marked with an intent as Rasa NLU
YAML (stdout by default) for review before training; ``insights export-csv --from YYYY-MM-DD --to
YYYY-MM-DD [--out FILE]`` writes the insights' aggregates (numbers only) (:mod:`clinic.insights`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from datetime import datetime


def _escalations(show_all: bool) -> int:
    """Prints open escalations (urgent first, then oldest), then with ``show_all`` resolved ones
    (latest first). Listing writes no audit event, as in the console's inbox."""
    from clinic.staff.inbox import list_escalations

    rows = list_escalations(status="open", limit=None)
    if show_all:
        rows += list_escalations(status="resolved", limit=None)
    if not rows:
        print("No open escalations." if not show_all else "No escalations.")
        return 0
    print(f"{'#':>5}  {'urgency':8} {'status':9} {'reason':17} {'channel':9} {'opened (UTC)':17} guard rule")
    for e in rows:
        rule = e.guard_rule or "-"
        print(
            f"{e.id:>5}  {e.urgency:8} {e.status:9} {e.reason:17} {e.channel:9} "
            f"{e.created_at:%Y-%m-%d %H:%M}  {rule}  conversation={e.conversation_id}"
        )
    return 0


def _read_password(from_stdin: bool) -> str | None:
    """A new password from stdin (one line) or typed twice; None when the two differ."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password (12 characters or more, not a common one or your name; "
                            "a few unrelated words work well): ")
    if getpass.getpass("Again: ") != first:
        print("The passwords differ; nothing changed.", file=sys.stderr)
        return None
    return first


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def _staff_list() -> int:
    from clinic.clock import utcnow
    from clinic.staff.accounts import list_users

    users = list_users()
    if not users:
        print("No staff accounts. Create one: python -m clinic.cli staff add USERNAME --admin")
        return 0
    now = utcnow()
    print(f"{'#':>4}  {'username':20} {'role':7} {'state':9} {'last sign-in (UTC)':18} name")
    for user in users:
        state = "disabled" if not user.is_active else (
            "locked" if user.locked_until is not None and user.locked_until > now else "active"
        )
        role = user.effective_role
        print(f"{user.id:>4}  {user.username:20} {role:7} {state:9} {_when(user.last_login_at):18} {user.display_name}")
    return 0


def _staff_tokens(username: str | None) -> int:
    from clinic.staff.accounts import list_api_tokens

    tokens = list_api_tokens(username)
    if not tokens:
        print("No API tokens.")
        return 0
    print(f"{'#':>4}  {'name':20} {'user':16} {'created (UTC)':17} {'last used (UTC)':17} revoked")
    for token in tokens:
        print(f"{token.id:>4}  {token.name:20} {token.username:16} {_when(token.created_at):17} "
              f"{_when(token.last_used_at):17} {_when(token.revoked_at) if token.revoked_at else 'no'}")
    return 0


def _staff(args: argparse.Namespace) -> int:
    """Runs a ``staff`` subcommand; errors go to stderr with exit code 1."""
    from clinic.db import migrate
    from clinic.staff import accounts as staff

    migrate()
    action = args.staff_command
    try:
        if action == "list":
            return _staff_list()
        if action == "tokens":
            return _staff_tokens(args.username)
        if action in ("add", "passwd"):
            password = _read_password(args.password_stdin)
            if password is None:
                return 1
            if action == "add":
                user = staff.create_user(args.username, password, display_name=args.name, is_admin=args.admin,
                                         role=args.role)
                print(f"Created {user.effective_role} account {user.username!r} ({user.display_name}).")
            else:
                staff.set_password(args.username, password)
                print(f"Password changed for {args.username!r}; the account is unlocked and signed out everywhere.")
            return 0
        if action == "role":
            member = staff.set_role(args.username, args.role)
            print(f"{member.username!r} is now {member.effective_role}; its sessions ended.")
        elif action == "unlock":
            staff.unlock(args.username)
            print(f"Unlocked {args.username!r}.")
        elif action == "disable":
            staff.deactivate(args.username)
            print(f"Disabled {args.username!r}: it cannot sign in, and its sessions and API tokens no longer work.")
        elif action == "token":
            new = staff.create_api_token(args.username, args.name)
            print(f"API token #{new.info.id} ({new.info.name}) for {new.info.username}. It is shown only now:")
            print(new.token)
        elif action == "revoke-token":
            if not staff.revoke_api_token(args.token_id):
                print(f"No active API token #{args.token_id}.", file=sys.stderr)
                return 1
            print(f"Revoked API token #{args.token_id}.")
        return 0
    except staff.StaffError as exc:
        print(str(exc), file=sys.stderr)
        return 1


def _purge(dry_run: bool, days: int | None) -> int:
    """Runs the retention purge and prints counts per table (never patient data)."""
    from clinic.profile import ProfileError
    from clinic.retention import format_report, purge

    try:
        report = purge(days, dry_run=dry_run)
    except (ProfileError, ValueError) as exc:
        print(f"Cannot purge: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


def _positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError("at least 1 day")
    return days


def _staff_parser(sub: argparse._SubParsersAction) -> None:
    staff = sub.add_parser("staff", help="staff console accounts and API tokens")
    commands = staff.add_subparsers(dest="staff_command", required=True)
    add = commands.add_parser("add", help="create an account (asks for the password twice)")
    add.add_argument("username")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--admin", action="store_true", help="may also read the audit log")
    add.add_argument("--role", choices=("staff", "admin", "manager"),
                     help="staff (default), admin, or manager (insights only, no conversations)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    passwd = commands.add_parser("passwd", help="set a new password (also unlocks and signs out)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    commands.add_parser("unlock", help="lift a lock-out after failed sign-ins").add_argument("username")
    commands.add_parser("disable", help="disable an account").add_argument("username")
    commands.add_parser("list", help="list accounts")
    token = commands.add_parser("token", help="create an API token (printed once)")
    token.add_argument("username")
    token.add_argument("--name", required=True, help="what the token is for, e.g. ehr-sync")
    commands.add_parser("tokens", help="list API tokens").add_argument("username", nargs="?")
    commands.add_parser("revoke-token", help="revoke an API token").add_argument("token_id", type=int, metavar="ID")
    role = commands.add_parser("role", help="change an account's role (its sessions end)")
    role.add_argument("username")
    role.add_argument("role", choices=("staff", "admin", "manager"))


def _insights_parser(sub: argparse._SubParsersAction) -> None:
    insights = sub.add_parser("insights", help="exports of the staff console's insights")
    commands = insights.add_subparsers(dest="insights_command", required=True)
    nlu = commands.add_parser("export-nlu", help="marked messages as Rasa NLU YAML, for review before training")
    nlu.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    csv = commands.add_parser("export-csv", help="the aggregates of a date range as CSV (numbers only)")
    csv.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
    csv.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD")
    csv.add_argument("--out", metavar="FILE", help="write here (default: stdout)")


def _write(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    from pathlib import Path

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")


def _insights(args: argparse.Namespace) -> int:
    """Runs an ``insights`` subcommand; what is written goes to ``--out`` or stdout, counts to stderr."""
    from clinic.db import migrate

    migrate()
    if args.insights_command == "export-nlu":
        from clinic.insights.labels import export_nlu

        document, count = export_nlu()
        _write(document, args.out)
        print(f"{count} marked message(s) exported.", file=sys.stderr)
        return 0
    from clinic.insights.export import report_csv
    from clinic.insights.period import InvalidPeriod, parse_period
    from clinic.insights.report import build_report
    from clinic.profile import ProfileError, load_profile

    try:
        profile = load_profile()
        period = parse_period(args.first, args.last, profile, datetime.now(profile.tz).date())
    except (InvalidPeriod, ProfileError) as exc:
        print(f"Cannot export: {exc}", file=sys.stderr)
        return 2
    _write(report_csv(build_report(period, profile)), args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clinic.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the clinic database")
    listing = sub.add_parser("escalations", help="list open escalations, urgent first")
    listing.add_argument("--all", action="store_true", help="include resolved ones")
    sub.add_parser("reconcile", help="record escalations that failed action calls missed")
    sub.add_parser("answers", help="FAQ answers filled from clinic.yml: length and reading grade")
    purge = sub.add_parser("purge", help="delete patient data older than the retention period (clinic.yml)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--days", type=_positive_days, metavar="N",
                       help="keep N days instead of retention_days (audit events keep their own period)")
    _staff_parser(sub)
    _insights_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "migrate":
        from clinic.db import migrate
        from clinic.insights.indexes import ensure_tracker_indexes

        migrate()
        ensure_tracker_indexes()
        return 0
    if args.command == "insights":
        return _insights(args)
    if args.command == "escalations":
        return _escalations(args.all)
    if args.command == "staff":
        return _staff(args)
    if args.command == "purge":
        return _purge(args.dry_run, args.days)
    if args.command == "answers":
        from tools.answers import filled_answers, report

        print(report(filled_answers()))
        return 0
    from clinic.staff.reconcile import reconcile

    print(f"Recorded {reconcile()} missed escalation(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
