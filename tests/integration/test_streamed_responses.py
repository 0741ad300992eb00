"""Streamed responses give their database connection back: a CSV export is written after the
request has ended, and each one used to keep a pooled connection checked out, so that about
180 exports in a row (a coordinator is enough) left every later request, /healthz included,
waiting 30 s and failing, until a restart."""

from crm.extensions import db
from tests.integration.helpers import customer, url


def _checked_out(app) -> int:
    with app.app_context():
        return db.engine.pool.checkedout()


def test_300_exports_in_a_row_leave_no_connection_checked_out(app, client, login):
    with app.app_context():
        for n in range(3):
            customer(db.session, surname=f"Export{n}")
        db.session.commit()
    login("coordinator")

    for _ in range(300):
        response = client.get(url("coordinator", "customer", "export/csv/"))
        assert response.status_code == 200
        assert "Export2" in response.get_data(as_text=True)

    assert _checked_out(app) == 0
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok"}


def test_an_export_abandoned_part_way_gives_its_connection_back(app, client, login):
    """A client that disconnects mid-download: the server closes the body unread."""
    with app.app_context():
        for n in range(3):
            customer(db.session, surname=f"Abandoned{n}")
        db.session.commit()
    login("owner")

    for _ in range(30):
        response = client.get(url("owner", "customer", "export/csv/"), buffered=False)
        assert response.status_code == 200
        body = iter(response.response)
        next(body), next(body)  # the header row and a first customer, then it goes away
        response.close()

    assert _checked_out(app) == 0
    assert client.get("/healthz").status_code == 200
