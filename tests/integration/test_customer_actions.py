"""The bulk and row actions on customers: every verb shows a confirmation page
(how many, which, what will happen) before anything changes, then a results page (what changed,
what was skipped and why), on a selection of rows or on every row matching the list's filter.
And the refusals: no CSRF token, the wrong role, signed out, merged-away ids, a forged huge
selection, the wrong confirmation word."""

import re
from html import unescape
from urllib.parse import urljoin

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEvent, BlockedEmail, Customer, Note
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    confirm_form,
    count_rows,
    customer,
    filter_arg,
    flashes,
    list_row_ids,
    load,
    submit,
    text_of,
)

SCRIPT = "<script>alert(1)</script>"
VERBS = ("set_dormant", "reactivate", "deactivate", "block_email", "delete", "redact")
FINANCE_ONLY = ("delete", "redact")


def bulk(role: str, verb: str) -> str:
    return f"/admin/{role}/customer/bulk/{verb}/"


def ids_of(*keys) -> list[str]:
    return [str(k) for k in keys]


def count_on(html: str) -> int:
    text = by_testid(html, "confirm-count")[0]
    return int(re.match(r"([\d,]+)", text).group(1).replace(",", ""))


def changed_line(html: str) -> str:
    return by_testid(html, "result-changed")[0]


def skipped_lines(html: str) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", html.split('data-testid="skipped-list"', 1)[-1]
                      .split("</ul>", 1)[0], re.S) if 'data-testid="skipped-list"' in html else []


def statuses(app, *keys) -> list[str]:
    return [load(app, Customer, key, "status")["status"] for key in keys]


@pytest.fixture
def crowd(app):
    """Customers on postcode LS1 1AA (two active, one dormant, one archived) and one
    active elsewhere."""
    with app.app_context():
        rows = {
            "a1": customer(db.session, surname="Ashby", postcode="LS1 1AA"),
            "a2": customer(db.session, surname="Barker", postcode="LS1 1AA"),
            "d1": customer(db.session, surname="Crane", postcode="LS1 1AA", status="dormant"),
            "arch": customer(db.session, surname="Dale", postcode="LS1 1AA", status="archived"),
            "far": customer(db.session, surname="Eaves", postcode="M1 1AA"),
        }
        db.session.commit()
        return {**{k: c.id for k, c in rows.items()},
                **{f"{k}_ref": c.reference for k, c in rows.items()}}


# --- set dormant: a selection ---------------------------------------------------------------
def test_set_dormant_on_a_selection_confirms_then_reports(app, client, login, crowd):
    login("coordinator")
    page = client.get(bulk("coordinator", "set_dormant"),
                      query_string={"ids": ids_of(crowd["a1"], crowd["d1"])})
    html = text_of(page)

    assert page.status_code == 200
    assert count_on(html) == 2
    assert "2 customers selected" in by_testid(html, "confirm-count")[0]
    assert f"{crowd['a1_ref']}, {crowd['d1_ref']}" in html
    assert "Set dormant: 2 customers" in by_testid(html, "confirm-button")[0]
    assert statuses(app, crowd["a1"], crowd["d1"]) == ["active", "dormant"]

    action, data = confirm_form(html)
    assert data == {"confirm": ["1"], "ids": ids_of(crowd["a1"], crowd["d1"])}
    done = client.post(action, data=data)
    html = text_of(done)

    assert done.status_code == 200
    assert changed_line(html) == f"1 changed: {crowd['a1_ref']}"
    assert by_testid(html, "result-skipped")[0] == "1 skipped:"
    assert skipped_lines(html) == [f"{crowd['d1_ref']} skipped: already dormant"]
    assert "Set 1 customer dormant; 1 skipped (1 already dormant)." in by_testid(
        html, "result-message")[0]
    assert statuses(app, crowd["a1"], crowd["d1"], crowd["a2"]) == ["dormant", "dormant",
                                                                    "active"]


def test_the_list_menu_leads_to_the_same_confirmation(app, client, login, crowd):
    login("coordinator")
    response = client.post("/admin/coordinator/customer/action/",
                           data={"action": "set_dormant",
                                 "rowid": ids_of(crowd["a1"], crowd["a2"])})
    html = text_of(response)

    assert response.status_code == 200
    assert count_on(html) == 2
    assert statuses(app, crowd["a1"], crowd["a2"]) == ["active", "active"]
    action, data = confirm_form(html)
    assert action == bulk("coordinator", "set_dormant")
    client.post(action, data=data)
    assert statuses(app, crowd["a1"], crowd["a2"]) == ["dormant", "dormant"]


# --- set dormant: all matching a filter -----------------------------------------------------
def test_set_dormant_on_everything_matching_the_postcode_filter(app, client, login, crowd):
    login("coordinator")
    postcode = filter_arg(app, "coordinator", "Postcode")
    listing = text_of(client.get("/admin/coordinator/customer/",
                                 query_string={postcode: "LS1 1AA"}))
    link = re.search(r'href="([^"]+)" data-testid="all-set_dormant"', listing)
    assert link, "the list offers no 'All matching' set dormant"
    assert "All 3 matching" in by_testid(listing, "all-matching")[0]

    html = text_of(client.get(urljoin("/admin/coordinator/customer/", unescape(link.group(1)))))
    assert count_on(html) == 3
    assert "match the list's current filter and search" in by_testid(html, "confirm-count")[0]
    action, data = confirm_form(html)
    assert "all=1" in action and "ids" not in data
    assert statuses(app, crowd["a1"], crowd["a2"]) == ["active", "active"]

    html = text_of(client.post(action, data=data))
    assert changed_line(html).startswith("2 changed")
    assert skipped_lines(html) == [f"{crowd['d1_ref']} skipped: already dormant"]
    assert statuses(app, crowd["a1"], crowd["a2"], crowd["d1"], crowd["arch"], crowd["far"]) \
        == ["dormant", "dormant", "dormant", "archived", "active"]


def test_more_rows_than_the_job_threshold_run_as_a_background_job(
        app, client, login, crowd, monkeypatch):
    """Past CRM_JOB_THRESHOLD a bulk action is no longer refused: the confirmation page says
    it runs in the background, and confirming records a job with the customers confirmed,
    runs it (tests run jobs at once) and lands on the job's page."""
    from crm.models import Job

    monkeypatch.setitem(app.config, "CRM_JOB_THRESHOLD", 2)
    login("coordinator")
    postcode = filter_arg(app, "coordinator", "Postcode")
    query = {"all": "1", postcode: "LS1 1AA"}

    page = client.get(bulk("coordinator", "set_dormant"), query_string=query)
    html = text_of(page)
    assert page.status_code == 200
    assert "runs in the background" in by_testid(html, "runs-as-job")[0]
    assert by_testid(html, "confirm-button")

    done = client.post(bulk("coordinator", "set_dormant"), query_string=query,
                       data={"confirm": "1"})
    assert done.status_code == 302
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert "/admin/coordinator/jobs/" in done.headers["Location"]
        assert str(job.id) in done.headers["Location"]
        assert (job.kind, job.status, job.total, job.changed) == ("bulk_set_dormant", "done",
                                                                  3, 2)
        assert job.skipped == 1 and job.reasons == {"already dormant": 1}
        assert job.summary == "Set 2 customers dormant; 1 skipped (1 already dormant)."
        assert job.title == "Set 3 customers dormant"
        assert job.params["filter"] == [postcode]  # which filter, never its value
        assert "LS1 1AA" not in str(job.params)
    assert statuses(app, crowd["a1"], crowd["a2"]) == ["dormant", "dormant"]


def test_a_background_deactivation_notes_the_reason_on_customers_not_on_the_job(
        app, client, login, crowd, monkeypatch):
    """The reason typed goes onto each customer's note; once the job has ended, the job
    itself no longer holds it."""
    from crm.models import Job

    monkeypatch.setitem(app.config, "CRM_JOB_THRESHOLD", 1)
    login("coordinator")
    done = client.post(bulk("coordinator", "deactivate"),
                       data={"confirm": "1", "ids": [crowd["a1"], crowd["a2"]],
                             "reason": "Threatened staff at the Leeds job"})
    assert done.status_code == 302
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert (job.status, job.changed) == ("done", 2)
        assert "Threatened" not in str(job.params)
        notes = db.session.scalars(select(Note.body).where(
            Note.customer_id.in_([crowd["a1"], crowd["a2"]]))).all()
        assert len(notes) == 2 and all("Threatened staff" in body for body in notes)


def test_a_background_run_is_refused_before_it_starts_when_the_form_is_wrong(
        app, client, login, crowd, monkeypatch):
    """The action's own guards run before a job is recorded: a missing typed word (or
    reason) refuses on the confirmation page and records no job."""
    from crm.models import Job

    monkeypatch.setitem(app.config, "CRM_JOB_THRESHOLD", 1)
    login("owner")
    ids = [crowd["a1"], crowd["a2"]]
    page = client.post(bulk("owner", "redact"), data={"confirm": "1", "ids": ids,
                                                      "word": "redact please"})
    assert page.status_code == 400
    assert "REDACT" in unescape(by_testid(text_of(page), "action-error")[0])
    with app.app_context():
        assert db.session.scalars(select(Job)).all() == []
    assert statuses(app, crowd["a1"], crowd["a2"]) == ["active", "active"]


def test_all_matching_the_status_filter_reaches_archived_customers(app, client, login, crowd):
    login("owner")
    status = filter_arg(app, "owner", "Status")
    html = text_of(client.get(bulk("owner", "reactivate"),
                              query_string={"all": "1", status: "archived"}))
    assert count_on(html) == 1 and crowd["arch_ref"] in html

    action, data = confirm_form(html)
    html = text_of(client.post(action, data=data))
    assert changed_line(html) == f"1 changed: {crowd['arch_ref']}"
    assert statuses(app, crowd["arch"], crowd["d1"]) == ["active", "dormant"]


def test_all_matching_a_search(app, client, login, crowd):
    login("owner")
    html = text_of(client.get(bulk("owner", "set_dormant"),
                              query_string={"all": "1", "search": "eaves"}))
    assert count_on(html) == 1
    action, data = confirm_form(html)
    client.post(action, data=data)
    assert statuses(app, crowd["far"], crowd["a1"]) == ["dormant", "active"]


# --- reactivate, deactivate, block ------------------------------------------------------------
def test_reactivate_says_which_were_already_active(app, client, login, crowd):
    login("coordinator")
    html = text_of(client.post(bulk("coordinator", "reactivate"),
                               data={"ids": ids_of(crowd["a1"], crowd["d1"]), "confirm": "1"}))

    assert changed_line(html) == f"1 changed: {crowd['d1_ref']}"
    assert skipped_lines(html) == [f"{crowd['a1_ref']} skipped: already active"]
    assert statuses(app, crowd["a1"], crowd["d1"]) == ["active", "active"]


def test_deactivate_needs_a_reason_then_pins_a_warning(app, client, login, crowd):
    login("coordinator")
    html = text_of(client.get(bulk("coordinator", "deactivate"),
                              query_string={"ids": crowd["a1"]}))
    assert 'name="reason"' in html

    refused = client.post(bulk("coordinator", "deactivate"),
                          data={"ids": ids_of(crowd["a1"]), "confirm": "1", "reason": "  "})
    assert refused.status_code == 400
    assert "Reason (shown on the note) is required; nothing was changed." in by_testid(
        text_of(refused), "action-error")[0]
    assert statuses(app, crowd["a1"]) == ["active"]
    assert count_rows(app, Note) == 0

    done = client.post(bulk("coordinator", "deactivate"),
                       data={"ids": ids_of(crowd["a1"]), "confirm": "1",
                             "reason": "Abusive on the phone"})
    assert changed_line(text_of(done)) == f"1 changed: {crowd['a1_ref']}"
    assert statuses(app, crowd["a1"]) == ["dormant"]
    record = text_of(client.get(f"/admin/coordinator/customer/details/?id={crowd['a1']}"))
    banner = by_testid(record, "pinned-banner")[0]
    assert banner.startswith("Do not work with again.")
    assert "Abusive on the phone" in banner


def test_the_record_page_deactivate_button_opens_the_confirmation(client, login, crowd):
    login("coordinator")
    record = text_of(client.get(f"/admin/coordinator/customer/details/?id={crowd['a1']}"))
    assert 'data-testid="deactivate"' in record
    html = text_of(client.post(bulk("coordinator", "deactivate"), data={"ids": crowd["a1"]}))
    assert count_on(html) == 1 and by_testid(html, "confirm-form")


def test_block_email_needs_a_reason_and_skips_customers_without_one(app, client, login, crowd):
    with app.app_context():
        silent = customer(db.session, email=None)
        db.session.commit()
        silent_id, silent_ref = silent.id, silent.reference
    login("coordinator")
    selection = ids_of(crowd["a1"], silent_id)

    page = text_of(client.get(bulk("coordinator", "block_email"),
                              query_string={"ids": crowd["a1"]}))
    assert 'name="block_reason"' in page and 'name="note"' in page
    for reason in ("", "He was rude"):  # nothing chosen, or free text instead of a reason
        refused = client.post(bulk("coordinator", "block_email"),
                              data={"ids": selection, "confirm": "1", "block_reason": reason})
        assert refused.status_code == 400
        assert "Choose the reason for the block" in text_of(refused)
    assert count_rows(app, BlockedEmail) == 0

    html = text_of(client.post(bulk("coordinator", "block_email"),
                               data={"ids": selection, "confirm": "1", "block_reason": "spam",
                                     "note": "Fake bookings every week"}))
    assert changed_line(html) == f"1 changed: {crowd['a1_ref']}"
    assert skipped_lines(html) == [f"{silent_ref} skipped: no e-mail"]
    assert count_rows(app, BlockedEmail) == 1
    assert load(app, Customer, crowd["a1"], "email_blocked") == {"email_blocked": True}

    again = text_of(client.post(bulk("coordinator", "block_email"),
                                data={"ids": ids_of(crowd["a1"]), "confirm": "1",
                                      "block_reason": "spam"}))
    assert skipped_lines(again) == [f"{crowd['a1_ref']} skipped: already blocked"]
    assert count_rows(app, BlockedEmail) == 1
    with app.app_context():
        block = db.session.query(BlockedEmail).one()
        assert (block.reason, block.note) == ("spam", "Fake bookings every week")


# --- delete / archive ---------------------------------------------------------------------------
def test_delete_shows_the_plan_then_deletes_or_archives(app, client, login, crowd):
    with app.app_context():
        f.make_note(db.session, db.session.get(Customer, crowd["a1"]))
        db.session.commit()
    login("owner")
    selection = ids_of(crowd["a1"], crowd["a2"])

    html = text_of(client.post(bulk("owner", "delete"), data={"ids": selection}))
    plan = by_testid(html, "delete-plan")[0]
    assert "1 will be deleted" in plan and "1 will be archived instead" in plan
    assert f"{crowd['a1_ref']}: has 1 note" in plan
    assert count_rows(app, Customer, Customer.id == crowd["a2"]) == 1

    html = text_of(client.post(bulk("owner", "delete"), data={"ids": selection, "confirm": "1"}))
    assert "1 deleted, 1 archived" in by_testid(html, "result-message")[0]
    assert count_rows(app, Customer, Customer.id == crowd["a2"]) == 0
    assert statuses(app, crowd["a1"]) == ["archived"]
    assert crowd["a1"] not in list_row_ids(text_of(client.get("/admin/owner/customer/")))


def test_deleting_an_archived_customer_again_says_so(app, client, login, crowd):
    with app.app_context():
        f.make_note(db.session, db.session.get(Customer, crowd["arch"]))
        db.session.commit()
    login("admin")
    html = text_of(client.post(bulk("admin", "delete"),
                               data={"ids": ids_of(crowd["arch"]), "confirm": "1"}))
    assert skipped_lines(html) == [f"{crowd['arch_ref']} skipped: already archived"]
    assert statuses(app, crowd["arch"]) == ["archived"]


# --- redact -------------------------------------------------------------------------------------
def test_redact_asks_for_the_word_and_a_wrong_word_changes_nothing(app, client, login, crowd):
    login("owner")
    html = text_of(client.post(bulk("owner", "redact"), data={"ids": crowd["a1"]}))
    assert "Type <code>REDACT</code> to confirm" in html and 'name="word"' in html
    assert 'name="block"' in html

    response = client.post(bulk("owner", "redact"),
                           data={"ids": ids_of(crowd["a1"]), "confirm": "1", "word": "redact"})
    assert response.status_code == 400
    assert by_testid(text_of(response), "action-error") == [
        "Type REDACT to confirm; nothing was changed."]
    assert load(app, Customer, crowd["a1"], "surname", "redacted_at") == {
        "surname": "Ashby", "redacted_at": None}


def test_redacting_erases_the_customer_and_locks_the_record(app, client, login, crowd):
    login("owner")
    html = text_of(client.post(bulk("owner", "redact"),
                               data={"ids": ids_of(crowd["a1"]), "confirm": "1",
                                     "word": "REDACT"}))
    assert changed_line(html) == f"1 changed: {crowd['a1_ref']}"
    after = load(app, Customer, crowd["a1"], "surname", "email", "redacted_at")
    assert after["redacted_at"] is not None and after["surname"] != "Ashby"
    assert after["email"] is None or "example.com" not in after["email"]

    record = text_of(client.get(f"/admin/owner/customer/details/?id={crowd['a1']}"))
    assert by_testid(record, "redacted-badge")[0].startswith("redacted ")
    assert "Ashby" not in record
    assert f"/admin/owner/customer/edit/?id={crowd['a1']}" not in record
    assert 'data-testid="record-actions"' not in record
    assert 'data-testid="add-note"' not in record

    edit = client.get(f"/admin/owner/customer/edit/?id={crowd['a1']}")
    assert edit.status_code == 302
    message = f"{crowd['a1_ref']} has been redacted; it can no longer be edited."
    assert message in flashes(text_of(client.get(edit.headers["Location"])))

    forged = client.post(f"/admin/owner/customer/edit/?id={crowd['a1']}",
                         data={"surname": "Ashby", "email": "ashby@example.com",
                               "address_line_1": "1 High Street", "postcode": "LS1 1AA",
                               "customer_type": "private", "kind": "client",
                               "status": "active"})
    assert forged.status_code == 302
    assert load(app, Customer, crowd["a1"], "surname", "email") == {
        "surname": after["surname"], "email": after["email"]}

    note = client.post("/admin/owner/customer/note/",
                       data={"customer_id": str(crowd["a1"]), "kind": "note", "body": "Hi"})
    assert "you cannot add notes" in " ".join(flashes(text_of(client.get(note.headers["Location"]))))
    assert count_rows(app, Note) == 0


def test_redacting_with_the_block_option_blocks_the_address(app, client, login, crowd):
    login("admin")
    refused = client.post(bulk("admin", "redact"),
                          data={"ids": ids_of(crowd["a1"]), "confirm": "1", "word": "REDACT",
                                "block": "1", "block_reason": "Asked to be forgotten"})
    assert refused.status_code == 400
    assert "Choose the reason for the block" in text_of(refused)
    assert load(app, Customer, crowd["a1"], "redacted_at") == {"redacted_at": None}

    client.post(bulk("admin", "redact"),
                data={"ids": ids_of(crowd["a1"]), "confirm": "1", "word": "REDACT",
                      "block": "1", "block_reason": "customer_request"})
    assert load(app, Customer, crowd["a1"], "redacted_at")["redacted_at"] is not None
    assert count_rows(app, BlockedEmail, BlockedEmail.kind == "address") == 1
    with app.app_context():
        block = db.session.query(BlockedEmail).one()
        assert (block.reason, block.note) == ("customer_request", None)


def test_redacting_again_is_skipped_with_a_reason(app, client, login, crowd):
    login("owner")
    data = {"ids": ids_of(crowd["a1"]), "confirm": "1", "word": "REDACT"}
    client.post(bulk("owner", "redact"), data=data)
    html = text_of(client.post(bulk("owner", "redact"), data=data))
    assert changed_line(html).startswith("0 changed")
    assert skipped_lines(html) == [f"{crowd['a1_ref']} skipped: already redacted"]


# --- refusals -----------------------------------------------------------------------------------
def snapshot(app) -> dict:
    """Everything a bulk action could change, to compare before and after a refusal."""
    with app.app_context():
        rows = db.session.query(Customer.id, Customer.status, Customer.redacted_at,
                                Customer.email_blocked).order_by(Customer.id).all()
    return {"customers": [tuple(r) for r in rows], "blocks": count_rows(app, BlockedEmail),
            "notes": count_rows(app, Note), "audit": count_rows(app, AuditEvent)}


def confirmed_data(verb: str, keys) -> dict:
    return {"ids": ids_of(*keys), "confirm": "1", "reason": "Because", "block_reason": "spam",
            "word": "REDACT"}


@pytest.mark.parametrize("verb", VERBS)
def test_a_confirmation_without_the_csrf_token_changes_nothing(app, client, login, crowd, verb):
    login("owner")
    before = snapshot(app)
    response = client.post(bulk("owner", verb), csrf=False,
                           data=confirmed_data(verb, [crowd["a1"], crowd["d1"]]))

    assert response.status_code == 400
    assert snapshot(app) == before


@pytest.mark.parametrize("verb", FINANCE_ONLY)
def test_a_coordinator_cannot_delete_or_redact(app, client, login, crowd, verb):
    login("coordinator")
    before = snapshot(app)

    assert client.get(bulk("coordinator", verb),
                      query_string={"ids": crowd["a1"]}).status_code == 403
    assert client.post(bulk("coordinator", verb),
                       data=confirmed_data(verb, [crowd["a1"]])).status_code == 403
    assert client.get(bulk("coordinator", verb),
                      query_string={"all": "1"}).status_code == 403
    via_action = client.post("/admin/coordinator/customer/action/",
                             data={"action": verb, "rowid": ids_of(crowd["a1"])})
    assert via_action.status_code == 403
    assert 'data-testid="confirm-page"' not in text_of(via_action)
    assert snapshot(app) == before
    listing = text_of(client.get("/admin/coordinator/customer/"))
    assert f'data-testid="all-{verb}"' not in listing
    assert f"bulk/{verb}/" not in text_of(
        client.get(f"/admin/coordinator/customer/details/?id={crowd['a1']}"))


def test_the_coordinator_menu_offers_only_the_coordinator_verbs(client, login, crowd):
    login("coordinator")
    listing = text_of(client.get("/admin/coordinator/customer/"))
    offered = set(re.findall(r'data-testid="all-(?!matching)([a-z_]+)"', listing))
    assert offered == {"set_dormant", "reactivate", "deactivate", "block_email",
                       "change_kind", "hide_related", "unhide_related"}
    assert "Redact (erase personal data)" not in listing
    assert "Delete / archive" not in listing


@pytest.mark.parametrize("verb", VERBS)
def test_signed_out_every_verb_leads_to_sign_in(app, client, crowd, verb):
    before = snapshot(app)
    for response in (client.get(bulk("owner", verb), query_string={"ids": crowd["a1"]}),
                     client.post(bulk("owner", verb),
                                 data=confirmed_data(verb, [crowd["a1"]]))):
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]
    assert snapshot(app) == before


@pytest.mark.parametrize("verb", VERBS)
def test_merged_away_ids_are_ignored(app, client, login, crowd, verb):
    with app.app_context():
        gone = customer(db.session, surname="Gone", merged_into_id=crowd["a2"])
        db.session.commit()
        gone_id, gone_state = gone.id, (gone.status, gone.redacted_at, gone.email_blocked)
    login("owner")

    html = text_of(client.get(bulk("owner", verb), query_string={"ids": [gone_id, crowd["a1"]]}))
    assert count_on(html) == 1
    client.post(bulk("owner", verb), data=confirmed_data(verb, [gone_id, crowd["a1"]]))
    with app.app_context():
        row = db.session.get(Customer, gone_id)
        assert (row.status, row.redacted_at, row.email_blocked) == gone_state


def test_only_merged_away_ids_is_nothing_selected(app, client, login, crowd):
    with app.app_context():
        gone = customer(db.session, merged_into_id=crowd["a2"]).id
        db.session.commit()
    login("owner")
    html = text_of(client.get(bulk("owner", "set_dormant"), query_string={"ids": gone}))
    assert count_on(html) == 0
    assert not by_testid(html, "confirm-form")


def test_a_forged_huge_selection_is_refused_with_a_message(app, client, login, crowd):
    login("owner")
    before = snapshot(app)
    huge = ids_of(*range(1, 10_002))

    response = client.post(bulk("owner", "set_dormant"), data={"ids": huge, "confirm": "1"})
    assert response.status_code == 400
    assert "Select between 1 and 10,000 customers" in by_testid(text_of(response),
                                                                 "action-error")[0]
    via_action = client.post("/admin/owner/customer/action/",
                             data={"action": "set_dormant", "rowid": huge})
    assert via_action.status_code == 400
    assert "Nothing was changed." in by_testid(text_of(via_action), "action-error")[0]
    assert snapshot(app) == before


def test_an_enormous_forged_selection_never_errors_and_changes_nothing(app, client, login,
                                                                        crowd):
    login("owner")
    before = snapshot(app)
    response = client.post(bulk("owner", "set_dormant"),
                           data={"ids": ids_of(*range(1, 100_001)), "confirm": "1"})
    assert response.status_code in (400, 413)
    assert snapshot(app) == before


def test_no_selection_is_explained(client, login, crowd):
    login("owner")
    for response in (client.get(bulk("owner", "set_dormant")),
                     client.post(bulk("owner", "set_dormant"),
                                 data={"ids": ["x", "-3", ""], "confirm": "1"})):
        assert response.status_code == 400
        html = text_of(response)
        assert "Nothing selected" in html and "Select between 1 and" in html


def test_an_unknown_verb_is_not_found(client, login):
    login("owner")
    assert client.get(bulk("owner", "explode"), query_string={"ids": 1}).status_code == 404


# --- escaping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", ("delete", "set_dormant"))
def test_names_are_escaped_on_the_confirmation_and_results_pages(app, client, login, verb):
    with app.app_context():
        row = customer(db.session, surname=SCRIPT, first_name=SCRIPT)
        f.make_note(db.session, row, body=SCRIPT)
        db.session.commit()
        key = row.id
    login("owner")
    confirm_page = client.get(bulk("owner", verb), query_string={"ids": key})
    results_page = client.post(bulk("owner", verb), data={"ids": [str(key)], "confirm": "1"})
    for response in (confirm_page, results_page):
        assert response.status_code == 200
        assert SCRIPT not in text_of(response)


# --- every verb on "all matching" a filter or a search -------------------------------------------
def effect(app, key: int) -> tuple:
    """What any verb may change on one customer (None once it is deleted)."""
    with app.app_context():
        row = db.session.get(Customer, key)
        if row is None:
            return None
        pinned = db.session.query(Note).filter_by(customer_id=key, important=True).count()
        return (row.status, row.redacted_at is not None, row.email_blocked, pinned)


EFFECTS = {
    "set_dormant": ("dormant", False, False, 0),
    "reactivate": ("active", False, False, 0),
    "deactivate": ("dormant", False, False, 1),
    "block_email": ("active", False, True, 0),
    "delete": None,
    "redact": ("active", True, False, 0),
}


@pytest.mark.parametrize("how", ("filter", "search"))
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_runs_on_all_matching(app, client, login, crowd, verb, how):
    if verb == "reactivate":
        with app.app_context():
            db.session.get(Customer, crowd["far"]).status = "dormant"
            db.session.commit()
    others = {key: effect(app, crowd[key]) for key in ("a1", "a2", "d1", "arch")}
    login("owner")
    query = ({filter_arg(app, "owner", "Postcode"): "M1 1AA"} if how == "filter"
             else {"search": "eaves"})

    html = text_of(client.get(bulk("owner", verb), query_string={"all": "1", **query}))
    assert count_on(html) == 1 and crowd["far_ref"] in html
    action, data = confirm_form(html)
    done = client.post(action, data={**data, "reason": "Because", "block_reason": "spam",
            "word": "REDACT"})

    assert done.status_code == 200, by_testid(text_of(done), "action-error")
    assert changed_line(text_of(done)).startswith("1 changed")
    assert effect(app, crowd["far"]) == EFFECTS[verb]
    assert {key: effect(app, crowd[key]) for key in others} == others


# --- a redacted customer stays erased through the other screens --------------------------------
@pytest.fixture
def redacted(app, client, login):
    """The owner signed in; a customer with one contact, redacted through the bulk screen."""
    with app.app_context():
        row = customer(db.session, surname="Erased")
        contact = f.make_contact(db.session, row, surname="Helper")
        db.session.commit()
        keys = {"customer": row.id, "contact": contact.id}
    login("owner")
    client.post(bulk("owner", "redact"),
                data={"ids": [str(keys["customer"])], "confirm": "1", "word": "REDACT"})
    assert load(app, Customer, keys["customer"], "redacted_at")["redacted_at"] is not None
    return keys


def test_a_contact_cannot_be_added_to_a_redacted_customer(app, client, redacted):
    from crm.models import Contact

    before = count_rows(app, Contact)
    submit(client, "/admin/owner/contact/new/",
           {"customer": str(redacted["customer"]), "surname": "Backagain",
            "email": "back@example.com"})
    assert count_rows(app, Contact) == before
    assert count_rows(app, Contact, Contact.surname == "Backagain") == 0


def test_a_redacted_customers_contact_cannot_be_edited_back(app, client, redacted):
    from crm.models import Contact

    wiped = load(app, Contact, redacted["contact"], "surname", "email")
    submit(client, f"/admin/owner/contact/edit/?id={redacted['contact']}",
           {"surname": "Helper", "email": "helper@example.com"})
    assert load(app, Contact, redacted["contact"], "surname", "email") == wiped


def test_a_note_cannot_be_added_to_a_redacted_customer_from_the_notes_menu(app, client,
                                                                            redacted):
    """The record page refuses it ("you cannot add notes"); Notes → Create must too."""
    submit(client, "/admin/owner/note/new/",
           {"customer": str(redacted["customer"]), "kind": "note", "body": "New personal data"})
    assert count_rows(app, Note, Note.body == "New personal data") == 0


# --- a forged id beyond the id column ---------------------------------------------------------
# Past PostgreSQL's 32-bit integer, and past 64 bits (SQLite refuses that one too).
HUGE_IDS = ("3000000000", "99999999999999999999")
FORGED = {
    "bulk page": ("get", "/admin/owner/customer/bulk/set_dormant/", "ids", {}),
    "bulk confirm": ("post", "/admin/owner/customer/bulk/set_dormant/", "ids", {"confirm": "1"}),
    "list menu": ("post", "/admin/owner/customer/action/", "rowid", {"action": "set_dormant"}),
    "merge preview": ("get", "/admin/owner/customer/merge/", "ids", {"survivor": "x"}),
    "merge with": ("get", "/admin/owner/customer/merge/", "ids", {"q": "tester"}),
    "undo page": ("get", "/admin/owner/customer/merge/undo/", "merge_id", {}),
    "add note": ("post", "/admin/owner/customer/note/", "customer_id", {"body": "x"}),
    "pin note": ("post", "/admin/owner/customer/note/pin/", "note_id", {"pinned": "1"}),
    "set dormant": ("post", "/admin/owner/customer/status/set_dormant/", "id", {}),
    "record page": ("get", "/admin/owner/customer/details/", "id", {}),
    "edit page": ("get", "/admin/owner/customer/edit/", "id", {}),
}


@pytest.mark.parametrize("huge", HUGE_IDS)
@pytest.mark.parametrize("where", FORGED)
def test_an_id_too_large_for_the_database_is_an_unknown_id_not_an_error(app, client, login,
                                                                         crowd, where, huge):
    """An unknown id gets a clear answer and changes nothing; never a 500 (the
    database refuses to compare its integer id column with a number that does not fit)."""
    login("owner")
    before = snapshot(app)
    method, path, name, extra = FORGED[where]
    values = {**extra, name: huge}
    if where == "merge preview":
        values = {"ids": [huge, str(crowd["a1"])]}
    if method == "get":
        response = client.get(path, query_string=values)
    else:
        response = client.post(path, data=values)

    assert response.status_code in (200, 302, 400, 404)
    assert snapshot(app) == before


# --- row buttons in the list -------------------------------------------------------------
def test_each_list_row_offers_the_actions_as_post_buttons_of_one_form(app, client, login, crowd):
    login("coordinator")
    html = text_of(client.get("/admin/coordinator/customer/"))

    # the actions are written once for the page: one menu, a form posting the CSRF token and
    # the row's id (static/js/lists.js gives each row a button opening it, filling the id in)
    menu = re.search(r'<form id="row-menu" class="dropdown-menu row-menu" method="post"[^>]*>'
                     r'(.*?)</form>', html, re.S)
    assert menu and 'name="csrf_token"' in menu.group(1)
    assert '<input type="hidden" name="ids" value="">' in menu.group(1)
    buttons = re.findall(r'<button class="dropdown-item" role="menuitem" formaction="([^"]+)">',
                         menu.group(1))
    assert bulk("coordinator", "set_dormant") in buttons
    assert html.count("formaction=") == len(buttons) == len(set(buttons))  # once a page
    assert not any("redact" in action or "delete" in action for action in buttons)
    assert f'name="rowid" class="action-checkbox" value="{crowd["a1"]}"' in html

    # what a browser sends when the row's "Set dormant…" is pressed: the confirmation page
    page = client.post(bulk("coordinator", "set_dormant"), data={"ids": str(crowd["a1"])})
    assert page.status_code == 200
    assert count_on(text_of(page)) == 1
    assert statuses(app, crowd["a1"]) == ["active"]


def test_an_owners_rows_also_offer_redact_and_delete(client, login, crowd):
    login("owner")
    html = text_of(client.get("/admin/owner/customer/"))
    assert f'name="rowid" class="action-checkbox" value="{crowd["a1"]}"' in html
    for verb in ("redact", "delete", "email_statements"):
        assert html.count(f'formaction="{bulk("owner", verb)}">') == 1
