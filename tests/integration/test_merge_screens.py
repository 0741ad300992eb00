"""The merge screens: the preview with both records side by side, a value
chosen per field, the rows that will move and the conflicts; the confirmation; "merge with…"
to find the other record; the old URL of a merged-away customer; undo from the done page, the
record page and the audit log; and who may do any of it (owners and admins only)."""

import re
from html import unescape

import pytest

from crm.extensions import db
from crm.models import AuditEvent, Customer, CustomerMerge, Note
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    flashes,
    list_row_ids,
    load,
    text_of,
)

MERGE = "/admin/{role}/customer/merge/"
UNDO = "/admin/{role}/customer/merge/undo/"


def merge_url(role: str = "owner") -> str:
    return MERGE.format(role=role)


def undo_url(role: str = "owner") -> str:
    return UNDO.format(role=role)


@pytest.fixture
def pair(app):
    """Two records of one person: the first is kept, the second has a note and a booking."""
    with app.app_context():
        keep = customer(db.session, first_name="Robin", surname="Hood",
                        email="robin@example.com", town="Nottingham")
        dup = customer(db.session, first_name="Robin", surname="Hood",
                       email="robin.hood@example.com", town="Sherwood")
        f.make_note(db.session, dup, body="Prefers calls after six.")
        f.make_booking(db.session, dup, title="Archery lesson")
        db.session.commit()
        return {"keep": keep.id, "dup": dup.id, "keep_ref": keep.reference,
                "dup_ref": dup.reference}


def preview(client, pair, role="owner", **extra):
    query = {"ids": [pair["keep"], pair["dup"]], **extra}
    return client.get(merge_url(role), query_string=query)


def confirm(client, pair, role="owner", **fields):
    data = {"ids": [str(pair["keep"]), str(pair["dup"])], "survivor": str(pair["keep"]),
            "confirm": "1", **fields}
    return client.post(merge_url(role), data=data)


def radio_values(html: str, field: str) -> list[int]:
    return [int(v) for v in re.findall(rf'name="field_{field}" value="(\d+)"', html)]


def checked_radio(html: str, field: str) -> int | None:
    found = re.search(rf'name="field_{field}" value="(\d+)" checked', html)
    return int(found.group(1)) if found else None


def merge_id_of(app, survivor_id: int) -> int:
    with app.app_context():
        return db.session.query(CustomerMerge.id).filter_by(survivor_id=survivor_id).scalar()


# --- the preview -------------------------------------------------------------------------
def test_preview_shows_both_records_field_choices_counts_and_conflicts(app, client, login,
                                                                       pair):
    login("owner")
    response = preview(client, pair)
    html = text_of(response)

    assert response.status_code == 200
    table = by_testid(html, "merge-table")[0]
    assert pair["keep_ref"] in table and pair["dup_ref"] in table
    assert "Nottingham" in table and "Sherwood" in table
    assert by_testid(html, "survivor-badge") == ["survivor"]
    # a field that differs offers one radio per record, the survivor's value chosen
    assert radio_values(html, "town") == [pair["keep"], pair["dup"]]
    assert checked_radio(html, "town") == pair["keep"]
    # a field that is the same on both offers no choice
    assert radio_values(html, "surname") == []
    counts = by_testid(html, "merge-counts")[0]
    assert re.search(r"Notes 0 1", counts) and re.search(r"Bookings 0 1", counts)
    assert "different e-mail addresses" in by_testid(html, "merge-conflicts")[0]
    assert by_testid(html, "merge-blocking") == []
    assert f"Merge 1 record into {pair['keep_ref']}" in by_testid(html, "confirm-merge")[0]
    # nothing happens on a preview
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}


def test_make_survivor_swaps_the_records(client, login, pair):
    login("owner")
    html = text_of(preview(client, pair, survivor=pair["dup"]))

    assert f"Merge 1 record into {pair['dup_ref']}" in by_testid(html, "confirm-merge")[0]
    assert checked_radio(html, "town") == pair["dup"]


def test_the_list_action_leads_to_the_preview(client, login, pair):
    login("owner")
    response = client.post("/admin/owner/customer/action/",
                           data={"action": "merge", "rowid": [str(pair["keep"]), str(pair["dup"])]})

    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert pair["dup_ref"] in by_testid(text_of(page), "merge-table")[0]


# --- confirming ----------------------------------------------------------------------------
def test_confirming_merges_with_the_chosen_values(app, client, login, pair):
    login("owner")
    response = confirm(client, pair, field_town=str(pair["dup"]),
                       field_email=str(pair["dup"]))
    html = text_of(response)

    assert response.status_code == 200
    message = by_testid(html, "result-message")[0]
    assert f"Merged {pair['dup_ref']} into {pair['keep_ref']}" in message
    assert "1 note" in message and "1 booking" in message
    assert load(app, Customer, pair["keep"], "town", "email") == {
        "town": "Sherwood", "email": "robin.hood@example.com"}
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}
    assert count_rows(app, Note, Note.customer_id == pair["keep"]) == 1
    # the duplicate leaves the list
    assert pair["dup"] not in list_row_ids(text_of(client.get("/admin/owner/customer/")))


def test_unchosen_fields_keep_the_survivors_value(app, client, login, pair):
    login("owner")
    confirm(client, pair)

    assert load(app, Customer, pair["keep"], "town", "email") == {
        "town": "Nottingham", "email": "robin@example.com"}


def test_the_old_url_of_the_duplicate_leads_to_the_survivor(client, login, pair):
    login("owner")
    confirm(client, pair)

    response = client.get(f"/admin/owner/customer/details/?id={pair['dup']}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/details/?id={pair['keep']}")
    page = text_of(client.get(response.headers["Location"]))
    assert f"{pair['dup_ref']} was merged into {pair['keep_ref']}" in " ".join(flashes(page))
    edit = client.get(f"/admin/owner/customer/edit/?id={pair['dup']}")
    assert edit.status_code == 302
    assert edit.headers["Location"].endswith(f"/edit/?id={pair['keep']}")


def test_a_forged_field_choice_is_refused_and_nothing_changes(app, client, login, pair):
    login("owner")
    with app.app_context():
        stranger = customer(db.session, town="Elsewhere").id
        db.session.commit()
    response = confirm(client, pair, field_town=str(stranger))

    assert response.status_code == 400
    assert "must come from one of the records" in by_testid(text_of(response), "action-error")[0]
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}
    assert count_rows(app, CustomerMerge) == 0


def test_a_merged_away_record_cannot_be_merged_again(app, client, login, pair):
    login("owner")
    confirm(client, pair)
    with app.app_context():
        third = customer(db.session).id
        db.session.commit()

    response = client.get(merge_url(), query_string={"ids": [third, pair["dup"]]})
    assert response.status_code == 400
    assert f"{pair['dup_ref']} was already merged into {pair['keep_ref']}" in by_testid(
        text_of(response), "action-error")[0]
    forged = client.post(merge_url(), data={"ids": [str(third), str(pair["dup"])],
                                            "survivor": str(third), "confirm": "1"})
    assert forged.status_code == 400
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}


def test_portal_accounts_on_both_records_block_the_merge(app, client, login, pair):
    login("owner")
    with app.app_context():
        for key in (pair["keep"], pair["dup"]):
            f.make_portal_account(db.session, db.session.get(Customer, key))
        db.session.commit()

    html = text_of(preview(client, pair))
    assert "each have a portal account" in by_testid(html, "merge-blocking")[0]
    assert re.search(r'data-testid="confirm-merge" disabled', html)

    response = confirm(client, pair)
    assert response.status_code == 400
    assert "each have a portal account" in by_testid(text_of(response), "action-error")[0]
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}
    assert count_rows(app, CustomerMerge) == 0


# --- merge with… ---------------------------------------------------------------------------
def test_merge_with_finds_the_other_record(app, client, login, pair):
    login("owner")
    with app.app_context():
        customer(db.session, surname="Unrelated")
        db.session.commit()

    empty = text_of(client.get(merge_url(), query_string={"ids": pair["keep"]}))
    assert 'data-testid="merge-search"' in empty
    html = text_of(client.get(merge_url(), query_string={"ids": pair["keep"], "q": "hood"}))

    links = [unescape(u) for u in re.findall(
        r'href="([^"]+)" data-testid="preview-merge"', html)]
    assert links == [f"{merge_url()}?ids={pair['keep']}&ids={pair['dup']}"]
    assert "Unrelated" not in html


def test_merge_with_a_short_word_asks_for_more(client, login, pair):
    login("owner")
    html = text_of(client.get(merge_url(), query_string={"ids": pair["keep"], "q": "h"}))

    assert "Search words need at least" in html
    assert 'data-testid="preview-merge"' not in html


# --- undo ------------------------------------------------------------------------------------
def test_the_done_page_leads_to_undo_and_undo_brings_the_duplicate_back(app, client, login,
                                                                         pair):
    login("owner")
    done = text_of(confirm(client, pair, field_town=str(pair["dup"])))
    merge_id = merge_id_of(app, pair["keep"])
    undo_link = unescape(re.search(r'href="([^"]+)" data-testid="undo-link"', done).group(1))
    assert undo_link == f"{undo_url()}?merge_id={merge_id}"

    page = text_of(client.get(undo_link))
    assert f"Undo merge #{merge_id}" in page
    assert pair["dup_ref"] in page and 'data-testid="confirm-undo"' in page

    response = client.post(undo_url(), data={"merge_id": str(merge_id), "confirm": "1"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/details/?id={pair['keep']}")
    survivor_page = text_of(client.get(response.headers["Location"]))
    assert f"Merge #{merge_id} undone" in " ".join(flashes(survivor_page))
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}
    assert load(app, Customer, pair["keep"], "town") == {"town": "Nottingham"}
    assert count_rows(app, Note, Note.customer_id == pair["dup"]) == 1
    assert {pair["keep"], pair["dup"]} <= set(
        list_row_ids(text_of(client.get("/admin/owner/customer/"))))
    # a second undo changes nothing and says why
    again = client.post(undo_url(), data={"merge_id": str(merge_id), "confirm": "1"})
    assert again.status_code == 400
    assert "already undone" in by_testid(text_of(again), "action-error")[0]


def test_the_audit_log_and_the_record_page_link_a_merge_to_its_undo(app, client, login, pair):
    login("owner")
    confirm(client, pair)
    merge_id = merge_id_of(app, pair["keep"])
    target = f"{undo_url()}?merge_id={merge_id}"

    log = text_of(client.get("/admin/owner/audit_event/"))
    assert [unescape(u) for u in re.findall(r'href="([^"]+)" data-testid="audit-undo"', log)] \
        == [target]
    record = text_of(client.get(f"/admin/owner/customer/details/?id={pair['keep']}"))
    assert unescape(re.search(rf'href="([^"]+)" data-testid="undo-merge-{merge_id}"',
                              record).group(1)) == target


def test_undo_is_refused_once_the_survivor_was_edited(app, client, login, pair):
    login("owner")
    confirm(client, pair)
    merge_id = merge_id_of(app, pair["keep"])
    with app.app_context():
        db.session.get(Customer, pair["keep"]).town = "York"
        db.session.commit()

    page = text_of(client.get(undo_url(), query_string={"merge_id": merge_id}))
    assert "was edited after the merge" in by_testid(page, "undo-refused")[0]
    assert 'data-testid="confirm-undo"' not in page
    forced = client.post(undo_url(), data={"merge_id": str(merge_id), "confirm": "1"})
    assert forced.status_code == 400
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}


def test_undo_of_an_unknown_merge_is_not_found(client, login):
    login("owner")
    assert client.get(undo_url(), query_string={"merge_id": 999999}).status_code == 404
    assert client.get(undo_url()).status_code == 404


# --- who may ---------------------------------------------------------------------------------
def test_an_admin_may_merge(app, client, login, pair):
    login("admin")
    assert preview(client, pair, role="admin").status_code == 200
    assert confirm(client, pair, role="admin").status_code == 200
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}


def test_a_coordinator_can_neither_see_nor_run_a_merge(app, client, login, pair):
    login("coordinator")
    record = text_of(client.get(f"/admin/coordinator/customer/details/?id={pair['keep']}"))
    assert "merge/" not in record
    listing = text_of(client.get("/admin/coordinator/customer/"))
    assert "Merge…" not in listing

    assert preview(client, pair, role="coordinator").status_code == 403
    assert client.get(merge_url("coordinator"), query_string={"ids": pair["keep"], "q": "hood"}
                      ).status_code == 403
    assert confirm(client, pair, role="coordinator").status_code == 403
    via_action = client.post("/admin/coordinator/customer/action/",
                             data={"action": "merge",
                                   "rowid": [str(pair["keep"]), str(pair["dup"])]})
    assert via_action.status_code == 403
    assert "merge/" not in via_action.headers.get("Location", "")
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}


def test_a_coordinator_cannot_undo_a_merge(app, client, login, other_client, pair):
    owner = other_client("owner")
    confirm(owner, pair)
    merge_id = merge_id_of(app, pair["keep"])
    login("coordinator")

    assert client.get(undo_url("coordinator"), query_string={"merge_id": merge_id}
                      ).status_code == 403
    response = client.post(undo_url("coordinator"),
                           data={"merge_id": str(merge_id), "confirm": "1"})
    assert response.status_code == 403
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}


def test_signed_out_the_merge_pages_lead_to_sign_in(client, pair):
    for response in (preview(client, pair),
                     client.get(undo_url(), query_string={"merge_id": 1})):
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_merge_and_undo_without_the_csrf_token_are_refused(app, client, login, other_client,
                                                          pair):
    login("owner")
    data = {"ids": [str(pair["keep"]), str(pair["dup"])], "survivor": str(pair["keep"]),
            "confirm": "1"}
    assert client.post(merge_url(), data=data, csrf=False).status_code == 400
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": None}

    confirm(client, pair)
    merge_id = merge_id_of(app, pair["keep"])
    response = client.post(undo_url(), data={"merge_id": str(merge_id), "confirm": "1"},
                           csrf=False)
    assert response.status_code == 400
    assert load(app, Customer, pair["dup"], "merged_into_id") == {"merged_into_id": pair["keep"]}


# --- escaping ----------------------------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"


def test_names_are_escaped_on_the_merge_pages(app, client, login):
    login("owner")
    with app.app_context():
        keep = customer(db.session, surname=SCRIPT, email="x1@example.com")
        dup = customer(db.session, surname="Plain", first_name=SCRIPT, email="x2@example.com")
        db.session.commit()
        pair = {"keep": keep.id, "dup": dup.id}

    pages = [
        preview(client, pair),
        client.get(merge_url(), query_string={"ids": pair["dup"], "q": "tester"}),
        confirm(client, pair),
        client.get(f"/admin/owner/customer/details/?id={pair['keep']}"),
        client.get("/admin/owner/audit_event/"),
    ]
    with app.app_context():
        merge_id = db.session.query(CustomerMerge.id).scalar()
    pages.append(client.get(undo_url(), query_string={"merge_id": merge_id}))
    for response in pages:
        html = text_of(response)
        assert response.status_code == 200, response.request.path
        assert SCRIPT not in html, response.request.path
    assert "&lt;script&gt;" in text_of(pages[0])
    assert count_rows(app, AuditEvent, AuditEvent.verb == "merge") == 1


def test_selecting_too_many_to_merge_says_how_many_were_chosen(app, client, login):
    with app.app_context():
        keys = [customer(db.session, surname=f"Many{i}").id for i in range(60)]
        db.session.commit()
    login("owner")
    response = client.post("/admin/owner/customer/action/",
                           data={"action": "merge", "rowid": [str(k) for k in keys]})
    page = client.get(response.headers["Location"])

    assert page.status_code == 400
    assert by_testid(text_of(page), "action-error") == [
        "At most 50 customers can be merged at once; 60 were chosen."]
    assert count_rows(app, Customer, Customer.merged_into_id.is_not(None)) == 0
