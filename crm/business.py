"""The business as its customers see it, for the documents and e-mails: its name, address,
tax and company numbers, contact details, bank details, payment terms, e-mail sender and
logo, read from the one ``BusinessProfile`` row (Settings > Business).

Until that row exists everything reads as before it did: the name is ``CRM_BUSINESS_NAME``,
e-mail goes from ``MAIL_FROM``, no address or logo is printed and payment terms are 30 days.

The logo is kept as the settings page stored it (a PNG or JPEG it re-encoded, at most
``LOGO_BOX`` pixels); the PDFs take it as a ``data:`` URI (the PDF renderer reads no file
but its fonts) and the portal's header a small copy of it. Both are made once per logo
version and process, so a run of 250 statements decodes it once.
"""

import base64
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import formataddr
from io import BytesIO
from threading import Lock

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from crm import mail
from crm.extensions import db
from crm.models.settings import BusinessProfile

DEFAULT_NAME = "Our business"
DEFAULT_TERMS_DAYS = 30
LOGO_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
LOGO_BOX = (800, 320)  # what an uploaded logo is scaled down to fit (pixels)
HEADER_LOGO_HEIGHT = 80  # the portal header's copy: 40 px shown, twice for sharp screens
PDF_LOGO_BOX_CM = (6.0, 2.2)  # the largest a logo is printed at on a document


@dataclass(frozen=True)
class Logo:
    content: bytes
    mime: str
    width: int  # pixels
    height: int

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.content).decode('ascii')}"

    def printed_size(self) -> tuple[float, float]:
        """(width, height) in centimetres: fitted into ``PDF_LOGO_BOX_CM``, aspect kept."""
        box_w, box_h = PDF_LOGO_BOX_CM
        scale = min(box_w / self.width, box_h / self.height)
        return round(self.width * scale, 2), round(self.height * scale, 2)


@dataclass(frozen=True)
class Identity:
    """What documents and e-mails print about the business (fallbacks filled in)."""

    name: str
    address: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    vat_number: str | None = None
    company_number: str | None = None
    bank_details: tuple[str, ...] = ()
    payment_terms_days: int = DEFAULT_TERMS_DAYS
    payment_terms: str | None = None
    email_from: str | None = None
    reply_to: str | None = None
    logo_mime: str | None = None
    logo_updated_at: datetime | None = None
    version: int | None = None  # None: nothing saved yet (the fallbacks)
    _logo: "Logo | None" = field(default=None, repr=False, compare=False)

    @property
    def has_logo(self) -> bool:
        return self.logo_updated_at is not None and self.logo_mime in LOGO_TYPES

    @property
    def logo_stamp(self) -> str:
        """Changes with every new logo: the cache key of its URL."""
        return self.logo_updated_at.strftime("%Y%m%d%H%M%S%f") if self.has_logo else ""

    @property
    def logo(self) -> Logo | None:
        return self._logo

    @property
    def registration(self) -> list[str]:
        """"VAT no. GB123456789", "Company no. 01234567": what a letterhead must say."""
        lines = []
        if self.vat_number:
            lines.append(f"VAT no. {self.vat_number}")
        if self.company_number:
            lines.append(f"Company no. {self.company_number}")
        return lines

    @property
    def contact(self) -> list[str]:
        return [value for value in (self.phone, self.email, self.website) if value]

    @property
    def terms(self) -> str:
        """The payment terms as printed: the wording given, else said from the days."""
        if self.payment_terms:
            return self.payment_terms
        if self.payment_terms_days == 0:
            return "Payment is due on receipt of the invoice."
        return f"Payment is due within {self.payment_terms_days} days of the invoice date."

    def sender(self, fallback: str) -> str:
        """The From of customer e-mails: the business's name at its sender address, else
        ``fallback`` (``MAIL_FROM``)."""
        if not self.email_from:
            return fallback
        return formataddr((self.name, self.email_from))

    def signature(self) -> list[str]:
        """The lines under "Kind regards," in a text e-mail."""
        return [self.name, *self.contact]


def identity(session: Session | None = None, *, with_logo: bool = False) -> Identity:
    """The business's identity (the application's session by default); the settings'
    ``CRM_BUSINESS_NAME`` until a profile is saved. ``with_logo`` also reads the logo
    itself, for a document."""
    session = session if session is not None else db.session
    fallback_name = _configured_name()
    row = session.get(BusinessProfile, 1, options=[defer(BusinessProfile.logo)])
    if row is None:
        return Identity(name=fallback_name or DEFAULT_NAME)
    found = Identity(
        name=row.name or fallback_name or DEFAULT_NAME,
        address=_lines(row.address),
        email=row.email, phone=row.phone, website=row.website,
        vat_number=row.vat_number, company_number=row.company_number,
        bank_details=_lines(row.bank_details),
        payment_terms_days=(DEFAULT_TERMS_DAYS if row.payment_terms_days is None
                            else row.payment_terms_days),
        payment_terms=row.payment_terms, email_from=row.email_from, reply_to=row.reply_to,
        logo_mime=row.logo_mime, logo_updated_at=row.logo_updated_at, version=row.version,
    )
    if with_logo and found.has_logo:
        found = _with_logo(session, found)
    return found


def _configured_name() -> str:
    try:
        return current_app.config.get("CRM_BUSINESS_NAME") or DEFAULT_NAME
    except RuntimeError:  # no application context (a script)
        return DEFAULT_NAME


def _with_logo(session: Session, found: Identity) -> Identity:
    key = ("logo", found.logo_stamp)
    logo = _CACHE.get(key, _MISSING)
    if logo is _MISSING:
        content = session.scalar(select(BusinessProfile.logo).where(BusinessProfile.id == 1))
        logo = None
        if content:
            try:
                width, height = image_size(bytes(content))
                logo = Logo(bytes(content), found.logo_mime, width, height)
            except ValueError:
                logo = None  # stored by some path that did not check it: print no logo
        _remember(key, logo)
    return replace(found, _logo=logo)


# The logo of the newest version, and what is made of it, by (what, logo version): read and
# made once per process, whatever the number of documents or pages.
_CACHE: dict[tuple[str, str], object] = {}
_CACHE_LOCK = Lock()
_MISSING = object()


def _remember(key: tuple[str, str], value) -> None:
    with _CACHE_LOCK:
        for old in [k for k in _CACHE if k[1] != key[1]]:
            _CACHE.pop(old, None)
        _CACHE[key] = value


def logo_content(session: Session) -> tuple[bytes, str] | None:
    """The stored logo and its MIME type (for the staff's logo URL), or None."""
    row = session.execute(select(BusinessProfile.logo, BusinessProfile.logo_mime)
                          .where(BusinessProfile.id == 1)).one_or_none()
    if row is None or not row.logo or row.logo_mime not in LOGO_TYPES:
        return None
    return bytes(row.logo), row.logo_mime


def header_logo_uri(session: Session, found: Identity) -> str | None:
    """A small PNG copy of the logo as a ``data:`` URI, for a page's header (the portal),
    made once per logo version."""
    if not found.has_logo:
        return None
    key = ("header", found.logo_stamp)
    uri = _CACHE.get(key, _MISSING)
    if uri is _MISSING:
        full = found.logo or _with_logo(session, found).logo
        uri = _header_copy(full) if full is not None else None
        _remember(key, uri)
    return uri


def _header_copy(logo: Logo) -> str:
    from PIL import Image

    with Image.open(BytesIO(logo.content)) as image:
        image.load()
        if image.height > HEADER_LOGO_HEIGHT:
            width = max(1, round(image.width * HEADER_LOGO_HEIGHT / image.height))
            image = image.resize((width, HEADER_LOGO_HEIGHT), Image.Resampling.LANCZOS)
        out = BytesIO()
        image.save(out, "PNG", optimize=True)
    return Logo(out.getvalue(), "image/png", image.width, image.height).data_uri()


def image_size(content: bytes) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG from its header; ValueError if it is neither."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(content)) as image:
            if image.format not in LOGO_TYPES.values():
                raise ValueError("not a PNG or JPEG image")
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError("not an image") from exc


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def compose(to: str, subject: str, template: str, *, session: Session | None = None,
            attachments=(), **context) -> "mail.Message":
    """A customer e-mail (``crm.mail.compose``) from the business: its name in the text
    (``business_name``) and signature (``business``: the ``Identity``), sent from its
    sender address with its reply-to when they are saved (else ``MAIL_FROM``)."""
    found = identity(session)
    context.setdefault("business_name", found.name)
    context.setdefault("business", found)
    sender = found.sender(current_app.config["MAIL_FROM"]) if found.email_from else None
    return mail.compose(to, subject, template, attachments=attachments, sender=sender,
                        reply_to=found.reply_to or None, **context)
