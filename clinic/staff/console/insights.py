"""The console's Insights pages: the clinic's numbers, and what the assistant could not answer.

``/insights`` (admins and managers) shows every aggregate of :mod:`clinic.insights.report` for a
date range in the clinic's time zone, each chart with its numbers. ``/insights/unanswered``
(admins only) lists patient messages, so every view is audited, as is every intent marked there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clinic.clock import utcnow
from clinic.db import get_engine
from clinic.insights import charts, labels, unanswered
from clinic.insights.charts import Series
from clinic.insights.escalations import REASONS
from clinic.insights.intents import markable_intents
from clinic.insights.period import InvalidPeriod, Period, parse_period
from clinic.insights.report import build_report
from clinic.profile import ClinicProfile
from clinic.settings import tracker_store_url
from clinic.staff import audit
from clinic.staff.accounts import INSIGHTS, UNANSWERED
from clinic.staff.console.auth import form_fields, principal
from clinic.staff.console.responses import render
from clinic.staff.console.roles import require
from clinic.staff.console.serialize import REASON_LABELS, duration

NOT_INSIGHTS = "Insights are for administrators and managers."
NOT_UNANSWERED = "Only administrators can read the messages the assistant could not answer."
NOTICES = {"marked": ("success", "Marked. `python -m clinic.cli insights export-nlu` writes it for training.")}


def _profile(request: Request) -> ClinicProfile:
    return request.app.state.console.profile()


def period_of(request: Request) -> Period:
    """The ``from`` / ``to`` of the query (default: the last 30 days); 400 when invalid."""
    profile = _profile(request)
    params = request.query_params
    try:
        return parse_period(params.get("from"), params.get("to"), profile, utcnow().astimezone(profile.tz).date())
    except InvalidPeriod as exc:
        raise HTTPException(400, str(exc)) from None


def report_for(request: Request, period: Period) -> Any:
    """The report of ``period`` (computed in the thread pool by the caller)."""
    return build_report(period, _profile(request), database_url=request.app.state.console.database_url)


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    funnel = report["booking_funnel"]
    return {
        "conversations": charts.daily_bars(
            "chart-conversations", "Conversations per day by channel", report["conversations"]["per_day"],
            [Series("web", "Web"), Series("sms", "SMS")]),
        "containment": charts.daily_bars(
            "chart-containment", "Share of conversations that ended without staff, per day",
            report["containment"]["per_day"], [Series("rate", "Contained")], percent=True),
        "faq_topics": charts.horizontal_bars(
            "chart-faq-topics", "FAQ topics asked", [(t["topic"], t["count"]) for t in report["faq_topics"]]),
        "booking_funnel": charts.horizontal_bars(
            "chart-booking-funnel", "Booking funnel", [
                ("Asked to book", funnel["asked"]), ("Form started", funnel["form_started"]),
                ("Form completed", funnel["completed"]), ("Booked", funnel["booked"]),
                ("Cancelled since", funnel["cancelled"])]),
        "escalations": charts.daily_bars(
            "chart-escalations", "Escalations per day by reason", report["escalations"]["per_day"],
            [Series(reason, REASON_LABELS.get(reason, reason)) for reason in REASONS]),
        "crisis": charts.daily_bars(
            "chart-crisis", "Crisis protocol and safety check-ins per day", report["crisis_events"]["per_day"],
            [Series("crisis_protocol", "Crisis protocol"), Series("safety_checkin", "Safety check-in")]),
    }


def _wait(seconds: float | None) -> str:
    return duration(seconds) if seconds is not None else "—"


def _percent(share: float | None) -> str:
    return f"{share * 100:.0f}%" if share is not None else "—"


async def insights_page(request: Request) -> Response:
    """The numbers and charts of a date range (admins and managers)."""
    require(request, INSIGHTS, NOT_INSIGHTS)
    period = period_of(request)
    report = await run_in_threadpool(report_for, request, period)
    context = {
        "report": report,
        "charts": _charts(report),
        "reasons": [(reason, REASON_LABELS.get(reason, reason)) for reason in REASONS],
        "wait": _wait,
        "percent": _percent,
        "can_see_unanswered": principal(request).user.effective_role == "admin",
        "range_query": urlencode({"from": report["from"], "to": report["to"]}),
        "nav": "insights",
    }
    return render(request, "insights.html", context)


def _unanswered(period: Period, database_url: str) -> tuple[list[unanswered.Group], dict[int, str]]:
    with get_engine(tracker_store_url()).connect() as connection:
        messages = unanswered.find_messages(connection, period)
    marks = labels.labels_for([m.event_id for m in messages], database_url=database_url)
    return unanswered.group_messages(messages), marks


async def unanswered_page(request: Request) -> Response:
    """What the assistant could not answer, grouped (admins only; every view audited)."""
    require(request, UNANSWERED, NOT_UNANSWERED)
    period = period_of(request)
    database_url = request.app.state.console.database_url
    groups, marks = await run_in_threadpool(_unanswered, period, database_url)
    count = sum(len(group.messages) for group in groups)
    detail = f"insights unanswered {period.first}..{period.last}: {count} message(s); via console"
    await run_in_threadpool(audit.record, database_url, principal(request).user, "insights_unanswered_view",
                            None, detail)
    context = {
        "groups": groups,
        "marks": marks,
        "count": count,
        "intents": markable_intents(),
        "first": period.first.isoformat(),
        "last": period.last.isoformat(),
        "tz": period.tz,
        "local": lambda at: _local(at, period),
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        "error": None,
        "nav": "insights",
    }
    return render(request, "insights_unanswered.html", context)


def _local(at: datetime, period: Period) -> str:
    return at.astimezone(period.tz).strftime("%Y-%m-%d %H:%M")


async def mark_intent(request: Request) -> Response:
    """Marks a message with the intent it should have had (admins only; audited)."""
    require(request, UNANSWERED, NOT_UNANSWERED)
    fields = form_fields(request)
    raw_id, intent = fields.get("event_id", ""), fields.get("intent", "")
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise HTTPException(400, "event_id must be a whole number.")
    database_url = request.app.state.console.database_url
    user = principal(request).user
    try:
        label = await run_in_threadpool(labels.mark, int(raw_id), intent, user.username, database_url=database_url)
    except labels.LabelError as exc:
        raise HTTPException(400, str(exc)) from None
    await run_in_threadpool(audit.record, database_url, user, "insights_mark", None,
                            f"message {label.event_id} marked {label.intent}; via console",
                            conversation_id=label.conversation_id)
    back = {"from": fields.get("from", ""), "to": fields.get("to", ""), "notice": "marked"}
    return RedirectResponse(f"/insights/unanswered?{urlencode(back)}#message-{label.event_id}", status_code=303)


def routes() -> list[Route]:
    """The insights pages (the middleware signs in; each page checks the role)."""
    return [
        Route("/insights", insights_page, methods=["GET"], name="insights"),
        Route("/insights/unanswered", unanswered_page, methods=["GET"], name="insights_unanswered"),
        Route("/insights/unanswered/mark", mark_intent, methods=["POST"], name="insights_mark"),
    ]
