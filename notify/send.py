"""The transports: HTTP POST (urllib), SMTP (smtplib), a local command (subprocess).

Each either returns (delivered) or raises :class:`DeliveryError` with a one-line reason that
names the target the way :func:`notify.secret.redact_url` shows it and never holds a secret:
the reason is stored in the outbox's ``last_error`` and logged.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from importlib import metadata
from typing import Any
from urllib.parse import quote

from conflictlens._errors import NotifyError
from conflictlens.notify.channels import (
    ALERTMANAGER_API,
    ChannelConfig,
    CommandChannel,
    EmailChannel,
    HttpChannel,
)
from conflictlens.notify.render import (
    Alert,
    EmailContent,
    command_environment,
    render_alertmanager,
    render_email,
    render_postable_alerts,
    render_slack,
    render_webhook,
)
from conflictlens.notify.secret import Secret, redact_url

log = logging.getLogger("conflictlens.notify")

MAX_REASON = 300
_URL = re.compile(r"https?://[^\s\"'<>]+")
# Never handed to a command: serve's API token. The channels' own secret variables are added
# by the caller (``hidden_env``).
ALWAYS_HIDDEN_ENV = ("CONFLICTLENS_TOKEN",)


class DeliveryError(NotifyError):
    """A message was not delivered; ``str()`` is one line without secrets."""


def _user_agent() -> str:
    try:
        return f"conflictlens/{metadata.version('conflictlens')}"
    except metadata.PackageNotFoundError:
        return "conflictlens"


USER_AGENT = _user_agent()


def idempotency_key(outbox_id: int, fingerprint: str) -> str:
    """``<outbox id>-<fingerprint>``: the same for every attempt of a row, so a receiver can
    drop a repeat (sent, then the process died before the row was marked delivered)."""
    return f"{outbox_id}-{re.sub(r'[^A-Za-z0-9._:-]', '_', fingerprint)}"


@dataclass(frozen=True)
class Outgoing:
    """One outbox row on its way out."""

    outbox_id: int
    channel: str
    fingerprint: str
    payload: str  # the JSON stored in the outbox

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.outbox_id, self.fingerprint)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """One line, at most MAX_REASON characters, with every known secret (raw and
    percent-encoded) replaced by ``***`` and every URL cut to its origin."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret, safe="/:")}:
            text = text.replace(form, "***")
    # A URL already cut ("…") is left as it is, with the punctuation after it.
    text = _URL.sub(lambda m: m.group(0) if "…" in m.group(0) else redact_url(m.group(0)), text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def deliver(
    channel: ChannelConfig, outgoing: Outgoing, *, hidden_env: Collection[str] = ()
) -> None:
    """Render ``outgoing`` for the channel's type and send it.

    Raises ``RenderError`` when the payload cannot become a message (the row is at fault,
    not the channel) and ``DeliveryError`` when the transport failed.
    """
    alert = Alert.parse(outgoing.payload)
    key = outgoing.idempotency_key
    try:
        if isinstance(channel, HttpChannel) and channel.type == "alertmanager":
            push_alerts(channel, [alert], key)
        elif isinstance(channel, HttpChannel):
            if channel.type == "webhook" and channel.format == "alertmanager-v4":
                body = _json(render_alertmanager(alert, channel.name))
            elif channel.type == "webhook":
                body = render_webhook(outgoing.payload)
            else:
                body = _json(render_slack(alert))
            post_json(channel, body, key)
        elif isinstance(channel, EmailChannel):
            send_email(channel, render_email(alert), key)
        else:
            env = command_environment(
                alert, outbox_id=outgoing.outbox_id, channel=channel.name, idempotency_key=key
            )
            run_command(channel, outgoing.payload.encode("utf-8"), env, hidden_env=hidden_env)
    except DeliveryError as exc:
        # Belt and braces: whatever a transport put in the reason goes through the scrubber.
        raise DeliveryError(scrub(str(exc), channel.secrets())) from None


def _json(message: object) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


# --- HTTP ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: urllib would turn the POST into a GET without its body (and
    call it delivered), or carry the headers to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def alertmanager_endpoint(base: str) -> str:
    """``http://am:9093`` (or with a path prefix) → its ``/api/v2/alerts``; a URL that names
    the endpoint already is taken as it is."""
    base = base.rstrip("/")
    return base if base.endswith(ALERTMANAGER_API) else base + ALERTMANAGER_API


def push_alerts(
    channel: HttpChannel, alerts: list[Alert], key: str, now: dt.datetime | None = None
) -> list[str]:
    """POST the alerts to every Alertmanager of the channel (an HA group gets each alert at
    every member, as Prometheus sends them). Delivered when one took them: the others get
    them again with the next push while the alert fires, and a failure is logged. Raises
    DeliveryError when none took them; returns the failures otherwise."""
    moment = now or dt.datetime.now(dt.UTC)
    lifetime = dt.timedelta(seconds=4 * channel.resend_seconds)
    body = _json([item for a in alerts for item in render_postable_alerts(a, moment, lifetime)])
    failures = []
    for url in channel.urls:
        target = Secret(alertmanager_endpoint(url.reveal()), str(url))
        try:
            post_json(channel, body, key, url=target)
        except DeliveryError as exc:
            failures.append(str(exc))
    if len(failures) == len(channel.urls):
        raise DeliveryError("; ".join(failures))
    for failure in failures:
        log.warning(
            "channel %s: %s (delivered to the other Alertmanager(s))", channel.name, failure
        )
    return failures


def post_json(channel: HttpChannel, body: bytes, key: str, url: Secret | None = None) -> None:
    target = url or channel.url
    shown = str(target)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": key,
        **{name: value.reveal() for name, value in channel.headers},
    }
    request = urllib.request.Request(target.reveal(), data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=channel.timeout) as response:
            response.read(1 << 16)  # drain a little so the connection closes cleanly
    except urllib.error.HTTPError as exc:
        with exc:
            detail = _first_line(exc.read(2048))
        redirect = " (redirects are not followed)" if 300 <= exc.code < 400 else ""
        raise _failure(
            channel,
            f"POST {shown}: HTTP {exc.code} {exc.reason}{redirect}{f': {detail}' if detail else ''}",
        ) from None
    except urllib.error.URLError as exc:
        raise _failure(
            channel, f"POST {shown}: {_os_reason(exc.reason, channel.timeout)}"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _failure(channel, f"POST {shown}: {_os_reason(exc, channel.timeout)}") from None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0][:200] if text else ""


def _os_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {reason.verify_message}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = str(reason)
    return text or type(reason).__name__


def _failure(channel: ChannelConfig, reason: str) -> DeliveryError:
    return DeliveryError(scrub(reason, channel.secrets()))


# --- SMTP ------------------------------------------------------------------------------------


def build_email(channel: EmailChannel, content: EmailContent, key: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    domain = parseaddr(channel.sender)[1].rpartition("@")[2] or "conflictlens"
    # The same Message-ID on every attempt: mail stores and list servers drop the repeat.
    message["Message-ID"] = f"<{key}@{domain}>"
    message["Idempotency-Key"] = key
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def send_email(channel: EmailChannel, content: EmailContent, key: str) -> None:
    send_message(channel, build_email(channel, content, key))


def send_message(channel: EmailChannel, message: EmailMessage) -> None:
    """One SMTP session that sends ``message`` (an alert, or a report with its attachment)."""
    at = f"smtp {channel.host}:{channel.port}"
    context = ssl.create_default_context(cafile=channel.ca_file)
    smtp: smtplib.SMTP | None = None
    try:
        if channel.security == "tls":
            smtp = smtplib.SMTP_SSL(
                channel.host, channel.port, timeout=channel.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
        smtp.ehlo()
        if channel.security == "starttls":
            # Never falls back to clear text: a server without STARTTLS is a failure.
            smtp.starttls(context=context)
            smtp.ehlo()
        if channel.username is not None and channel.password is not None:
            smtp.login(channel.username, channel.password.reveal())
        refused = smtp.send_message(message)
        if refused:
            # Some recipients took it: sending again would repeat it to them.
            log.warning(
                "channel %s: %s refused %s; delivered to the others",
                channel.name,
                at,
                ", ".join(sorted(refused)),
            )
    except smtplib.SMTPAuthenticationError as exc:
        raise _failure(
            channel, f"{at}: login refused: {exc.smtp_code} {_smtp_text(exc.smtp_error)}"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise _failure(channel, f"{at}: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise _failure(
            channel, f"{at}: every recipient refused ({', '.join(sorted(exc.recipients))})"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise _failure(channel, f"{at}: {exc.smtp_code} {_smtp_text(exc.smtp_error)}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise _failure(channel, f"{at}: {_os_reason(exc, channel.timeout)}") from None
    finally:
        if smtp is not None:
            _quit(smtp)


def _smtp_text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _quit(smtp: smtplib.SMTP) -> None:
    # The message is accepted once DATA is answered: a failing QUIT must not undo that.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


# --- command ---------------------------------------------------------------------------------


def run_command(
    channel: CommandChannel,
    stdin: bytes,
    alert_env: dict[str, str],
    *,
    hidden_env: Collection[str] = (),
) -> None:
    program = channel.argv[0]
    hidden = set(hidden_env) | set(ALWAYS_HIDDEN_ENV)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in hidden and not k.startswith("CONFLICTLENS_ALERT_")
    }
    env.update(alert_env)
    try:
        process = subprocess.Popen(
            channel.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except FileNotFoundError:
        raise _failure(channel, f"command not found: {program}") from None
    except PermissionError:
        raise _failure(channel, f"command not executable: {program}") from None
    except OSError as exc:
        raise _failure(channel, f"command {program}: {_os_reason(exc, channel.timeout)}") from None
    try:
        _, err = process.communicate(stdin, timeout=channel.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise _failure(
            channel, f"command {program} did not finish within {channel.timeout:g} s (killed)"
        ) from None
    if process.returncode != 0:
        last = _last_line(err)
        status = (
            f"was killed by signal {-process.returncode}"
            if process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        raise _failure(channel, f"command {program} {status}{f': {last}' if last else ''}")


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
