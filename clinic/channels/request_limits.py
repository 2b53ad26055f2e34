"""The largest request body Rasa's server reads.

Sanic's default ``REQUEST_MAX_SIZE`` is 100 MB: one request could fill the tracker store (a 60 MB
``metadata`` grew it by about 500 MB, issue 16). The patient channels' blueprints set the
Rasa app's limit to ``RASA_MAX_REQUEST_BYTES`` (1 MiB) when the server starts, so it applies
however Rasa is started (the launcher, a systemd unit, a Procfile), to every route of that
server (the channels and the HTTP API), and never to the action server, whose requests carry
whole conversations. A larger body gets 413 before it is read; nothing reaches Rasa.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Blueprint, Sanic

from clinic import settings

logger = logging.getLogger(__name__)


def limit_request_size(blueprint: Blueprint, max_bytes: int | None = None) -> None:
    """Sets ``REQUEST_MAX_SIZE`` of the app ``blueprint`` joins, when that server starts.

    Args:
        blueprint: a channel's blueprint (several may call this; they set the same value).
        max_bytes: the limit (default ``RASA_MAX_REQUEST_BYTES``, read when the server starts).
    """

    @blueprint.listener("before_server_start")
    async def set_request_max_size(app: Sanic, _loop: Any) -> None:
        limit = max_bytes if max_bytes is not None else settings.rasa_max_request_bytes()
        if limit != app.config.REQUEST_MAX_SIZE:
            app.config.REQUEST_MAX_SIZE = limit
            logger.info("requests larger than %d bytes are refused (413)", limit)
