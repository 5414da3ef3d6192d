"""The e-mail channel against a real SMTP server (aiosmtpd on 127.0.0.1): STARTTLS and
implicit TLS with a self-signed certificate made for the test by ``openssl``, login, and
plain SMTP without login."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from conflictlens.notify import deliver_due, parse_channels
from tests.needs import INSTALL, OPENSSL, require
from tests.test_notify import FINGERPRINT, T0, add_row, free_port, open_outbox, outbox

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    require(OPENSSL, f"needs openssl to make the test certificate ({INSTALL})")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            str(OPENSSL), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class Inbox:
    """aiosmtpd handler and authenticator: keeps every message and every login tried."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd answers a failure itself (535), as a real server does.
        return AuthResult(success=(login, password) == ("alerts", PASSWORD), handled=False)

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            raw = envelope.original_content or b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[Any]:
    """``start(mode)``: "starttls" (login required, over TLS only), "tls" (implicit TLS,
    login required) or "none" (plain, no login)."""
    started: list[Controller] = []

    def start(mode: str) -> tuple[Inbox, int]:
        inbox = Inbox()
        port = free_port()
        options: dict[str, Any] = {}
        if mode == "starttls":
            options = {
                "tls_context": server_context(certificate),
                "require_starttls": True,
                "authenticator": inbox.authenticate,
                "auth_required": True,
            }
        elif mode == "tls":
            options = {
                "ssl_context": server_context(certificate),
                "authenticator": inbox.authenticate,
                "auth_required": True,
                "auth_require_tls": False,  # the whole connection is TLS already
            }
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for controller in started:
        controller.stop()


def mail_channel(port: int, security: str, ca_file: Path | None, **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "from": "conflictlens <alerts@example.org>",
        "to": ["ops@example.org", "dev@example.org"],
        "timeout": 10,
    }
    if ca_file is not None:
        table["ca_file"] = str(ca_file)
    return table | extra


@pytest.fixture
def con(tmp_path: Path) -> Iterator[Any]:
    connection = open_outbox(tmp_path / "outbox.duckdb")
    yield connection
    connection.close()


def assert_alert_mail(message: EmailMessage, row: int) -> None:
    assert message["Subject"].startswith("[conflictlens] FIRING: doc-version-spike: PUT ")
    assert message["From"] == "conflictlens <alerts@example.org>"
    assert message["To"] == "ops@example.org, dev@example.org"
    assert message["Message-ID"] == f"<{row}-{FINGERPRINT}@example.org>"
    assert message["Idempotency-Key"] == f"{row}-{FINGERPRINT}"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    for part in (text.get_content(), html.get_content()):
        for needed in ("/api/v2/documents/{hex}", "VERSION_MISMATCH", "42 conflicts in 5m",
                       "threshold 10", "7f3a9c21", "10.0.0.7", "2026-11-20 09:55:00 UTC",
                       "https://dash.example/conflicts"):  # fmt: skip
            assert needed in part


# aiosmtpd advertises AUTH on an implicit-TLS port only with auth_require_tls off (it counts
# STARTTLS alone as TLS), and warns about that setting: our server is TLS from the first byte.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_is_sent_over_tls_with_login(con, smtp_server, certificate, security, monkeypatch):
    inbox, port = smtp_server(security)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    channels = parse_channels(
        {
            "mail": mail_channel(
                port, security, certificate[0], username="alerts", password_env="SMTP_PASSWORD"
            )
        }
    )
    row = add_row(con, "mail")

    summary = deliver_due(con, channels, T0)

    assert summary.delivered == 1, outbox(con)
    assert inbox.logins == [("alerts", PASSWORD)]
    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "alerts@example.org"
    assert envelope.rcpt_tos == ["ops@example.org", "dev@example.org"]
    (message,) = inbox.messages()
    assert_alert_mail(message, row)
    assert outbox(con)[row]["delivered_at"] == T0


def test_mail_without_tls_and_without_login(con, smtp_server):
    # Only for a relay on the same host or network: a login over plain SMTP is refused by the
    # config (see test_notify), so this mode never carries a password.
    inbox, port = smtp_server("none")
    channels = parse_channels({"mail": mail_channel(port, "none", None)})
    row = add_row(con, "mail")

    assert deliver_due(con, channels, T0).delivered == 1
    (message,) = inbox.messages()
    assert_alert_mail(message, row)


def test_a_refused_login_is_recorded_without_the_password(
    con, smtp_server, certificate, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    inbox, port = smtp_server("starttls")
    wrong = "wrong-password-value"
    (tmp_path / "pw").write_text(wrong + "\n")
    channels = parse_channels(
        {
            "mail": mail_channel(
                port,
                "starttls",
                certificate[0],
                username="alerts",
                password_file=str(tmp_path / "pw"),
            )
        }
    )
    row = add_row(con, "mail")

    summary = deliver_due(con, channels, T0)

    assert summary.failed == 1 and not inbox.envelopes
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN): all with it.
    assert inbox.logins and set(inbox.logins) == {("alerts", wrong)}
    error = outbox(con)[row]["last_error"]
    assert error.startswith(f"smtp 127.0.0.1:{port}: login refused: 535 ")
    shown = " ".join([error, caplog.text, repr(channels), json.dumps(summary.as_dict())])
    assert wrong not in shown


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(con, smtp_server, certificate):
    inbox, port = smtp_server("none")  # a server without STARTTLS
    channels = parse_channels({"mail": mail_channel(port, "starttls", certificate[0])})
    row = add_row(con, "mail")

    assert deliver_due(con, channels, T0).failed == 1
    assert not inbox.envelopes  # nothing went out in clear text
    assert outbox(con)[row]["last_error"] == (
        f"smtp 127.0.0.1:{port}: STARTTLS extension not supported by server."
    )


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_an_untrusted_certificate_is_a_failure(con, smtp_server):
    inbox, port = smtp_server("tls")
    channels = parse_channels({"mail": mail_channel(port, "tls", None)})  # system CAs only
    row = add_row(con, "mail")

    assert deliver_due(con, channels, T0).failed == 1
    assert not inbox.envelopes
    assert outbox(con)[row]["last_error"].startswith(
        f"smtp 127.0.0.1:{port}: TLS certificate not trusted: self-signed certificate"
    )
