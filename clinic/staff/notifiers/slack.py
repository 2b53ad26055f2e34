"""Slack-compatible incoming webhook: a JSON POST ``{"text": ...}`` (Slack, Mattermost, Rocket.Chat...)."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from clinic.staff.notifiers import SEND_TIMEOUT, ConfigError, NotifierError, StaffAlert, require

logger = logging.getLogger(__name__)


class SlackNotifier:
    """Posts alerts to an incoming webhook (the URL is a secret: it is never logged or stored)."""

    name = "slack"

    def __init__(self, webhook_url: str, timeout: float = SEND_TIMEOUT) -> None:
        """Args:
            webhook_url: the webhook's ``https://`` (or ``http://``) URL.
            timeout: seconds to wait for the webhook.

        Raises:
            ConfigError: the URL is not an http(s) URL.
        """
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError("SLACK_WEBHOOK_URL must be an https:// URL")
        self._url = webhook_url
        self._timeout = timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SlackNotifier:
        """Reads ``SLACK_WEBHOOK_URL``.

        Raises:
            ConfigError: it is unset or not a URL.
        """
        return cls(require(environ, cls.name, ("SLACK_WEBHOOK_URL",))["SLACK_WEBHOOK_URL"])

    def send(self, message: StaffAlert) -> None:
        """Posts the alert's text.

        Raises:
            NotifierError: the webhook is unreachable, timed out or answered other than 2xx.
        """
        body = json.dumps({"text": message.text}).encode("utf-8")
        request = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - http(s) only
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise NotifierError(f"webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise NotifierError(f"webhook unreachable ({_reason(exc.reason)})") from None
        except TimeoutError:
            raise NotifierError(f"webhook timed out after {self._timeout:g} s") from None
        except OSError as exc:
            raise NotifierError(f"webhook connection failed ({_reason(exc)})") from None
        logger.debug("slack webhook accepted the alert for escalation %s", message.escalation_id)


def _reason(reason: object) -> str:
    """A connection error's kind without its text (which may name the host)."""
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return type(reason).__name__
