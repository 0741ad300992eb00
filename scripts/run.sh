#!/usr/bin/env bash
# Install and run the CRM panel on this machine: one command, safe to run again.
#
#   bash scripts/run.sh
#
# Creates .venv, installs the project, migrates the database (SQLite in instance/ unless
# DATABASE_URL is set), creates an owner account the first time (its password is kept in
# instance/demo-credentials.txt), seeds demo data into an empty database, then serves
# http://127.0.0.1:5000 (HOST and PORT override the address; CRM_DEMO_CUSTOMERS the seed size)
# with a background-job worker (`flask crm worker`, log in instance/worker.log) beside it, so
# statement runs, large bulk actions and exports work out of the box. Ctrl+C stops both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
OWNER_EMAIL="${CRM_DEMO_OWNER:-owner@example.com}"
DEMO_CUSTOMERS="${CRM_DEMO_CUSTOMERS:-2000}"
CREDENTIALS="$ROOT/instance/demo-credentials.txt"
WORKER_LOG="$ROOT/instance/worker.log"
FLASK=("$VENV/bin/flask" --app app)
# Links in the e-mails (portal invitations, sign-in links) point at this server.
export CRM_PUBLIC_URL="${CRM_PUBLIC_URL:-http://$HOST:$PORT}"

ensure_venv
install_project dev

say "Migrating the database"
"${FLASK[@]}" db upgrade

# "<users> <customers> <credentials work>" for the configured database.
state() {
    CREDENTIALS="$CREDENTIALS" "$PY" - <<'PY'
import os
from pathlib import Path

from sqlalchemy import func, select

from app import app
from crm.extensions import db
from crm.models import Customer, User
from crm.security import verify_password

fields = {}
path = Path(os.environ["CREDENTIALS"])
if path.exists():
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
with app.app_context():
    users = db.session.scalar(select(func.count()).select_from(User))
    customers = db.session.scalar(select(func.count()).select_from(Customer))
    user = db.session.scalar(select(User).where(User.email == fields.get("e-mail", "")))
    works = bool(user and fields.get("password")
                 and verify_password(user.password_hash, fields["password"]))
print(users, customers, int(works))
PY
}

current="$(state)"
read -r users customers credentials_ok <<< "$(tail -n 1 <<< "$current")"

if [ "$users" -eq 0 ]; then
    say "Creating the owner account $OWNER_EMAIL"
    output="$("${FLASK[@]}" crm create-user "$OWNER_EMAIL" --role owner --name Owner)"
    echo "$output" | grep -v '^Password:' || true
    password="$(echo "$output" | sed -n 's/^Password: //p')"
    [ -n "$password" ] || die "crm create-user printed no password"
    (umask 077 && printf 'E-mail: %s\nPassword: %s\n' "$OWNER_EMAIL" "$password" > "$CREDENTIALS")
    chmod 600 "$CREDENTIALS"
    credentials_ok=1
fi

if [ "$customers" -eq 0 ]; then
    say "Seeding $DEMO_CUSTOMERS demo customers"
    if ! "${FLASK[@]}" crm seed --customers "$DEMO_CUSTOMERS" --seed 1; then
        warn "seeding the demo data failed (see above); the panel starts without it"
    fi
fi

# A demo customer with invoices gets a portal account, once, so that both sides can be tried.
if [ -f "$CREDENTIALS" ] && ! grep -q '^Portal e-mail:' "$CREDENTIALS"; then
    portal_customer="$("$PY" - <<'PY'
from sqlalchemy import func, select

from app import app
from crm.extensions import db
from crm.models import Customer, Invoice, PortalAccount

with app.app_context():
    found = db.session.execute(
        select(Customer.reference, Customer.email)
        .join(Invoice, Invoice.customer_id == Customer.id)
        .outerjoin(PortalAccount, PortalAccount.customer_id == Customer.id)
        .where(Invoice.status == "issued", Customer.status == "active",
               Customer.email.is_not(None), Customer.email_blocked.is_(False),
               Customer.merged_into_id.is_(None), PortalAccount.id.is_(None))
        .group_by(Customer.id, Customer.reference, Customer.email)
        # Something owed and overdue, and many documents: a statement worth looking at.
        .order_by((Customer.overdue_amount > 0).desc(), func.count(Invoice.id).desc(),
                  Customer.id).limit(1)
    ).first()
    print(f"{found.reference} {found.email}" if found else "")
PY
)"
    if [ -n "$portal_customer" ]; then
        read -r portal_reference portal_email <<< "$portal_customer"
        portal_password="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')"
        say "Giving $portal_reference a portal account"
        if "${FLASK[@]}" crm portal-invite "$portal_reference" --password "$portal_password" \
            >/dev/null; then
            (umask 077 && printf 'Portal e-mail: %s\nPortal password: %s\n' "$portal_email" \
                "$portal_password" >> "$CREDENTIALS")
        else
            warn "the demo portal account could not be made (see above)"
        fi
    fi
fi

email="(unknown)"
password="(unknown)"
portal_email=""
if [ -f "$CREDENTIALS" ]; then
    email="$(sed -n 's/^E-mail: //p' "$CREDENTIALS")"
    password="$(sed -n 's/^Password: //p' "$CREDENTIALS")"
    portal_email="$(sed -n 's/^Portal e-mail: //p' "$CREDENTIALS")"
    portal_password="$(sed -n 's/^Portal password: //p' "$CREDENTIALS")"
fi

echo
echo "  ============================================================"
echo "   CRM back office:  http://$HOST:$PORT/login"
if [ "$credentials_ok" = 1 ]; then
    echo "   E-mail:           $email"
    echo "   Password:         $password"
    echo "   (kept in instance/demo-credentials.txt)"
else
    echo "   This database already had staff users, and the password in"
    echo "   instance/demo-credentials.txt does not open any of them. Set one with:"
    echo "     .venv/bin/flask --app app crm create-user EMAIL --role owner"
fi
if [ -n "$portal_email" ]; then
    echo
    echo "   Customer portal:  http://$HOST:$PORT/portal/login"
    echo "   E-mail:           $portal_email"
    echo "   Password:         $portal_password"
fi
echo
echo "   Job worker:       running beside the server; its log is instance/worker.log"
echo "   Stop both with Ctrl+C."
echo "  ============================================================"
echo

# The job worker, in a process group of its own (set -m) so that Ctrl+C reaches only the
# server; when the server stops, the worker is asked to stop (SIGINT: it finishes the chunk
# in hand and puts its job back in the queue), and killed if it has not within 30 s.
WORKER_PID=""
stop_worker() {
    if [ -n "$WORKER_PID" ] && kill -0 "$WORKER_PID" 2>/dev/null; then
        echo "Stopping the job worker (it finishes the chunk in hand)..."
        kill -INT "$WORKER_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$WORKER_PID" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$WORKER_PID" 2>/dev/null; then
            warn "the job worker did not stop within 30 s; killing it (its job resumes later)"
            kill -KILL "$WORKER_PID" 2>/dev/null || true
        fi
    fi
}
trap stop_worker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$(dirname "$WORKER_LOG")"
printf '\n--- %s: scripts/run.sh started the job worker ---\n' "$(date '+%Y-%m-%d %H:%M:%S')" \
    >> "$WORKER_LOG"
set -m
"${FLASK[@]}" crm worker >> "$WORKER_LOG" 2>&1 &
WORKER_PID=$!
set +m

"${FLASK[@]}" run --host "$HOST" --port "$PORT"
