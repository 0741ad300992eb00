"""Outgoing e-mail: the outbox folder (one .eml per message, readable by any mail
client, written atomically), SMTP through a small local server, and the settings that choose
between them. Nothing is ever silently dropped: every failure is a MailError with a sentence."""

import logging
import os
import socketserver
import stat
import threading
from email import message_from_bytes, policy
from email.utils import parseaddr

import pytest

from crm import mail
from crm.config import ConfigError, load_config
from crm.mail import MailError, Message, Outbox

PDF = b"%PDF-1.4\n\x00\xff\xfe binary \r\n bytes\n%%EOF"
SENDER = "Shop <shop@example.com>"


def outbox_config(directory) -> dict:
    return {"MAIL_BACKEND": "outbox", "MAIL_OUTBOX_DIR": str(directory), "MAIL_FROM": SENDER}


def statement_message(to="ann@example.com", **overrides) -> Message:
    values = dict(to=to, subject="Your statement – März", text="Dear Ann,\nattached.\n",
                  attachments=[("statement-C-000001.pdf", PDF, "application/pdf")])
    values.update(overrides)
    return Message(**values)


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


# --- the outbox ---------------------------------------------------------------------------

def test_the_outbox_writes_one_rfc5322_file_that_parses_back_intact(tmp_path):
    name = mail.send(statement_message(html="<p>Dear Ann</p>"), config=outbox_config(tmp_path))

    assert [p.name for p in tmp_path.iterdir()] == [name]
    raw = (tmp_path / name).read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n")  # CRLF line ends, as RFC 5322 says
    email = parse(raw)
    assert email["From"] == SENDER
    assert email["To"] == "ann@example.com"
    assert email["Subject"] == "Your statement – März"
    assert email["Message-ID"].endswith("@example.com>")
    assert email["Date"].datetime is not None
    assert email.get_body(("plain",)).get_content() == "Dear Ann,\r\nattached.\r\n"
    assert email.get_body(("html",)).get_content().strip() == "<p>Dear Ann</p>"
    [attachment] = list(email.iter_attachments())
    assert attachment.get_filename() == "statement-C-000001.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


def test_outbox_files_are_private_and_no_draft_is_left(tmp_path):
    box = tmp_path / "outbox"
    name = mail.send(statement_message(), config=outbox_config(box))

    assert stat.S_IMODE((box / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(box.stat().st_mode) == 0o700
    assert [p.name for p in box.iterdir()] == [name]


def test_a_failed_write_raises_and_leaves_no_file(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mail.os, "replace", full_disk)

    with pytest.raises(MailError, match="No space left on device"):
        mail.send(statement_message(), config=outbox_config(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_outbox_is_an_error_not_a_lost_message(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")

    with pytest.raises(MailError, match="outbox folder"):
        mail.send(statement_message(), config=outbox_config(blocker / "outbox"))


def test_the_outbox_lists_newest_first_and_summarises(tmp_path):
    config = outbox_config(tmp_path)
    names = [mail.send(statement_message(to=f"c{i}@example.com", subject=f"Message {i}"),
                       config=config) for i in range(3)]
    (tmp_path / "notes.txt").write_text("not a message")

    box = mail.outbox(config)
    assert box.names() == sorted(names, reverse=True)
    summary = box.summary(names[2])
    assert (summary.to, summary.subject) == ("c2@example.com", "Message 2")
    assert summary.attachments == ("statement-C-000001.pdf",)
    assert summary.date is not None


@pytest.mark.parametrize("name", [
    "../secret_key", "/etc/passwd", "..%2Fsecret_key", "20260101T000000000000Z-0000000g.eml",
    "20260101T000000000000Z-00000000.eml/../../x", "x.eml", "", None,
])
def test_the_outbox_reads_only_its_own_file_names(tmp_path, name):
    (tmp_path / "secret_key").write_text("do not show")
    box = Outbox(tmp_path / "outbox")
    mail.send(statement_message(), config=outbox_config(box.directory))

    assert box.path(name) is None
    assert box.read(name) is None


def test_a_missing_outbox_folder_is_an_empty_outbox(tmp_path):
    assert Outbox(tmp_path / "never-made").names() == []


@pytest.mark.parametrize("overrides, problem", [
    ({"to": ""}, "address"),
    ({"to": "no-at-sign"}, "address"),
    ({"to": "a@example.com\r\nBcc: everyone@example.com"}, "address"),
    ({"to": "a@example.com, b@example.com"}, "address"),
    ({"subject": "Hello\r\nBcc: everyone@example.com"}, "line break"),
    ({"attachments": [("x.pdf", "not bytes", "application/pdf")]}, "bytes"),
])
def test_a_malformed_message_is_refused_before_anything_is_written(tmp_path, overrides,
                                                                    problem):
    with pytest.raises(MailError, match=problem):
        mail.send(statement_message(**overrides), config=outbox_config(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- SMTP, against a small server on 127.0.0.1 ----------------------------------------------

class SmtpStub(socketserver.ThreadingTCPServer):
    """Enough SMTP to receive messages: EHLO (offering AUTH PLAIN), AUTH, MAIL, RCPT (refusing
    addresses at refused.example), DATA, NOOP, RSET, QUIT. Records sessions and messages."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.logins: list[str] = []


class _SmtpSession(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        server: SmtpStub = self.server
        server.sessions += 1
        self.reply("220 stub ESMTP")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-stub\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                import base64

                _, user, password = base64.b64decode(command.split()[-1]).split(b"\0")
                server.logins.append(user.decode())
                self.reply("235 ok" if password == b"right" else "535 bad credentials")
            elif verb == "MAIL":
                sender, recipients = parseaddr(command[10:])[1], []
                self.reply("250 ok")
            elif verb == "RCPT":
                address = parseaddr(command[8:])[1]
                if address.endswith("@refused.example"):
                    self.reply("550 no such user")
                else:
                    recipients.append(address)
                    self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                server.messages.append((sender, recipients, data))
                self.reply("250 queued")
            elif verb in ("NOOP", "RSET"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server():
    server = SmtpStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def smtp_config(server, **overrides) -> dict:
    config = {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1",
              "MAIL_PORT": server.server_address[1], "MAIL_USERNAME": None,
              "MAIL_PASSWORD": None, "MAIL_USE_TLS": False, "MAIL_TIMEOUT": 5,
              "MAIL_FROM": SENDER}
    config.update(overrides)
    return config


def test_smtp_delivers_the_message_with_its_attachment_intact(smtp_server):
    message_id = mail.send(statement_message(), config=smtp_config(smtp_server))

    [(sender, recipients, data)] = smtp_server.messages
    assert (sender, recipients) == ("shop@example.com", ["ann@example.com"])
    email = parse(data)
    assert email["Message-ID"] == message_id
    assert email["Subject"] == "Your statement – März"
    [attachment] = list(email.iter_attachments())
    assert attachment.get_content() == PDF


def test_smtp_logs_in_once_and_keeps_one_session_for_a_run(smtp_server):
    config = smtp_config(smtp_server, MAIL_USERNAME="shop", MAIL_PASSWORD="right")
    with mail.connection(config) as send:
        for i in range(3):
            send(statement_message(to=f"c{i}@example.com"))

    assert smtp_server.sessions == 1
    assert smtp_server.logins == ["shop"]
    assert [r for _, r, _ in smtp_server.messages] == [[f"c{i}@example.com"] for i in range(3)]


def test_a_refused_login_is_a_clear_error(smtp_server):
    config = smtp_config(smtp_server, MAIL_USERNAME="shop", MAIL_PASSWORD="wrong")

    with pytest.raises(MailError, match="refused the login of shop"):
        mail.send(statement_message(), config=config)
    assert smtp_server.messages == []


def test_a_refused_recipient_is_a_clear_error(smtp_server):
    with pytest.raises(MailError, match="refused the address nobody@refused.example"):
        mail.send(statement_message(to="nobody@refused.example"),
                  config=smtp_config(smtp_server))
    assert smtp_server.messages == []


def test_no_mail_server_listening_is_a_clear_error(smtp_server):
    config = smtp_config(smtp_server)
    smtp_server.shutdown()
    smtp_server.server_close()

    with pytest.raises(MailError, match="Could not connect to the mail server 127.0.0.1"):
        mail.send(statement_message(), config=config)


# --- settings -----------------------------------------------------------------------------

@pytest.fixture
def environment(monkeypatch):
    for name in ("CRM_ENV", "SECRET_KEY", "MAIL_BACKEND", "MAIL_SERVER", "MAIL_PORT",
                 "MAIL_FROM", "MAIL_OUTBOX_DIR", "MAIL_USE_TLS", "MAIL_USERNAME",
                 "MAIL_PASSWORD", "MAIL_TIMEOUT", "CRM_BUSINESS_NAME"):
        monkeypatch.delenv(name, raising=False)
    # Production also needs the address of e-mailed links (tested in test_config.py).
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.com")
    return monkeypatch


def test_development_defaults_to_the_outbox_in_the_instance_folder(environment, tmp_path):
    config = load_config(str(tmp_path))

    assert config["MAIL_BACKEND"] == "outbox"
    assert config["MAIL_OUTBOX_DIR"] == str(tmp_path / "outbox")
    assert config["CRM_BUSINESS_NAME"] == "Our business"


def test_a_mail_server_switches_to_smtp_with_tls(environment, tmp_path):
    environment.setenv("MAIL_SERVER", "smtp.example.com")
    environment.setenv("MAIL_USERNAME", "shop")

    config = load_config(str(tmp_path))

    assert (config["MAIL_BACKEND"], config["MAIL_SERVER"], config["MAIL_PORT"]) == (
        "smtp", "smtp.example.com", 587)
    assert config["MAIL_USE_TLS"] is True
    assert config["MAIL_USERNAME"] == "shop"


def test_production_without_a_mail_server_uses_the_outbox_and_warns(environment, tmp_path,
                                                                    caplog):
    environment.setenv("CRM_ENV", "production")
    environment.setenv("SECRET_KEY", "s" * 64)

    with caplog.at_level(logging.WARNING, logger="crm.mail"):
        config = load_config(str(tmp_path))

    assert config["MAIL_BACKEND"] == "outbox"
    assert "No MAIL_SERVER in production" in caplog.text


@pytest.mark.parametrize("variables, problem", [
    ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND must be one of"),
    ({"MAIL_BACKEND": "smtp"}, "needs MAIL_SERVER"),
    ({"MAIL_SERVER": "smtp.example.com", "MAIL_PORT": "submission"}, "must be numbers"),
    ({"MAIL_SERVER": "smtp.example.com", "CRM_ENV": "production", "SECRET_KEY": "s" * 64},
     "MAIL_FROM must be set"),
])
def test_unusable_mail_settings_refuse_to_start(environment, tmp_path, variables, problem):
    for name, value in variables.items():
        environment.setenv(name, value)

    with pytest.raises(ConfigError, match=problem):
        load_config(str(tmp_path))


def test_compose_renders_the_statement_e_mail_with_the_business_name(app, monkeypatch):
    from datetime import date
    from decimal import Decimal

    from crm.statements import position_of

    monkeypatch.setitem(app.config, "CRM_BUSINESS_NAME", "Acme & Sons <Tours>")
    with app.test_request_context():
        message = mail.compose(
            "ann@example.com", "Statement", "statement", name="Ann <b>", reference="C-000001",
            as_of=date(2025, 3, 1), currency="GBP", balance=Decimal("1234.50"),
            overdue=Decimal("100.00"),
            position=position_of(overdue=Decimal("100.00"), not_yet_due=Decimal("1134.50"),
                                 account_credit=Decimal("0.00")),
        )

    assert "Dear Ann <b>," in message.text  # plain text: nothing HTML-escaped
    assert "Overdue £100.00, not yet due £1,134.50, balance £1,234.50." in message.text
    assert message.text.rstrip().endswith("Acme & Sons <Tours>")
    assert os.linesep not in message.subject
