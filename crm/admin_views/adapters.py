"""What turns a request into an action call and the outcome into a message: ids read from
the request (digits, in range, or nothing), ``run_action`` (the one place a view commits),
and readable sentences for stale edits and integrity errors (never SQL)."""

from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from crm.actions import ActionError
from crm.extensions import db
from crm.ledger import LedgerError

STALE_MESSAGE = (
    "Someone else changed this record while you were editing it. Nothing was saved: "
    "reload the page to see their changes, then apply yours again."
)

# Constraint name fragments -> what to tell the user (never the SQL).
INTEGRITY_MESSAGES = {
    "uq_contact_primary_per_customer": "A customer has one primary contact: untick Primary "
                                       "on the other contact first.",
    # SQLite names the columns of the partial unique index, not the index.
    "contact.customer_id": "A customer has one primary contact: untick Primary on the other "
                           "contact first.",
    "uq_user_email": "A staff user with that e-mail already exists.",
    "user.email": "A staff user with that e-mail already exists.",
    "portal_account.customer_id": "That customer already has a portal account.",
    "uq_portal_account_customer_id": "That customer already has a portal account.",
    "portal_account.email": "A portal account with that e-mail already exists.",
    "uq_portal_account_email": "A portal account with that e-mail already exists.",
    "uq_tag_name": "A tag with that name already exists.",
    "tag.name": "A tag with that name already exists.",
    # A long text past its column's limit (models/base.py TEXT_LIMITS), should anything but
    # the forms and actions, which check it first, try to write one.
    "_length": "A text is longer than its field holds; nothing was saved.",
    "FOREIGN KEY": "Other records still refer to this one, so it cannot be removed.",
    "foreign key": "Other records still refer to this one, so it cannot be removed.",
}

MAX_ID = 2**31 - 1  # PostgreSQL's integer: a larger id can name no row


def integrity_message(exc: IntegrityError) -> str:
    text = str(exc.orig)
    for fragment, message in INTEGRITY_MESSAGES.items():
        if fragment in text:
            return message
    return ("That change conflicts with other records (a duplicate or a broken link); "
            "nothing was saved.")


def record_id(value) -> int:
    """A primary key from a request, for ``request.args.get("id", type=record_id)``: ASCII
    digits only (``isdigit`` also takes ``١٢٣``) and within the column's range; anything
    else raises ValueError (so Flask gives None), never a database overflow."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        raise ValueError(f"not a record id: {text[:20]!r}")
    return int(text)


def record_ids(values) -> list[int]:
    """The valid ids among ``values``, first occurrence order, without repeats."""
    found: dict[int, None] = {}
    for value in values:
        try:
            found[record_id(value)] = None
        except ValueError:
            continue
    return list(found)


def run_action(fn, /, **kwargs):
    """Run one action for the signed-in user in the request's transaction: commit what it
    did and return ``(result, None)``, or roll everything back and return ``(None, message)``
    with a sentence for the user. The one place a view turns an action into a commit."""
    try:
        result = fn(db.session, actor=current_user._get_current_object(), **kwargs)
        db.session.commit()
    except (ActionError, LedgerError) as exc:
        db.session.rollback()
        return None, str(exc)
    except StaleDataError:
        db.session.rollback()
        return None, STALE_MESSAGE
    except IntegrityError as exc:
        db.session.rollback()
        return None, integrity_message(exc)
    return result, None


class IdSafeLoader(QueryAjaxModelLoader):
    """Flask-Admin's look-up for a form's related-record field, reading the posted id with
    ``record_id``: a forged value (30 digits, text) names no record instead of reaching the
    database as an out-of-range integer. Its empty box says what to do, not Flask-Admin's
    "Please select model"."""

    def __init__(self, name, session, model, **options):
        options.setdefault("placeholder", "Type to search")
        super().__init__(name, session, model, **options)

    def get_one(self, pk):
        try:
            key = record_id(pk)
        except ValueError:
            return None
        return super().get_one(key)
