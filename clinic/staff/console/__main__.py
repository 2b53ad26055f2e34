"""``python -m clinic.staff.console``: migrates the clinic database and serves the staff console.

Settings (see .env.example): ``STAFF_PORT`` (8080), ``CONSOLE_INTERFACE`` (127.0.0.1),
``CONSOLE_INSECURE_COOKIES=1`` (plain-http tests on a LAN only), ``CLINIC_DATABASE_URL``,
``STAFF_IDLE_TIMEOUT_MINUTES`` (30), ``STAFF_TRUSTED_PROXIES`` (127.0.0.1,::1).
Staff accounts: ``python -m clinic.cli staff add USERNAME``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from clinic.settings import (
    LOOPBACK_INTERFACES,
    console_insecure_cookies,
    console_interface,
    console_url,
    staff_port,
)

logger = logging.getLogger("clinic.staff.console")


def address(interface: str, port: int) -> str:
    """The URL to print: the public one when listening on every interface."""
    if interface in {"0.0.0.0", "::", ""}:
        return console_url() + "/"
    host = f"[{interface}]" if ":" in interface else interface
    return f"http://{host}:{port}/"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.staff.console", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default: STAFF_PORT or 8080")
    parser.add_argument("--interface", default=None, help="default: CONSOLE_INTERFACE or 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    import uvicorn

    from clinic.db import migrate
    from clinic.staff.accounts import warm_up
    from clinic.staff.console.app import create_app

    migrate()
    warm_up()
    port = args.port or staff_port()
    interface = args.interface or console_interface()
    secure = not console_insecure_cookies()
    app = create_app(secure_cookies=secure)
    print(f"Staff console: {address(interface, port)}", flush=True)
    if not secure:
        print("Cookies are not marked Secure (CONSOLE_INSECURE_COOKIES=1): use this on a test network only.",
              flush=True)
    elif interface not in LOOPBACK_INTERFACES:
        print("Cookies are marked Secure: serve the console over HTTPS (e.g. behind a TLS proxy).", flush=True)
    # ws="none": the console has no websockets (and Rasa pins a websockets too old for uvicorn's).
    # proxy_headers=False: the app reads X-Forwarded-For itself, from STAFF_TRUSTED_PROXIES only.
    uvicorn.run(app, host=interface, port=port, log_level="info", ws="none", server_header=False, date_header=False,
                proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
