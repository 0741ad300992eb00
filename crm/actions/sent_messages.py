"""Every e-mail sent about a customer is indexed (``sent_message``): where the mail backend
keeps it — the outbox file's name, or the SMTP Message-ID — so that erasing the customer
(``crm.actions.redact``) removes the stored messages without reading every file of the
outbox. Statements, invoices and the portal's invitations and links all go through here."""

from sqlalchemy.orm import Session

from crm import mail
from crm.models import SentMessage


def index_sent(session: Session, *, customer_id: int, kind: str, sent) -> None:
    """Note where the message ``send`` returned ``sent`` for is kept."""
    reference = str(sent or "")
    backend = "outbox" if mail.OUTBOX_NAME.fullmatch(reference) else "smtp"
    session.add(SentMessage(customer_id=customer_id, kind=kind, backend=backend,
                            reference=reference[:255]))
