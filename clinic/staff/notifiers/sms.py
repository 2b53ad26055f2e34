"""SMS to the on-call phone through Twilio's Messages API (the ``twilio`` package).

``TWILIO_API_BASE`` points the client at another base URL than ``https://api.twilio.com``
(a local test server, a sandbox): :class:`RebasedTwilioHttpClient` rewrites every request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from clinic.staff.notifiers import SEND_TIMEOUT, ConfigError, NotifierError, StaffAlert, require

logger = logging.getLogger(__name__)

TWILIO_API_BASE = "https://api.twilio.com"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class RebasedTwilioHttpClient(TwilioHttpClient):
    """Twilio's HTTP client sending to ``api_base`` instead of ``https://api.twilio.com``.

    It also logs requests at DEBUG only (Twilio's own client logs them at INFO).
    """

    def __init__(self, api_base: str = TWILIO_API_BASE, timeout: float = SEND_TIMEOUT) -> None:
        """Args:
            api_base: scheme, host and optional port (and path prefix) replacing Twilio's.
            timeout: seconds to wait for the API.
        """
        super().__init__(pool_connections=True, timeout=timeout, logger=logger)
        self.api_base = api_base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Sends the request to ``api_base`` (same path and query)."""
        if url.startswith(TWILIO_API_BASE + "/"):
            url = self.api_base + url[len(TWILIO_API_BASE):]
        return super().request(method, url, *args, **kwargs)

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Logs the method only, at DEBUG (the URL holds the account SID, the body a phone number)."""
        self.logger.debug("twilio request %s", kwargs.get("method"))

    def log_response(self, status_code: int, response: Any) -> None:
        """Logs the status only, at DEBUG."""
        self.logger.debug("twilio response %s", status_code)

    def close(self) -> None:
        """Closes the pooled connections."""
        if self.session is not None:
            self.session.close()


@dataclass(frozen=True)
class TwilioSettings:
    """The Twilio account and numbers for on-call SMS.

    Attributes:
        account_sid: ``TWILIO_ACCOUNT_SID``.
        auth_token: ``TWILIO_AUTH_TOKEN`` (secret).
        from_number: the Twilio number sending the SMS.
        to_number: the on-call phone.
        api_base: Twilio's API base URL, or a stand-in's.
    """

    account_sid: str
    auth_token: str
    from_number: str
    to_number: str
    api_base: str = TWILIO_API_BASE

    def __repr__(self) -> str:  # never print the token or the on-call number
        return f"TwilioSettings(account_sid={self.account_sid[:6]}..., api_base={self.api_base!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TwilioSettings:
        """Reads ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM_NUMBER``,
        ``ONCALL_PHONE`` and ``TWILIO_API_BASE``.

        Raises:
            ConfigError: a required variable is missing, or ``TWILIO_API_BASE`` is not a URL.
        """
        names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "ONCALL_PHONE")
        values = require(environ, "sms", names)
        api_base = (environ.get("TWILIO_API_BASE") or TWILIO_API_BASE).strip().rstrip("/")
        parts = urlsplit(api_base)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"TWILIO_API_BASE must be an https:// URL (got {api_base!r})")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            logger.warning("TWILIO_API_BASE is plain http on another host: the auth token travels in clear")
        return cls(account_sid=values["TWILIO_ACCOUNT_SID"], auth_token=values["TWILIO_AUTH_TOKEN"],
                   from_number=values["TWILIO_FROM_NUMBER"], to_number=values["ONCALL_PHONE"], api_base=api_base)


class TwilioSmsNotifier:
    """Texts alerts to the on-call phone."""

    name = "sms"

    def __init__(self, settings: TwilioSettings, http_client: HttpClient | None = None) -> None:
        """Args:
            settings: account, numbers and API base.
            http_client: the HTTP client for Twilio's ``Client`` (default: a
                :class:`RebasedTwilioHttpClient` for ``settings.api_base`` per send).
        """
        self.settings = settings
        self._http_client = http_client

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TwilioSmsNotifier:
        """See :meth:`TwilioSettings.from_env`."""
        return cls(TwilioSettings.from_env(environ))

    def send(self, message: StaffAlert) -> None:
        """Creates the SMS through Twilio's Messages API.

        Raises:
            NotifierError: Twilio refused the message, or could not be reached in time.
        """
        http_client = self._http_client or RebasedTwilioHttpClient(self.settings.api_base)
        try:
            client = Client(self.settings.account_sid, self.settings.auth_token, http_client=http_client)
            created = client.messages.create(
                to=self.settings.to_number, from_=self.settings.from_number, body=message.text
            )
        except TwilioRestException as exc:
            code = f", Twilio error {exc.code}" if exc.code else ""
            raise NotifierError(f"Twilio answered HTTP {exc.status}{code}") from None
        except TwilioException as exc:
            raise NotifierError(f"Twilio client error ({type(exc).__name__})") from None
        except ValueError:
            raise NotifierError("Twilio answered something other than JSON") from None
        except OSError as exc:  # requests' ConnectionError, Timeout... (their text holds the URL)
            raise NotifierError(f"Twilio unreachable ({type(exc).__name__})") from None
        finally:
            if self._http_client is None:
                http_client.close()
        logger.debug("twilio accepted the SMS for escalation %s (status %s)", message.escalation_id, created.status)
