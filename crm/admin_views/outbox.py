"""Settings > Outbox: the messages the ``outbox`` mail backend wrote (crm.mail), newest first,
so that in development (and in production until ``MAIL_SERVER`` is set) a person can read
what would have been sent, with its attachments.

One instance per staff role like every screen of the panel: the role is fixed when the page
is built. Messages hold customers' statements, so it needs the ``statements`` capability
(owners and admins); a coordinator gets 403 on every endpoint. File names come from the URL
and are only accepted in the one shape crm.mail gives them (``Outbox.path``), so no name can
reach outside the folder.
"""

from io import BytesIO

from flask import abort, current_app, request, send_file
from flask_admin import expose

from crm import mail
from crm.admin_views.access import RolePage

PAGE_SIZE = 25


class OutboxView(RolePage):
    capability = "statements"

    @expose("/")
    def index(self):
        box = mail.outbox()
        names = box.names()
        page = request.args.get("page", 0, type=int)
        page = max(0, min(page, (len(names) - 1) // PAGE_SIZE if names else 0))
        shown = [box.summary(name) for name in names[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]]
        return self.render(
            "admin/outbox/index.html",
            messages=[m for m in shown if m is not None],
            total=len(names), page=page, pages=(len(names) + PAGE_SIZE - 1) // PAGE_SIZE,
            directory=box.directory, backend=current_app.config["MAIL_BACKEND"],
        )

    @expose("/view/")
    def message_view(self):
        name = request.args.get("name", "")
        email = mail.outbox().read(name)
        if email is None:
            abort(404)
        body = email.get_body(preferencelist=("plain",))
        return self.render(
            "admin/outbox/view.html", name=name, email=email,
            text=body.get_content().replace("\r\n", "\n") if body is not None else "",
            attachments=[(i, part.get_filename() or "(unnamed)", part.get_content_type())
                         for i, part in enumerate(email.iter_attachments())],
        )

    @expose("/attachment/")
    def attachment_view(self):
        email = mail.outbox().read(request.args.get("name", ""))
        index = request.args.get("index", -1, type=int)
        parts = list(email.iter_attachments()) if email is not None else []
        if not 0 <= index < len(parts):
            abort(404)
        part = parts[index]
        content = part.get_payload(decode=True) or b""
        response = send_file(BytesIO(content), mimetype=part.get_content_type(),
                             as_attachment=True,
                             download_name=part.get_filename() or f"attachment-{index}")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
