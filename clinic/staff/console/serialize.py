"""Labels for people and JSON shapes shared by the pages' polling endpoints and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clinic.clock import as_utc
from clinic.staff.inbox import EscalationSummary, NoteView, ReplyView, StaffRef

REASON_LABELS = {
    "crisis": "Crisis",
    "emergency": "Emergency",
    "medical_question": "Medical question",
    "asked_for_staff": "Asked for staff",
    "safety_checkin": "Safety check-in",
}
CHANNEL_LABELS = {
    "rest": "Website (REST)",
    "socketio": "Website chat",
    "twilio": "SMS",
    "unknown": "Unknown channel",
}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
SENDER_LABELS = {"patient": "Patient", "bot": "Assistant", "staff": "Staff"}
REPLY_STATUS_LABELS = {"sending": "Sending…", "delivered": "Delivered", "failed": "Not delivered"}


def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, reason.replace("_", " ").capitalize())


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def language_label(language: str | None) -> str | None:
    """The conversation's language in words (``Spanish``); None when unknown."""
    return LANGUAGE_LABELS.get(language or "")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (``...Z``), or None."""
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def duration(seconds: int | float | None) -> str:
    """A short duration: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = int(seconds or 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def staff_ref(ref: StaffRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"id": ref.id, "username": ref.username, "display_name": ref.display_name}


def new_patient_message(summary: EscalationSummary) -> bool:
    """The patient wrote again after the last staff reply."""
    return (
        summary.status == "open"
        and summary.last_reply_at is not None
        and summary.last_patient_message_at is not None
        and summary.last_patient_message_at > summary.last_reply_at
    )


def summary(item: EscalationSummary, now: datetime) -> dict[str, Any]:
    """An escalation in the inbox's and the API's JSON; ``preview`` is the start of the latest
    patient message (listings only, None elsewhere) and ``since_reply`` how many patient messages
    arrived since the last staff reply."""
    return {
        "id": item.id,
        "url": f"/escalations/{item.id}",
        "conversation_id": item.conversation_id,
        "channel": item.channel,
        "channel_label": channel_label(item.channel),
        "reason": item.reason,
        "reason_label": reason_label(item.reason),
        "urgency": item.urgency,
        "status": item.status,
        "guard_rule": item.guard_rule,
        "language": item.language,
        "language_label": language_label(item.language),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "resolved_at": iso(item.resolved_at),
        "last_patient_message_at": iso(item.last_patient_message_at),
        "last_reply_at": iso(item.last_reply_at),
        "waiting_seconds": item.waiting_seconds(now),
        "waiting": duration(item.waiting_seconds(now)),
        "awaiting_reply": item.awaiting_reply,
        "new_patient_message": new_patient_message(item),
        "assigned_to": staff_ref(item.assigned_to),
        "resolved_by": staff_ref(item.resolved_by),
        "preview": item.preview,
        "since_reply": item.since_reply,
    }


def note(item: NoteView) -> dict[str, Any]:
    return {"id": item.id, "author": staff_ref(item.author), "text": item.text, "created_at": iso(item.created_at)}


def reply(item: ReplyView) -> dict[str, Any]:
    return {
        "id": item.id,
        "author": staff_ref(item.author),
        "text": item.text,
        "status": item.status,
        "status_label": REPLY_STATUS_LABELS.get(item.status, item.status),
        "error": item.error,
        "created_at": iso(item.created_at),
        "delivered_at": iso(item.delivered_at),
    }


def transcript_entry(entry: Any) -> dict[str, Any]:
    """A ``clinic.staff.transcript.TranscriptEntry``."""
    sender = getattr(entry, "sender", "bot")
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "sender": sender,
        "sender_label": SENDER_LABELS.get(sender, sender),
        "text": entry.text,
        "staff_name": getattr(entry, "staff_name", None),
    }


def notification(item: Any) -> dict[str, Any]:
    """A ``clinic.staff.notifications.NotificationStatus``."""
    return {
        "escalation_id": getattr(item, "escalation_id", None),
        "notifier": getattr(item, "notifier", None),
        "event": getattr(item, "event", None),
        "status": getattr(item, "status", None),
        "attempts": getattr(item, "attempts", None),
        "last_error": getattr(item, "last_error", None),
        "next_attempt_at": iso(getattr(item, "next_attempt_at", None)),
        "sent_at": iso(getattr(item, "sent_at", None)),
    }
