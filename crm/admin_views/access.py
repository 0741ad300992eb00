"""Who gets in: every screen of the panel is built once per staff role (``/admin/<role>/…``),
open to a signed-in user of that role whose role has the screen's capability
(``crm.permissions``). Endpoints that do more than the screen itself check their own
capability again on every request, with ``require``.

Flask-Admin computes a view's column settings once, when it is built, so none of this can be
a per-request switch: the role is fixed when the view is made (see ``spec.role_views``).
"""

from functools import wraps

from flask import abort, current_app, redirect, request, url_for
from flask_admin import BaseView
from flask_login import current_user

from crm.permissions import ROLES, can


def require(capability: str):
    """Decorate an endpoint of a role view: 403 unless the view's role has ``capability``.
    Put it under ``@expose``; the capability is kept on the endpoint (``.capability``) so
    that the role-matrix tests find every endpoint that needs one."""

    def decorate(fn):
        @wraps(fn)
        def endpoint(self, *args, **kwargs):
            self.require(capability)
            return fn(self, *args, **kwargs)

        endpoint.capability = capability
        return endpoint

    return decorate


class RoleAccess:
    """Mixed into every view and page of the panel."""

    role: str = ""
    slug: str = ""
    # What the role needs to get the screen at all (None: every staff role).
    capability: str | None = None
    # A signed-in user of another role following a link to this screen is sent to the same
    # page of their own role's screen, when their role has one; otherwise 403.
    follow_to_own_role: bool = True

    def can(self, capability: str | None) -> bool:
        return can(self.role, capability)

    def require(self, capability: str | None) -> None:
        """The one check: 403 unless this view's role has ``capability``."""
        if not self.can(capability):
            abort(403)

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.role == self.role
                    and self.can(self.capability))

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        prefix = f"/admin/{self.role}/"
        target = request.full_path.rstrip("?")
        if (self.follow_to_own_role and target.startswith(prefix)
                and self.slug in _slugs_for(current_user.role)):
            return redirect(f"/admin/{current_user.role}/" + target[len(prefix):])
        abort(403)


class RolePage(RoleAccess, BaseView):
    """A page of the panel that is not a model view (possible duplicates, the outbox). Unlike
    a model view it exists for every role, so that a role without its capability gets 403
    (not 404) at its own address."""

    follow_to_own_role = False


def role_pages(page: type[RolePage], *, name: str, category: str, slug: str) -> list:
    """One instance of ``page`` per staff role at /admin/<role>/<slug>/."""
    pages = []
    for role in ROLES:
        cls = type(f"{page.__name__}_{role}", (page,), {"role": role, "slug": slug})
        pages.append(cls(name=name, category=category, endpoint=f"{slug}_{role}",
                         url=f"/admin/{role}/{slug}"))
    return pages


def _slugs_for(role: str) -> set[str]:
    return current_app.extensions.get("crm_role_slugs", {}).get(role, set())
