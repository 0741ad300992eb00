"""Outgoing e-mail, through the backend the settings name (crm.config ``MAIL_*``).

- ``outbox`` (development default, tests, and production without ``MAIL_SERVER``): each
  message is one RFC 5322 ``.eml`` file in ``MAIL_OUTBOX_DIR``, written atomically (a hidden
  temporary file renamed into place, so a reader never sees half a message), readable in
  the admin under Settings > Outbox and by any mail client.
- ``smtp``: ``MAIL_SERVER``/``MAIL_PORT``, STARTTLS unless ``MAIL_USE_TLS`` is off, a login
  when ``MAIL_USERNAME`` is set; the standard library's smtplib.

Never silently dropped: whatever stops a message (a bad address, a full disk, a
refused login, a rejected recipient) raises ``MailError`` with a sentence saying what, and
the caller decides what to tell the user. A run of many messages uses ``connection()`` so
that SMTP logs in once, not once per message.
"""

import os
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_binary_file, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

# (file name, content, MIME type), e.g. ("statement-C-000123.pdf", b"%PDF...", "application/pdf")
Attachment = tuple[str, bytes, str]
# <UTC time to the microsecond>Z-<random>.eml: sorts oldest to newest, and is the only shape
# the outbox view accepts (no path can hide in it).
OUTBOX_NAME = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}\.eml")
_NEWLINE = re.compile(r"[\r\n]")


class MailError(Exception):
    """A message could not be sent or stored; the text says what, for a person."""


@dataclass(frozen=True)
class Message:
    """One message. ``sender`` (a From such as "Acme Ltd <accounts@acme.example>") replaces
    ``MAIL_FROM`` for this message; ``reply_to`` adds a Reply-To."""

    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = field(default_factory=tuple)
    sender: str | None = None
    reply_to: str | None = None
    # A key that names this message for good (a job's statement to one customer): it goes
    # into the Message-ID and the outbox file's name, so ``find_sent`` can tell it was sent.
    key: str | None = None

    def keyed(self, key: str) -> "Message":
        from dataclasses import replace

        return replace(self, key=key)

    def __post_init__(self) -> None:
        if not _one_address(self.to):
            raise MailError(f"Not an e-mail address to send to: {self.to!r}.")
        for what, value in (("sender", self.sender), ("reply-to", self.reply_to)):
            if value is not None and not _one_address(value):
                raise MailError(f"Not an e-mail address for the {what}: {value!r}.")
        if _NEWLINE.search(self.subject or ""):
            raise MailError("An e-mail subject cannot contain a line break.")
        for name, content, mimetype in self.attachments:
            if not isinstance(content, bytes) or "/" not in mimetype or _NEWLINE.search(name):
                raise MailError(f"Attachment {name!r} needs bytes and a MIME type.")
        object.__setattr__(self, "attachments", tuple(self.attachments))


def _one_address(value: str) -> bool:
    _, address = parseaddr(value or "")
    return bool(address) and "@" in address and not _NEWLINE.search(value) and "," not in value


def build(message: Message, *, sender: str) -> EmailMessage:
    """The RFC 5322 message: a text part, an HTML alternative if given, the attachments.
    ``sender`` is the From unless the message names its own."""
    sender = message.sender or sender
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = sender
    email["To"] = message.to
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    # An explicit domain: without one, make_msgid asks DNS for this host's name.
    email["Message-ID"] = make_msgid(idstring=message.key, domain=_domain(sender))
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    for name, content, mimetype in message.attachments:
        maintype, subtype = mimetype.split("/", 1)
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return email


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


# --- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One message of the outbox, as the admin lists it."""

    name: str
    date: datetime | None
    to: str
    subject: str
    attachments: tuple[str, ...]


class Outbox:
    """A folder of ``.eml`` files, newest first. Readable only through names that match
    ``OUTBOX_NAME``, so a name from a URL can never leave the folder."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def send(self, email: EmailMessage, key: str | None = None) -> str:
        tag = _key_tag(key) if key else secrets.token_hex(4)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}Z-{tag}.eml"
        draft = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(email.as_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(draft, self.directory / name)
        except OSError as exc:
            with suppress(OSError):
                draft.unlink()
            raise MailError(f"Could not write the message to the outbox folder "
                            f"{self.directory}: {exc.strerror or exc}.") from exc
        return name

    def find(self, key: str) -> str | None:
        """The name of the message sent with ``key``, if the outbox holds it."""
        suffix = f"-{_key_tag(key)}.eml"
        try:
            candidates = [n for n in os.listdir(self.directory) if n.endswith(suffix)]
        except OSError:
            return None
        for name in candidates:
            stored = self.read(name)
            if stored is not None and key in str(stored.get("Message-ID", "")):
                return name
        return None

    def names(self) -> list[str]:
        """Every message's file name, newest first."""
        try:
            with os.scandir(self.directory) as entries:
                found = [e.name for e in entries if OUTBOX_NAME.fullmatch(e.name)]
        except FileNotFoundError:
            return []
        return sorted(found, reverse=True)

    def path(self, name: str) -> Path | None:
        """The file of a message, or None for a name that is not one (or no longer there)."""
        if not isinstance(name, str) or not OUTBOX_NAME.fullmatch(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None

    def forget(self, names) -> int:
        """Delete these messages (erasure: they hold a person's address, name and
        statement); how many were there. Names not in the outbox's shape are ignored."""
        removed = 0
        for name in names:
            path = self.path(name)
            if path is not None:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def read(self, name: str) -> EmailMessage | None:
        path = self.path(name)
        if path is None:
            return None
        with path.open("rb") as source:
            return message_from_binary_file(source, policy=policy.default)

    def summary(self, name: str) -> Stored | None:
        email = self.read(name)
        if email is None:
            return None
        try:
            date = email["Date"].datetime if email["Date"] else None
        except (AttributeError, TypeError, ValueError):
            date = None
        return Stored(
            name=name, date=date, to=str(email["To"] or ""), subject=str(email["Subject"] or ""),
            attachments=tuple(part.get_filename() or "(unnamed)"
                              for part in email.iter_attachments()),
        )


# --- SMTP ---------------------------------------------------------------------------------


class Smtp:
    """One SMTP session, opened at the first message and kept for the next ones."""

    def __init__(self, *, host: str, port: int, username: str | None, password: str | None,
                 use_tls: bool, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.use_tls = username, password, use_tls
        self._smtp: smtplib.SMTP | None = None

    def send(self, email: EmailMessage) -> str:
        smtp = self._session()
        try:
            smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError(f"The mail server refused the address {email['To']}.") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise MailError(f"The mail server {self.host}:{self.port} did not accept the "
                            f"message to {email['To']}: {exc}") from exc
        return str(email["Message-ID"])

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                self._smtp.noop()  # a server may drop an idle session; reconnect before sending
                return self._smtp
            except (smtplib.SMTPException, OSError):
                self._smtp = None
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(f"The mail server {self.host}:{self.port} refused the login of "
                            f"{self.username} (check MAIL_USERNAME and MAIL_PASSWORD).") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"Could not connect to the mail server {self.host}:{self.port}: "
                            f"{exc}") from exc
        self._smtp = smtp
        return smtp


def _key_tag(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:8]


# --- entry points -------------------------------------------------------------------------


def _config(config: dict | None) -> dict:
    if config is not None:
        return config
    from flask import current_app

    return current_app.config


def outbox(config: dict | None = None) -> Outbox:
    return Outbox(_config(config)["MAIL_OUTBOX_DIR"])


@contextmanager
def connection(config: dict | None = None) -> Iterator[Callable[[Message], str]]:
    """``with connection() as send: send(message)`` — one SMTP session for many messages.
    ``send`` returns the outbox file name or the SMTP Message-ID."""
    settings = _config(config)
    sender = settings["MAIL_FROM"]
    if settings["MAIL_BACKEND"] == "smtp":
        backend = Smtp(host=settings["MAIL_SERVER"], port=settings["MAIL_PORT"],
                       username=settings["MAIL_USERNAME"], password=settings["MAIL_PASSWORD"],
                       use_tls=settings["MAIL_USE_TLS"], timeout=settings["MAIL_TIMEOUT"])
    else:
        backend = Outbox(settings["MAIL_OUTBOX_DIR"])
    try:
        if isinstance(backend, Outbox):
            yield lambda message: backend.send(build(message, sender=sender), message.key)
        else:
            yield lambda message: backend.send(build(message, sender=sender))  # or its own
    finally:
        if isinstance(backend, Smtp):
            backend.close()


def send(message: Message, *, config: dict | None = None) -> str:
    """Send one message through the configured backend (raises ``MailError``)."""
    with connection(config) as deliver:
        return deliver(message)


def find_sent(key: str, *, config: dict | None = None) -> str | None:
    """Where the message sent with ``key`` is kept (its outbox file's name), or None when it
    was not sent or the backend cannot say (an SMTP server keeps no record to ask)."""
    settings = _config(config)
    if settings["MAIL_BACKEND"] == "smtp":
        return None
    return Outbox(settings["MAIL_OUTBOX_DIR"]).find(key)


def business_name() -> str:
    """The business as customers know it (``CRM_BUSINESS_NAME``), for subjects and bodies."""
    from flask import current_app

    return current_app.config["CRM_BUSINESS_NAME"]


def compose(to: str, subject: str, template: str, *,
            attachments: Sequence[Attachment] = (), sender: str | None = None,
            reply_to: str | None = None, **context) -> Message:
    """A message whose text is ``templates/email/<template>.txt`` (plain text, not
    HTML-escaped), given the business's name and currency as ``business_name`` and
    ``currency`` (``crm.business.compose`` gives the saved business's name, sender and
    reply-to instead of the settings')."""
    from flask import current_app, render_template

    context.setdefault("business_name", current_app.config["CRM_BUSINESS_NAME"])
    context.setdefault("currency", current_app.config["CRM_CURRENCY"])
    text = render_template(f"email/{template}.txt", **context)
    return Message(to=to, subject=subject, text=text, attachments=attachments, sender=sender,
                   reply_to=reply_to)
