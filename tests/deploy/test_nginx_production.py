"""deploy/nginx/clinic.conf, the production configuration with TLS: ``nginx -t`` accepts it with
self-signed certificates made here, and run by nginx (its ports and servers moved to free local
ones) it exposes only what it should: socket.io and Twilio's webhook on the assistant's name, the
console only from the clinic's network, everything over HTTPS."""

from __future__ import annotations

import datetime
import http.client
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clinic.settings import PROJECT_DIR

NGINX_DIR = PROJECT_DIR / "deploy" / "nginx"
NAMES = ("assistant.example-clinic.org", "chat.example-clinic.org", "console.example-clinic.org")


def self_signed(directory: Path, name: str) -> None:
    """``fullchain.pem`` and ``privkey.pem`` for ``name`` in ``directory``, as certbot lays them out."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def installed(root: Path, replace: dict[str, str] | None = None) -> Path:
    """clinic.conf and its TLS snippet laid out as under /etc/nginx, in ``root``, with certificates
    and logs under ``root`` (and ``replace``'s other substitutions); the main configuration's path."""
    conf = (NGINX_DIR / "clinic.conf").read_text()
    for old, new in {"/etc/letsencrypt/live/": f"{root}/letsencrypt/", "/var/log/nginx/": f"{root}/log/",
                     **(replace or {})}.items():
        conf = conf.replace(old, new)
    for name in NAMES:
        self_signed(root / "letsencrypt" / name, name)
    (root / "log").mkdir()
    (root / "sites-enabled").mkdir()
    (root / "snippets").mkdir()
    (root / "sites-enabled" / "clinic.conf").write_text(conf)
    (root / "snippets" / "clinic-tls.conf").write_text((NGINX_DIR / "clinic-tls.conf").read_text())
    main = root / "nginx.conf"
    main.write_text(
        f"daemon off;\npid {root}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n"
        f"  fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n"
        f"  access_log off;\n  include sites-enabled/*.conf;\n}}\n"
    )
    return main


def nginx_command(binary: str, main: Path) -> list[str]:
    return [binary, "-p", str(main.parent), "-c", str(main), "-e", "stderr"]


def test_nginx_accepts_the_production_configuration(nginx_binary: str, tmp_path: Path) -> None:
    main = installed(tmp_path)
    result = subprocess.run([*nginx_command(nginx_binary, main), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_nginx_refuses_it_without_the_certificates(nginx_binary: str, tmp_path: Path) -> None:
    """The check above can fail: a missing certificate is an error, not a warning."""
    main = installed(tmp_path)
    (tmp_path / "letsencrypt" / NAMES[0] / "fullchain.pem").unlink()
    result = subprocess.run([*nginx_command(nginx_binary, main), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "fullchain.pem" in result.stderr


# ------------------------------------------------------------------ run, on free ports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Named(BaseHTTPRequestHandler):
    """Answers every request with the server's name and the path it got."""

    def _answer(self) -> None:
        body = f"{self.server.name} {self.command} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def production(nginx_binary: str, tmp_path: Path) -> Iterator[dict[str, int]]:
    """clinic.conf run by nginx with its listening ports and servers moved to free local ports;
    the ports by their production number (443, 80, 5000; 5005, 5006, 8000, 8080 for the servers)."""
    ports = {number: free_port() for number in (443, 80, 5000, 5005, 5006, 8000, 8080)}
    servers = []
    for number, name in ((5005, "rasa-1"), (5006, "rasa-2"), (8000, "web"), (8080, "console")):
        server = ThreadingHTTPServer(("127.0.0.1", ports[number]), _Named)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    replace = {"listen [::]:443 ssl http2;": "", "listen [::]:80;": "",
               "listen 443 ssl": f"listen 127.0.0.1:{ports[443]} ssl", "listen 80;": f"listen 127.0.0.1:{ports[80]};",
               "listen 127.0.0.1:5000;": f"listen 127.0.0.1:{ports[5000]};"}
    replace.update({f"127.0.0.1:{n}": f"127.0.0.1:{ports[n]}" for n in (5005, 5006, 8000, 8080)})
    main = installed(tmp_path, replace)
    process = subprocess.Popen(nginx_command(nginx_binary, main), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports[443]), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=15)
        for server in servers:
            server.shutdown()


def https(port: int, name: str, path: str, method: str = "GET") -> tuple[int, str]:
    """A request for ``name`` (SNI and Host) to nginx on ``port``, trusting its self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPConnection(name, port, timeout=10)
    connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                          server_hostname=name)
    try:
        connection.request(method, path, body=b"x" if method == "POST" else None, headers={"Host": name})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_the_assistant_name_exposes_only_socketio_and_the_twilio_webhook(production: dict[str, int]) -> None:
    assistant = NAMES[0]
    assert https(production[443], assistant, "/socket.io/?EIO=4&transport=polling")[1].startswith("rasa-")
    assert https(production[443], assistant, "/webhooks/twilio/webhook", "POST")[1].startswith("rasa-")
    for path in ("/conversations/abc/tracker", "/webhooks/rest/webhook", "/model", "/status"):
        assert https(production[443], assistant, path)[0] == 404, path
    assert https(production[443], assistant, "/webhooks/twilio/webhook")[0] == 403  # GET: POST only


def test_the_chat_and_console_names_reach_their_servers(production: dict[str, int]) -> None:
    assert https(production[443], NAMES[1], "/healthz") == (200, "web GET /healthz")
    assert https(production[443], NAMES[2], "/login")[0] == 403  # 127.0.0.1 is not the clinic's network


def test_plain_http_is_redirected_to_https(production: dict[str, int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", production[80], timeout=10)
    connection.request("GET", "/socket.io/?EIO=4", headers={"Host": NAMES[0]})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{NAMES[0]}/socket.io/?EIO=4"


def test_the_internal_api_listener_spreads_requests_and_logs_no_query(production: dict[str, int],
                                                                       tmp_path: Path) -> None:
    answers = set()
    for _ in range(4):
        connection = http.client.HTTPConnection("127.0.0.1", production[5000], timeout=10)
        connection.request("GET", "/conversations/+15551234567/tracker?token=secret-token")
        answers.add(connection.getresponse().read().decode().split()[0])
    assert answers == {"rasa-1", "rasa-2"}
    log = (tmp_path / "log" / "clinic-access.log").read_text()
    assert "/conversations/-/tracker" in log
    assert not re.search(r"secret-token|15551234567", log)
