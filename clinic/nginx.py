"""nginx in front of the servers the launcher starts (``make run-prod``).

The launcher writes an nginx configuration from ``deploy/nginx/launcher.conf.j2`` into
``<CLINIC_VAR_DIR>/nginx/`` and runs nginx as one of its supervised children: a listener on
``RASA_PORT`` in front of the Rasa instances (round-robin; socket.io sessions kept on one instance
by client address; WebSocket upgrades passed on), and, when the launcher serves them, one on
``STAFF_PORT`` for the staff console and one on ``WEB_PORT`` for the website chat's server. Each
listener refuses bodies and slow requests with the same limits as the server behind it. The pid
file, temporary files and the access log (paths with conversation ids masked, never a query
string: Rasa's API token travels there) are under the run directory, so nginx runs as whoever
runs the launcher, root not needed.

Production runs the system's nginx with TLS instead: ``deploy/nginx/clinic.conf``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from clinic.settings import PROJECT_DIR

TEMPLATE_DIR = PROJECT_DIR / "deploy" / "nginx"
TEMPLATE = "launcher.conf.j2"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# Debian's package installs nginx in /usr/sbin, which is not on an ordinary user's PATH.
SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class NginxError(RuntimeError):
    """nginx is missing or refuses the configuration; the message says which and why."""


@dataclass(frozen=True)
class Site:
    """One listener of nginx and the server(s) behind it.

    Attributes:
        name: ``rasa``, ``console`` or ``web``.
        port: where nginx listens (the port users open).
        interface: the address nginx listens on.
        upstream: the ports (on 127.0.0.1) of the server or the Rasa instances behind it.
        max_body_bytes: larger request bodies get 413 from nginx.
        request_timeout: seconds a client has to send the headers, and between body reads.
        response_timeout: seconds the server behind has to answer (nginx waits 5 s more).
    """

    name: str
    port: int
    interface: str
    upstream: tuple[int, ...]
    max_body_bytes: int
    request_timeout: int
    response_timeout: int

    @property
    def listen(self) -> str:
        """``listen`` directive's address: ``127.0.0.1:5005``, ``[::1]:5005``, ``5005`` for every address."""
        interface = self.interface.strip().strip("[]")
        if interface in ("", "0.0.0.0", "*"):
            return str(self.port)
        return f"[{interface}]:{self.port}" if ":" in interface else f"{interface}:{self.port}"

    @property
    def description(self) -> str:
        what = {"rasa": f"Rasa ({len(self.upstream)} instance(s))", "console": "the staff console",
                "web": "the website chat's server"}.get(self.name, self.name)
        return f"{what} on {self.listen}"


def render(run_dir: Path, sites: Sequence[Site], user: str | None = None) -> str:
    """The whole nginx configuration.

    Args:
        run_dir: where nginx keeps its pid file, temporary files and access log.
        sites: the listeners; exactly one named ``rasa``.
        user: the workers' user; set it only when the launcher runs as root (nginx ignores it otherwise).
    """
    rasa = [site for site in sites if site.name == "rasa"]
    if len(rasa) != 1:
        raise ValueError("exactly one site must be Rasa's")
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=False,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.get_template(TEMPLATE).render(run_dir=run_dir, sites=sites, rasa=rasa[0], user=user)


def write_config(run_dir: Path, sites: Sequence[Site]) -> Path:
    """Writes ``run_dir/nginx.conf`` (and the temporary directories it names); its path."""
    run_dir = run_dir.resolve()
    for name in TEMP_DIRS:
        (run_dir / name).mkdir(parents=True, exist_ok=True)
    user = getpass.getuser() if os.geteuid() == 0 else None
    path = run_dir / "nginx.conf"
    path.write_text(render(run_dir, sites, user), encoding="utf-8")
    return path


def find_binary(path: str | None = None) -> str | None:
    """The nginx executable on ``PATH`` (or ``path``) or in the sbin directories; None if not installed."""
    search = os.pathsep.join([path if path is not None else os.environ.get("PATH", ""), *SEARCH_PATH])
    return shutil.which("nginx", path=search)


def require_binary() -> str:
    """The nginx executable, or :class:`NginxError` saying how to install it."""
    binary = find_binary()
    if binary is None:
        raise NginxError("nginx is not installed: `make nginx` (or `sudo apt-get install nginx`) installs "
                         "Debian's package; `make run-prod` does it when needed.")
    return binary


def command(binary: str, config: Path) -> list[str]:
    """nginx in the foreground on ``config``, its files relative to the config's directory
    (``-e stderr``: not even the built-in /var/log/nginx/error.log is opened)."""
    return [binary, "-p", str(config.parent), "-c", str(config), "-e", "stderr"]


def check_config(binary: str, config: Path, timeout: float = 30) -> None:
    """``nginx -t`` on ``config``; :class:`NginxError` with nginx's own message when it refuses it."""
    result = subprocess.run([*command(binary, config), "-t", "-q"], capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise NginxError(f"nginx refuses {config}: {detail}")
