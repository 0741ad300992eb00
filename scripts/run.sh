#!/usr/bin/env bash
# Install and run the CRM panel on this machine: one command, safe to run again.
#
#   bash scripts/run.sh
#
# Creates .venv, installs the project, migrates the database (SQLite in instance/ unless
# DATABASE_URL is set), creates an owner account the first time (its password is kept in
# instance/demo-credentials.txt), seeds demo data into an empty database, then serves
# http://127.0.0.1:5000 (HOST and PORT override the address; CRM_DEMO_CUSTOMERS the seed size).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5000}"
OWNER_EMAIL="${CRM_DEMO_OWNER:-owner@example.com}"
DEMO_CUSTOMERS="${CRM_DEMO_CUSTOMERS:-2000}"
CREDENTIALS="$ROOT/instance/demo-credentials.txt"
FLASK=("$VENV/bin/flask" --app app)

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

email="(unknown)"
password="(unknown)"
if [ -f "$CREDENTIALS" ]; then
    email="$(sed -n 's/^E-mail: //p' "$CREDENTIALS")"
    password="$(sed -n 's/^Password: //p' "$CREDENTIALS")"
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
echo "   Stop with Ctrl+C."
echo "  ============================================================"
echo

exec "${FLASK[@]}" run --host "$HOST" --port "$PORT"
