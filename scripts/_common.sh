# shellcheck shell=bash
# Shared by scripts/run.sh, scripts/test.sh and .ci/run (sourced, not run).
# Sets ROOT, VENV and PY; gives ensure_venv, install_project, as_root and log helpers.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly, through passwordless sudo, or fail with a clear message.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root to run: $* (run as root, or configure passwordless sudo)"
    fi
}

apt_install() {
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" \
        >/dev/null
}

ensure_venv() {
    if [ -x "$PY" ] && "$PY" -c 'import sys' 2>/dev/null; then
        return
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed (Python 3.11+ is needed)"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11+ is needed; python3 is $(python3 --version 2>&1)"
    say "Creating $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian ships venv/ensurepip separately.
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV" || die "python3 -m venv failed"
    fi
}

# install_project EXTRA: pip install -e ".[EXTRA]", skipped when pyproject.toml has not changed
# since the last successful install of that extra, or of [dev], which includes [test]
# (CRM_FORCE_INSTALL=1 forces it).
install_project() {
    local extra="$1" digest covering
    digest="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ "${CRM_FORCE_INSTALL:-0}" != 1 ]; then
        for covering in "$extra" dev; do
            if [ "$(cat "$VENV/.crm-installed-$covering" 2>/dev/null)" = "$digest" ]; then
                return
            fi
        done
    fi
    say "Installing the project with pip (.[$extra])"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip \
        || die "could not upgrade pip"
    "$PY" -m pip install --quiet --disable-pip-version-check -e "${ROOT}[${extra}]" \
        || die "pip install -e '.[$extra]' failed (see the errors above)"
    echo "$digest" > "$VENV/.crm-installed-$extra"
}

# Seconds since the epoch, and "1m05s" from a number of seconds.
now() { date +%s; }
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
