"""A request for a booking sent through the public inquiry form (``/inquiry``) becomes a lead.

``capture_inquiry`` is the whole rule, whoever calls it (the form, a test, a script):

- **What is accepted.** A surname and an e-mail address (so that the business can reply) are
  required; the first name, phone, what it is for, preferred date and message are optional.
  Each value is checked as the staff's own lead form checks it: the column lengths, the
  message's limit (``TEXT_LIMITS``), no control characters, an e-mail address that reads as
  one (stored lower-cased, as every address is matched), a phone number valid for its country
  (stored in E.164; a number without a country code is read in ``region``), and a preferred
  date (typed as pages show dates, "4 Dec 2026") from today to ``DAYS_AHEAD`` days ahead. Every problem is reported at once, by field
  (``InquiryError.problems``), and nothing is stored.
- **A blocked address** (by itself or by its domain) stores nothing at all, not even an audit
  row: the caller gets None and shows the person the same thanks as anyone, so the form
  never tells whether an address is blocked.
- **The same inquiry twice** (a double click, the browser sending the form again): the same
  address with the same message within ``REPEAT_WINDOW`` gives back the lead already made,
  not a second one.
- **The lead** starts as "new", from ``source`` ("Website form"), to be followed up on the
  next working day (Monday to Friday; a Friday, Saturday or Sunday inquiry on the Monday), so
  that it shows among the follow-ups due then. One audit event names the lead and the fields
  filled in, never what was typed.
"""

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.actions import ActionError
from crm.actions.block_email import ensure_not_blocked
from crm.formatting import DATE_HINT, day, local_now, parse_day
from crm.models import Lead
from crm.models.audit import record
from crm.models.base import TEXT_LIMITS, utcnow
from crm.validation import has_control_characters, normalize_email, normalize_phone

# Who the audit trail says made the lead: nobody signed in, the public form.
INQUIRY_FORM = "inquiry form"
SOURCE = "Website form"
DAYS_AHEAD = 5 * 366  # a wedding or a school's trip can be booked years ahead, not decades
REPEAT_WINDOW = timedelta(minutes=30)

# Field -> (the words a sentence uses for it, the most it may hold).
FIELDS = {
    "first_name": ("your first name", Lead.__table__.c.first_name.type.length),
    "surname": ("your surname", Lead.__table__.c.surname.type.length),
    "email": ("your e-mail address", Lead.__table__.c.email.type.length),
    "phone": ("your phone number", 40),  # as typed, with spaces; stored shorter (E.164)
    "purpose": ("what it is for", Lead.__table__.c.purpose.type.length),
    "message": ("your message", TEXT_LIMITS[("lead", "message")]),
}


class InquiryError(ActionError):
    """The inquiry was refused; ``problems`` says why, field by field (name -> sentence)."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(" ".join(self.problems.values()))


def capture_inquiry(
    session: Session,
    *,
    first_name: str | None,
    surname: str | None,
    email: str | None,
    phone: str | None,
    message: str | None,
    purpose: str | None,
    preferred_date: date | str | None,
    source: str = SOURCE,
    region: str = "GB",
    today: date | None = None,
) -> Lead | None:
    """Make a new lead from an inquiry, or None when its address is blocked (nothing is
    stored). Raises ``InquiryError`` on what cannot be accepted, before anything is written.
    ``today`` is the business's date (its time zone) unless given."""
    today = today or local_now().date()
    typed = {"first_name": first_name, "surname": surname, "email": email, "phone": phone,
             "purpose": purpose, "message": message}
    values, problems = _checked(typed, region)
    try:
        values["preferred_date"] = preferred_day(preferred_date, today=today)
    except ValueError as exc:
        problems["preferred_date"] = str(exc)
    if problems:
        raise InquiryError(problems)

    try:
        ensure_not_blocked(session, values["email"], what="lead")
    except ActionError:
        return None  # said nowhere: the person is thanked like anyone else

    again = _same_inquiry(session, values["email"], values["message"], source)
    if again is not None:
        return again

    lead = Lead(**values, source=source, status="new", follow_up_on=next_working_day(today))
    session.add(lead)
    session.flush()
    filled = sorted(name for name, value in values.items() if value is not None)
    record(session, actor=None, label=INQUIRY_FORM, verb="create", subject_type="Lead",
           subject_id=lead.id, details={"fields": filled, "via": "inquiry_form"})
    session.flush()
    return lead


def next_working_day(today: date) -> date:
    """The next day from Monday to Friday after ``today``."""
    following = today + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def preferred_day(value: date | str | None, *, today: date) -> date | None:
    """The preferred date if it is one a booking can be made for: today or later, and at
    most ``DAYS_AHEAD`` days ahead; typed as pages show dates ("4 Dec 2026", read by
    ``parse_day``) or given as a date. ValueError with a sentence otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = parse_day(text[:40])
        except ValueError:
            raise ValueError(DATE_HINT) from None
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if value < today:
        raise ValueError(f"Choose a date from today ({day(today)}) onwards.")
    latest = today + timedelta(days=DAYS_AHEAD)
    if value > latest:
        raise ValueError(f"Choose a date before {day(latest)}: we cannot book further ahead.")
    return value


# -- steps ---------------------------------------------------------------------------------


def _checked(typed: dict[str, str | None], region: str) -> tuple[dict, dict[str, str]]:
    """(the values as stored, the problems by field)."""
    values: dict = {}
    problems: dict[str, str] = {}
    for name, raw in typed.items():
        words, limit = FIELDS[name]
        text = (raw or "").replace("\r\n", "\n").strip() or None
        values[name] = text
        if text is None:
            continue
        if has_control_characters(text):
            problems[name] = (f"Remove the control character (such as NUL) from {words}; it "
                              "cannot be stored.")
        elif len(text) > limit:
            problems[name] = f"Keep {words} to {limit:,} characters or fewer."
    if values["surname"] is None:
        problems["surname"] = "Enter your surname."
    if values["email"] is None:
        problems["email"] = "Enter your e-mail address, so that we can reply."
    if values["email"] is not None and "email" not in problems:
        try:
            values["email"] = normalize_email(values["email"])
        except ValueError as exc:
            why = str(exc).removeprefix("Not a valid e-mail address:").strip()
            why = why[:1].lower() + why[1:]  # "... address: an email address must have ..."
            problems["email"] = f"Check your e-mail address: {why}"
    if values["phone"] is not None and "phone" not in problems:
        try:
            values["phone"] = normalize_phone(values["phone"], region)
        except ValueError:
            problems["phone"] = ("Check your phone number: write it in digits, with the "
                                 "country code (such as +33) if it is from abroad.")
    return values, problems


def _same_inquiry(session: Session, email: str, message: str | None,
                  source: str) -> Lead | None:
    """The lead this address sent with this same message a moment ago, if any."""
    since = utcnow() - REPEAT_WINDOW
    query = select(Lead).where(Lead.email == email, Lead.created_at >= since,
                               Lead.source == source)
    query = query.where(Lead.message.is_(None) if message is None else Lead.message == message)
    return session.execute(query.order_by(Lead.id.desc()).limit(1)).scalar_one_or_none()
