"""A staff user's own list settings: the columns they chose for a list, and their saved
filters ("my overdue over 60 days").

- ``choose_columns``: remember the columns (in the list's order) the user wants on a list;
  only columns the caller says the user's role may see.
- ``reset_columns``: back to the list's default columns.
- ``save_filter``: remember a list query under a name (the same name again replaces it).
- ``delete_filter``: forget one; only the user's own.
- ``list_query``: the canonical query string of a list, keeping only the arguments the list
  knows (what ``save_filter`` stores, and all a saved filter can ever lead to).

These are a person's view of the lists, not business records: nothing here is audited, and
every function acts only on rows of the acting user.
"""

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.models import User
from crm.models.settings import ListPreference, SavedFilter
from crm.validation import has_control_characters

NAME_MAX = 80  # SavedFilter.name
QUERY_MAX = 1000  # SavedFilter.query
VIEW_MAX = 40  # the list's slug
MAX_FILTERS = 50  # per user and list: a menu, not a database


def choose_columns(session: Session, *, actor: User, view: str, columns: Iterable[str],
                   allowed: list[str]) -> ActionResult:
    """Show ``columns`` on list ``view`` for ``actor``, in the order of ``allowed`` (the
    list's columns that the actor's role may see)."""
    chosen = list(dict.fromkeys(columns))
    refused = [name for name in chosen if name not in allowed]
    if refused:
        raise ActionError("Only the columns offered for this list can be chosen; nothing "
                          "was changed.")
    if not chosen:
        raise ActionError("Choose at least one column (or Reset to the list's own); nothing "
                          "was changed.")
    ordered = [name for name in allowed if name in chosen]
    preference = _preference(session, actor, view)
    if preference is not None and preference.columns == ordered:
        return ActionResult(verb="choose_columns", message="Those are already your columns.")
    if preference is None:
        session.add(ListPreference(user_id=actor.id, view=_slug(view), columns=ordered))
    else:
        preference.columns = ordered
    session.flush()
    return ActionResult(verb="choose_columns", changed=1,
                        message=f"Columns saved: {len(ordered)} shown on this list.")


def reset_columns(session: Session, *, actor: User, view: str) -> ActionResult:
    """Forget ``actor``'s columns for ``view``: the list shows its default ones again."""
    removed = session.execute(delete(ListPreference).where(
        ListPreference.user_id == actor.id, ListPreference.view == _slug(view))).rowcount
    session.flush()
    return ActionResult(verb="reset_columns", changed=removed,
                        message="Columns reset to the list's own." if removed
                        else "This list already shows its own columns.")


def save_filter(session: Session, *, actor: User, view: str, name: str,
                query: str) -> ActionResult:
    """Remember ``query`` (from ``list_query``) under ``name`` on list ``view``; a filter of
    the same name is replaced."""
    name = " ".join((name or "").split())
    if not name:
        raise ActionError("Give the filter a name; nothing was saved.")
    if len(name) > NAME_MAX or has_control_characters(name):
        raise ActionError(f"A filter's name is at most {NAME_MAX} ordinary characters; "
                          "nothing was saved.")
    if len(query) > QUERY_MAX or has_control_characters(query):
        raise ActionError(f"That search and filter are longer than a saved filter holds "
                          f"({QUERY_MAX:,} characters); nothing was saved.")
    if not query:
        raise ActionError("The list has no search, filter or sort to save; nothing was saved.")
    slug = _slug(view)
    existing = session.scalars(select(SavedFilter).where(
        SavedFilter.user_id == actor.id, SavedFilter.view == slug,
        SavedFilter.name == name)).one_or_none()
    if existing is not None:
        existing.query = query
        session.flush()
        return ActionResult(verb="save_filter", changed=1, details={"id": existing.id},
                            message=f"Saved filter “{name}” updated.")
    count = session.scalar(select(func.count()).select_from(SavedFilter).where(
        SavedFilter.user_id == actor.id, SavedFilter.view == slug))
    if count >= MAX_FILTERS:
        raise ActionError(f"You have {MAX_FILTERS} saved filters on this list: delete one "
                          "first; nothing was saved.")
    saved = SavedFilter(user_id=actor.id, view=slug, name=name, query=query)
    session.add(saved)
    session.flush()
    return ActionResult(verb="save_filter", changed=1, details={"id": saved.id},
                        message=f"Filter saved as “{name}”.")


def delete_filter(session: Session, *, actor: User, filter_id: int) -> ActionResult:
    """Forget one of ``actor``'s saved filters."""
    saved = session.get(SavedFilter, filter_id)
    if saved is None or saved.user_id != actor.id:
        # Another user's filter is as unknown as a missing one.
        raise ActionError("There is no such saved filter of yours; nothing was deleted.")
    name = saved.name
    session.delete(saved)
    session.flush()
    return ActionResult(verb="delete_filter", changed=1,
                        message=f"Saved filter “{name}” deleted.")


def list_query(pairs: Iterable[tuple[str, str]], *, known: Callable[[str, str], bool]) -> str:
    """The query string of a list from its ``(argument, value)`` pairs, in a stable form:
    only the pairs ``known(argument, value)`` accepts, no page number, no empty values.
    What is stored is only ever a query string, applied to the list's own address."""
    kept = [(key, value) for key, value in pairs
            if key != "page" and value != "" and known(key, value)]
    return urlencode(kept)


def _preference(session: Session, actor: User, view: str) -> ListPreference | None:
    return session.scalars(select(ListPreference).where(
        ListPreference.user_id == actor.id, ListPreference.view == _slug(view))).one_or_none()


def _slug(view: str) -> str:
    if not view or len(view) > VIEW_MAX:
        raise ActionError("Unknown list; nothing was changed.")
    return view
