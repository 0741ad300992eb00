"""Settings > Business: the business's name, address, tax and company numbers, contact and
bank details, payment terms, e-mail sender and logo, as documents and customer e-mails show
them (``crm.business`` reads them). One row, id 1, created by the first save.

Everything on the form is checked before anything is written, and every problem is said
next to its field at once (``FieldErrors``); a form loaded before someone else saved is
refused as stale. The logo is checked by its content, never its file name: a PNG or JPEG
of at most ``LOGO_MAX_BYTES`` that decodes, re-encoded here (scaled down to fit
``crm.business.LOGO_BOX``, its metadata dropped) so that what is stored is an image this
code wrote. The audit event names the fields that changed, never their values.
"""

import re
from dataclasses import dataclass
from io import BytesIO

import phonenumbers
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.portal_profile import FieldErrors
from crm.business import LOGO_BOX, LOGO_TYPES
from crm.models import User
from crm.models.audit import record
from crm.models.base import utcnow
from crm.models.settings import LOGO_MAX_BYTES, BusinessProfile
from crm.validation import has_control_characters, normalize_email

STALE = ("Someone else saved the business's details while you were editing them. Nothing "
         "was saved: the form now shows what they saved; make your changes again.")
SAVED = "The business's details are saved"
LOGO_SAID = {"added": "the logo is added", "replaced": "the new logo replaces the old one",
             "removed": "the logo is removed"}
TEXT_FIELDS = ("name", "address", "email", "phone", "website", "vat_number", "company_number",
               "bank_details", "payment_terms", "email_from", "reply_to")
MULTI_LINE = ("address", "bank_details", "payment_terms")
EMAILS = ("email", "email_from", "reply_to")
MAX_LINES = {"address": 6, "bank_details": 6}
TERMS_DAYS = (0, 365)
MAX_LOGO_PIXELS = 25_000_000  # past this a small file is a decompression bomb, not a logo
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_TAX_NUMBER = re.compile(r"[A-Z0-9]+")
_WEBSITE = re.compile(r"(https?://)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+"
                      r"(:\d{1,5})?(/\S*)?", re.IGNORECASE)


@dataclass(frozen=True)
class BusinessDetails:
    """The form as typed (text); the action reads and checks it."""

    name: str = ""
    address: str = ""
    email: str = ""
    phone: str = ""
    website: str = ""
    vat_number: str = ""
    company_number: str = ""
    bank_details: str = ""
    payment_terms_days: str = "30"
    payment_terms: str = ""
    email_from: str = ""
    reply_to: str = ""


def save_business_profile(
    session: Session,
    *,
    actor: User | None,
    details: BusinessDetails,
    version: int | None,
    logo: bytes | None = None,
    remove_logo: bool = False,
    region: str = "GB",
) -> ActionResult:
    """Save the business's details (and a new logo, or none), if nobody saved them since
    the form was loaded at ``version`` (0 or None: there was no profile yet)."""
    profile = session.get(BusinessProfile, 1)
    if (profile.version if profile is not None else 0) != (version or 0):
        raise ActionError(STALE)
    values, problems = _clean(details, region)
    new_logo = None
    if logo:
        try:
            new_logo = checked_logo(logo)
        except ValueError as exc:
            problems["logo"] = str(exc)
    if problems:
        raise FieldErrors(problems)

    created = profile is None
    if created:
        profile = BusinessProfile(id=1)
        session.add(profile)
    changed = [name for name, value in values.items() if getattr(profile, name) != value]
    for name in changed:
        setattr(profile, name, values[name])
    logo_change = _apply_logo(profile, new_logo, remove_logo)
    if not changed and logo_change is None:
        return ActionResult("update_business_profile", message="Nothing to change.")
    session.flush()
    audit = {"fields": sorted(changed)}
    if logo_change:
        audit["logo"] = logo_change
    record(session, actor=actor, verb="update_business_profile",
           subject_type="BusinessProfile", subject_id=profile.id, details=audit)
    session.flush()
    said = [SAVED] if changed else []
    if logo_change:
        said.append(LOGO_SAID[logo_change])
    said[0] = said[0][0].upper() + said[0][1:]
    return ActionResult("update_business_profile", changed=1, details=audit,
                        message="; ".join(said) + ".")


# --- the fields -------------------------------------------------------------------------

def _clean(details: BusinessDetails, region: str) -> tuple[dict, dict]:
    values: dict = {}
    problems: dict[str, str] = {}
    for name in TEXT_FIELDS:
        text = _text(getattr(details, name), multi_line=name in MULTI_LINE)
        limit = BusinessProfile.__table__.c[name].type.length
        if has_control_characters(text):
            problems[name] = "Remove the control characters (copied from another program?)."
        elif len(text) > limit:
            problems[name] = f"Use at most {limit:,} characters (this has {len(text):,})."
        elif name in MAX_LINES and text.count("\n") >= MAX_LINES[name]:
            problems[name] = f"Use at most {MAX_LINES[name]} lines."
        values[name] = text or None
    if not values["name"] and "name" not in problems:
        problems["name"] = "Enter the business's name, as customers know it."
    _check(values, problems, EMAILS, normalize_email)
    _check(values, problems, ("phone",), lambda value: _phone(value, region))
    _check(values, problems, ("website",), _website)
    _check(values, problems, ("vat_number",), _vat_number)
    _check(values, problems, ("company_number",), _company_number)
    try:
        values["payment_terms_days"] = _terms_days(details.payment_terms_days)
    except ValueError as exc:
        problems["payment_terms_days"] = str(exc)
    return values, problems


def _text(value: str | None, *, multi_line: bool) -> str:
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    if multi_line:
        return "\n".join(line.strip() for line in text.strip().split("\n"))
    return " ".join(text.split())


def _check(values: dict, problems: dict, names, normalize) -> None:
    for name in names:
        if values[name] is None or name in problems:
            continue
        try:
            values[name] = normalize(values[name])
        except ValueError as exc:
            problems[name] = str(exc)


def _phone(value: str, region: str) -> str:
    """Checked, and kept in the way it is dialled at home ("0121 496 0000"), or with its
    country code when it is abroad."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("Not a phone number: use digits, with the country code if "
                         "abroad.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number for that country.")
    home = phonenumbers.region_code_for_number(number) == region
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if home
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, style)


def _website(value: str) -> str:
    if not _WEBSITE.fullmatch(value):
        raise ValueError("Enter the website's address, such as www.example.com.")
    return value


def _compact(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value).upper()


def _vat_number(value: str) -> str:
    """A VAT registration number: 8 to 14 letters and digits once spaces, dots and hyphens
    are left out (GB 123 4567 89, NL123456789B01), kept as typed, in capitals."""
    compact = _compact(value)
    if not _TAX_NUMBER.fullmatch(compact):
        raise ValueError("A VAT number has only letters and digits, such as GB 123 4567 89.")
    if not 8 <= len(compact) <= 14:
        raise ValueError(f"A VAT number has 8 to 14 letters and digits (such as "
                         f"GB 123 4567 89); this has {len(compact)}.")
    return value.upper()


def _company_number(value: str) -> str:
    compact = _compact(value)
    if not _TAX_NUMBER.fullmatch(compact) or not 2 <= len(compact) <= 20:
        raise ValueError("A company number has 2 to 20 letters and digits, such as 01234567 "
                         "or SC123456.")
    return value.upper()


def _terms_days(value) -> int:
    text = str(value if value is not None else "").strip()
    low, high = TERMS_DAYS
    if not (text.isascii() and text.isdigit()) or len(text) > 3 or not low <= int(text) <= high:
        raise ValueError(f"Enter a whole number of days from {low} (due on receipt) to "
                         f"{high}.")
    return int(text)


# --- the logo ---------------------------------------------------------------------------

def _apply_logo(profile: BusinessProfile, new_logo, remove: bool) -> str | None:
    """What happened to the logo ("added", "replaced", "removed") or None."""
    if new_logo is not None:
        had = profile.logo is not None
        profile.logo, profile.logo_mime = new_logo
        profile.logo_updated_at = utcnow()
        return "replaced" if had else "added"
    if remove and profile.logo is not None:
        profile.logo = profile.logo_mime = profile.logo_updated_at = None
        return "removed"
    return None


def checked_logo(content: bytes) -> tuple[bytes, str]:
    """The logo as stored, (PNG or JPEG bytes, MIME type), or ValueError with the reason."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(content) > LOGO_MAX_BYTES:
        raise ValueError(f"The logo is {_size(len(content))}; it may be at most "
                         f"{_size(LOGO_MAX_BYTES)}. Save it smaller (a logo needs no more "
                         f"than {LOGO_BOX[0]} × {LOGO_BOX[1]} pixels).")
    kind = ("PNG" if content.startswith(PNG_MAGIC)
            else "JPEG" if content.startswith(JPEG_MAGIC) else None)
    if kind is None:
        what = "an SVG drawing" if _looks_like_svg(content) else "not a PNG or JPEG image"
        raise ValueError(f"That file is {what}. The logo must be a PNG or JPEG image: "
                         "export it as PNG from your drawing program.")
    try:
        with Image.open(BytesIO(content), formats=[kind]) as image:
            if image.width * image.height > MAX_LOGO_PIXELS:
                raise ValueError(f"The image is {image.width:,} × {image.height:,} pixels; "
                                 "a logo needs far fewer. Save it smaller.")
            image.load()
            picture = ImageOps.exif_transpose(image) if kind == "JPEG" else image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValueError(f"That {kind} file is damaged or incomplete: it does not open as "
                         "an image.") from None
    picture.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
    # Nothing of the file but its pixels: no comment, EXIF (a camera's GPS), ICC or text.
    picture.info = {k: v for k, v in picture.info.items() if k == "transparency"}
    return _encoded(picture, kind), {v: k for k, v in LOGO_TYPES.items()}[kind]


def _encoded(picture, kind: str) -> bytes:
    out = BytesIO()
    if kind == "JPEG":
        picture.convert("RGB").save(out, "JPEG", quality=90, optimize=True)
    else:
        if picture.mode not in ("RGB", "RGBA", "L", "LA"):
            picture = picture.convert("RGBA")
        picture.save(out, "PNG", optimize=True)
    return out.getvalue()


def _looks_like_svg(content: bytes) -> bool:
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) or b"<svg" in head


def _size(n: int) -> str:
    return f"{n / 1024:,.0f} KB"
