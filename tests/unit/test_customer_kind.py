"""Changing a customer's kind (lead / prospect / client) with a reason, and hiding related
people (a spouse, a child) under the customer they belong to: guards, skips, the notes, the
audit trail and its sentences, and set-based work."""

from datetime import datetime

import pytest
from sqlalchemy import select

from crm.actions import ActionError
from crm.actions.customer_kind import change_kind, hide, unhide
from crm.audit_sentences import Ref, sentence
from crm.customer_record import record_context
from crm.models import AuditEvent, Customer, Note
from tests.factories import make_customer
from tests.unit.conftest import count_statements


def reload(session, customer):
    session.expire_all()
    return session.get(Customer, customer.id)


def events(session, verb):
    return session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)
                           .order_by(AuditEvent.id)).all()


def text(parts):
    return "".join(p if isinstance(p, str) else p.text for p in parts)


# -- change the kind -----------------------------------------------------------------------


def test_a_lead_becomes_a_client_with_its_reason_on_the_timeline(session, owner):
    lead = make_customer(session, kind="lead")

    result = change_kind(session, selection=[lead.id], kind="client",
                         reason="Paid the deposit", actor=owner)
    session.commit()

    assert reload(session, lead).kind == "client"
    assert result.changed == 1 and result.message == "Changed 1 customer to client."
    [event] = events(session, "change_kind")
    assert event.subject_id == lead.id
    assert event.details["from"] == "lead" and event.details["to"] == "client"
    assert "Paid the deposit" not in str(event.details)  # the trail holds no typed text
    assert text(sentence(event, "coordinator")) == "changed the kind from lead to client"
    assert text(sentence(event, "owner", subject=Ref(lead.reference, "Customer", lead.id),
                         actor="Owner")) == f"Owner changed the kind of {lead.reference} " \
                                            "from lead to client"
    timeline = record_context(session, reload(session, lead), "coordinator", "all")["timeline"]
    said = [entry.text for entry in timeline]
    assert "changed the kind from lead to client" in said
    assert "note: Kind changed from lead to client: Paid the deposit" in said


def test_kinds_go_back_too_and_each_note_names_where_it_came_from(session, owner):
    lead, prospect, client = (make_customer(session, kind=k)
                              for k in ("lead", "prospect", "client"))

    result = change_kind(session, selection=[lead.id, prospect.id, client.id], kind="prospect",
                         reason="Re-qualified", actor=owner)

    assert result.changed == 2
    assert [str(s) for s in result.skipped] == [f"{prospect.reference} skipped: already a "
                                                "prospect"]
    assert reload(session, client).kind == "prospect"
    bodies = {n.customer_id: n.body for n in session.scalars(select(Note))}
    assert bodies == {lead.id: "Kind changed from lead to prospect: Re-qualified",
                      client.id: "Kind changed from client to prospect: Re-qualified"}
    summary, *rows = events(session, "change_kind")
    assert summary.subject_id is None and summary.details["count"] == 2
    assert text(sentence(summary, "owner", actor="Owner")) == \
        "Owner changed 2 customers to prospect"
    assert {(r.subject_id, r.details["from"]) for r in rows} == {(lead.id, "lead"),
                                                                 (client.id, "client")}


@pytest.mark.parametrize("kind, reason, message", [
    ("customer", "why", "Choose the new kind: lead, prospect or client."),
    ("client", "   ", "Give a reason for the change; it is noted on each customer."),
    ("client", "x" * 501, "Keep the reason to 500 characters or fewer; nothing was changed."),
])
def test_a_bad_kind_or_reason_is_refused_and_nothing_changes(session, owner, kind, reason,
                                                              message):
    lead = make_customer(session, kind="lead")
    with pytest.raises(ActionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        change_kind(session, selection=[lead.id], kind=kind, reason=reason, actor=owner)
    assert reload(session, lead).kind == "lead"
    assert session.scalars(select(Note)).all() == []


def test_redacted_and_merged_customers_are_skipped_with_a_reason(session, owner):
    survivor = make_customer(session, kind="lead")
    gone = make_customer(session, kind="lead", merged_into_id=survivor.id)
    erased = make_customer(session, kind="lead", redacted_at=datetime(2026, 1, 1))

    result = change_kind(session, selection=[gone.id, erased.id], kind="client",
                         reason="x", actor=owner)

    assert result.changed == 0
    assert sorted(str(s) for s in result.skipped) == sorted([
        f"{gone.reference} skipped: merged into another customer",
        f"{erased.reference} skipped: redacted"])
    assert reload(session, erased).kind == "lead" and events(session, "change_kind") == []


def test_changing_the_kind_of_many_costs_the_same_statements(session, owner):
    few = [make_customer(session, kind="lead").id for _ in range(2)]
    many = [make_customer(session, kind="lead").id for _ in range(30)]
    session.commit()
    assert owner.email  # loaded before counting
    with count_statements(session) as small:
        change_kind(session, selection=few, kind="client", reason="r", actor=owner)
    with count_statements(session) as large:
        change_kind(session, selection=many, kind="client", reason="r", actor=owner)
    assert len(large) == len(small)


# -- hidden related people -----------------------------------------------------------------


def test_hiding_links_the_person_and_unhiding_cuts_the_link(session, owner):
    parent, child = make_customer(session), make_customer(session)

    result = hide(session, selection=[child.id], related_to_id=parent.id, actor=owner)
    session.commit()

    child = reload(session, child)
    assert child.hidden and child.related_to_id == parent.id
    assert result.message == f"Hid 1 customer as related to {parent.reference}."
    [event] = events(session, "hide_related")
    assert event.details["related_to_id"] == parent.id
    parts = sentence(event, "coordinator")
    assert text(parts) == f"hid this customer as a related person of {parent.reference}"
    assert Ref(parent.reference, "Customer", parent.id) in parts

    result = unhide(session, selection=[child.id], actor=owner)
    child = reload(session, child)
    assert not child.hidden and child.related_to_id is None and result.changed == 1
    assert text(sentence(events(session, "unhide_related")[0], "owner")) == \
        "showed this customer in the lists again"


@pytest.mark.parametrize("problem, message", [
    ("missing", "That customer does not exist"),
    ("merged", "was merged into another customer"),
    ("redacted", "has been redacted; related people cannot be linked to it"),
    ("hidden", "is itself a hidden related person"),
])
def test_the_customer_they_belong_to_must_be_live_and_visible(session, owner, problem, message):
    person = make_customer(session)
    other = make_customer(session)
    target = {
        "missing": lambda: 999_999,
        "merged": lambda: make_customer(session, merged_into_id=other.id).id,
        "redacted": lambda: make_customer(session, redacted_at=datetime(2026, 1, 1)).id,
        "hidden": lambda: make_customer(session, hidden=True, related_to_id=other.id).id,
    }[problem]()
    with pytest.raises(ActionError, match=message):
        hide(session, selection=[person.id], related_to_id=target, actor=owner)
    assert not reload(session, person).hidden


def test_nobody_is_hidden_under_themselves_nor_hidden_while_others_belong_to_them(session,
                                                                                  owner):
    parent, spouse, child = (make_customer(session) for _ in range(3))
    hide(session, selection=[child.id], related_to_id=spouse.id, actor=owner)

    result = hide(session, selection=[parent.id, spouse.id, child.id], related_to_id=parent.id,
                  actor=owner)

    assert sorted(str(s) for s in result.skipped) == sorted([
        f"{parent.reference} skipped: the customer they would belong to",
        f"{spouse.reference} skipped: has related people of its own"])
    # the child moves to the parent; the spouse stays visible
    assert reload(session, child).related_to_id == parent.id
    assert not reload(session, spouse).hidden


def test_hiding_again_under_the_same_customer_changes_nothing(session, owner):
    parent, child = make_customer(session), make_customer(session)
    hide(session, selection=[child.id], related_to_id=parent.id, actor=owner)
    result = hide(session, selection=[child.id], related_to_id=parent.id, actor=owner)
    assert result.changed == 0 and result.skipped_count == 1
    assert len(events(session, "hide_related")) == 1
    assert unhide(session, selection=[parent.id], actor=owner).message == \
        "Showed 0 customers in the lists again; 1 skipped (1 not hidden)."


def test_a_choice_that_is_not_an_id_is_refused(session, owner):
    person = make_customer(session)
    for bad in (None, "12", True):
        with pytest.raises(ActionError, match="Choose the customer they belong to"):
            hide(session, selection=[person.id], related_to_id=bad, actor=owner)


# -- from a terminal -----------------------------------------------------------------------


def test_the_commands_change_the_kind_hide_and_unhide(app, session):
    runner = app.test_cli_runner()
    lead, parent, child = (make_customer(session, kind="lead") for _ in range(3))
    session.commit()

    changed = runner.invoke(args=["crm", "change-kind", lead.reference, "--kind", "client",
                                  "--reason", "Paid"])
    assert changed.exit_code == 0, changed.output
    assert "Changed 1 customer to client." in changed.output
    refused = runner.invoke(args=["crm", "change-kind", lead.reference, "--kind", "client",
                                  "--reason", " "])
    assert refused.exit_code != 0 and "Give a reason" in refused.output

    hidden = runner.invoke(args=["crm", "hide-related", child.reference, "--related-to",
                                 parent.reference])
    assert hidden.exit_code == 0, hidden.output
    assert reload(session, child).related_to_id == parent.id
    shown = runner.invoke(args=["crm", "unhide-related", child.reference])
    assert shown.exit_code == 0 and not reload(session, child).hidden
    assert reload(session, lead).kind == "client"
