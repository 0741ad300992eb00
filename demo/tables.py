"""The tables the seed writes, in insertion (foreign key) order, and the columns of each.

Rows are plain tuples in exactly this column order: the generator builds them and the loaders
hand them to ``executemany`` or ``COPY`` as they are, so both sides must agree on one list."""

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": (
        "id", "reference", "kind", "customer_type", "title", "first_name", "surname",
        "company_name", "email", "phone", "status", "advertising_source", "price_book",
        "creditor_days", "third_party_reference", "notes", "email_opt_in", "sms_opt_in",
        "post_opt_in", "search_text", "balance", "account_credit", "overdue_amount",
        "oldest_overdue_on", "next_due_on", "ledger_as_of", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "version", "created_at", "updated_at",
    ),
    "customer_tag": ("customer_id", "tag_id"),
    "contact": (
        "id", "customer_id", "title", "first_name", "surname", "position", "email", "phone",
        "mobile", "email_opt_in", "sms_opt_in", "is_primary", "version", "created_at",
        "updated_at",
    ),
    "branch": (
        "id", "customer_id", "name", "phone", "status", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "version", "created_at", "updated_at",
    ),
    "work_address": (
        "id", "customer_id", "landlord_id", "occupier_title", "occupier_first_name",
        "occupier_surname", "occupier_phone", "occupier_email", "status", "address_line_1",
        "address_line_2", "town", "county", "postcode", "country", "version", "created_at",
        "updated_at",
    ),
    "service_reminder": (
        "id", "work_address_id", "due_on", "description", "status", "interval_months", "version",
        "created_at", "updated_at",
    ),
    "lead": (
        "id", "first_name", "surname", "company_name", "email", "phone", "source", "message",
        "status", "customer_id", "lost_reason", "follow_up_on", "purpose", "preferred_date",
        "version", "created_at", "updated_at",
    ),
    "booking": (
        "id", "reference", "customer_id", "work_address_id", "lead_id", "title", "status",
        "starts_at", "ends_at", "value", "contact_email", "contact_first_name",
        "contact_surname", "attribution", "reviewed_at", "version", "created_at", "updated_at",
    ),
    "note": (
        "id", "customer_id", "work_address_id", "kind", "body", "important",
        "do_not_work_with_again", "author_id", "version", "created_at", "updated_at",
    ),
    "invoice": (
        "id", "customer_id", "number", "status", "issue_date", "due_date", "notes",
        "outstanding", "subtotal", "tax_total", "total", "version", "created_at", "updated_at",
    ),
    "invoice_line": (
        "id", "invoice_id", "position", "category", "description", "quantity", "unit_price",
        "tax_rate", "net_amount", "tax_amount", "version", "created_at", "updated_at",
    ),
    "credit_note": (
        "id", "customer_id", "invoice_id", "number", "status", "issue_date", "description",
        "breakdown_style", "subtotal", "tax_total", "total", "version", "created_at",
        "updated_at",
    ),
    "credit_note_line": (
        "id", "credit_note_id", "position", "category", "description", "quantity",
        "unit_price", "tax_rate", "net_amount", "tax_amount", "version", "created_at",
        "updated_at",
    ),
    "payment": (
        "id", "customer_id", "received_on", "method", "reference", "amount", "version",
        "created_at", "updated_at",
    ),
    "allocation": (
        "id", "invoice_id", "payment_id", "credit_note_id", "amount", "version", "created_at",
        "updated_at",
    ),
}
TABLES = tuple(COLUMNS)
ID_TABLES = tuple(t for t in TABLES if "id" in COLUMNS[t]) + ("tag",)
