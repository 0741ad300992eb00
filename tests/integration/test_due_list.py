"""The due reminders list says how late each reminder is, in words a person uses, and a
long-overdue one stands out: a year overdue never looks like due today."""

import re
from datetime import date, timedelta

from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import by_testid, cells, text_of, url


def test_each_reminder_says_how_late_it_is_and_the_long_overdue_stand_out(app, client, login):
    today = date.today()
    with app.app_context():
        person = f.make_customer(db.session, surname="Duesworth")
        site = f.make_work_address(db.session, person)
        for days_late, what in ((400, "Boiler service"), (10, "Gutter clean"),
                                (0, "PAT testing"), (-3, "Chimney sweep")):
            f.make_reminder(db.session, site, due_on=today - timedelta(days=days_late),
                            description=what)
        db.session.commit()
    login("coordinator")
    page = text_of(client.get(url("coordinator", "due_reminder")))

    assert cells(page, "description") == ["Boiler service", "Gutter clean", "PAT testing",
                                          "Chimney sweep"]  # oldest first
    assert cells(page, "overdue_for") == ["1 year 1 month overdue", "10 days overdue",
                                          "due today", "due in 3 days"]
    assert cells(page, "due_on")[0] == f"{(today - timedelta(days=400)):%-d %b %Y}"
    # only the long-overdue one is a red badge; the others are plain words
    assert re.findall(r'<span class="badge overdue-long">([^<]+)</span>', page) == [
        "1 year 1 month overdue"]
    assert by_testid(page, "match-count") == ["4 reminders due"]
