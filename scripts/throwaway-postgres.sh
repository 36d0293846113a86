#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 server.
#
# usage: scripts/throwaway-postgres.sh COMMAND [ARGS...]
#
# Creates a fresh cluster in a temporary directory, starts it on a free TCP port
# on 127.0.0.1 only (trust auth, UTF8, C locale, max_connections=200), exports
#   PISHKHAN_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:<port>/postgres
# runs COMMAND, then always stops the server and deletes the directory. Exits
# with COMMAND's status. Several invocations can run at the same time.
#
# Environment:
#   PISHKHAN_PG_FAST=1 (default)  fsync, synchronous_commit and full_page_writes
#                                 off: fine for tests, never for benchmarks.
#   PISHKHAN_PG_FAST=0            durable settings (benchmarks use this).
#   PISHKHAN_PG_BIN               PostgreSQL bin directory
#                                 (default /usr/lib/postgresql/15/bin).
#
# PostgreSQL refuses to run as root: when run as root the server runs as the
# unprivileged `postgres` user (created when missing); otherwise as the caller.
set -euo pipefail

readonly PROG=throwaway-postgres
PG_BIN=${PISHKHAN_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_FAST=${PISHKHAN_PG_FAST:-1}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

if [[ $# -eq 0 ]]; then
    printf 'usage: %s COMMAND [ARGS...]\n' "$0" >&2
    exit 2
fi
case $PG_FAST in
    0 | 1) ;;
    *) die "PISHKHAN_PG_FAST must be 0 or 1, not '$PG_FAST'" ;;
esac

is_root() { [[ $EUID -eq 0 ]]; }

# --- PostgreSQL binaries and the user to run them as -------------------------

ensure_binaries() {
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/pg_isready ]] && return 0
    is_root || die "no PostgreSQL 15 in $PG_BIN; install it (apt-get install postgresql-15) or set PISHKHAN_PG_BIN"
    command -v apt-get >/dev/null || die "no PostgreSQL 15 in $PG_BIN and no apt-get to install it"
    printf '%s: installing PostgreSQL 15 with apt-get...\n' "$PROG" >&2
    local log
    log=$(mktemp)
    # Serialise concurrent installs (dpkg takes its own lock and would fail).
    if ! (
        if command -v flock >/dev/null; then
            flock 9
        fi
        [[ -x $PG_BIN/initdb ]] && exit 0
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends postgresql-15
    ) 9>/tmp/.pishkhan-pg-install.lock >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install postgresql-15 failed"
    fi
    rm -f "$log"
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL installed but $PG_BIN/initdb is missing"
}

ensure_pg_user() {
    id -u postgres >/dev/null 2>&1 && return 0
    local group_opt=(--user-group)
    getent group postgres >/dev/null 2>&1 && group_opt=(--gid postgres)
    useradd --system "${group_opt[@]}" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres ||
        id -u postgres >/dev/null 2>&1 || die "could not create the postgres user"
}

# Run a PostgreSQL program (from PG_BIN) as the server's owner, from inside the
# temporary directory (the caller's working directory may be unreadable to it).
as_pg() {
    local prog=$PG_BIN/$1
    shift
    if is_root; then
        (cd "$TMP" && runuser -u postgres -- "$prog" "$@")
    else
        (cd "$TMP" && "$prog" "$@")
    fi
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# --- cleanup -----------------------------------------------------------------

TMP=
DATA=
LOG=
SERVER=
CHILD=

stop_server() {
    [[ -n $SERVER ]] || return 0
    if kill -0 "$SERVER" 2>/dev/null && [[ -f $DATA/postmaster.pid ]]; then
        as_pg pg_ctl -D "$DATA" -m fast -w -t 30 stop >>"$LOG" 2>&1 ||
            as_pg pg_ctl -D "$DATA" -m immediate -w -t 30 stop >>"$LOG" 2>&1 ||
            true
    fi
    if [[ -f $DATA/postmaster.pid ]]; then
        local pid
        pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true # reap it: no zombie left behind
    SERVER=
}

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    set +e
    # Only reached with a live child when something went wrong in this script.
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    stop_server
    if [[ -n $TMP && -d $TMP ]]; then
        rm -rf -- "$TMP"
    fi
    exit "$status"
}

# shellcheck disable=SC2317  # invoked by trap
on_signal() {
    local sig=$1 code=$2
    trap - INT TERM HUP
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        # Ctrl-C already reached the command (same process group); anything
        # else was sent to this script alone and is passed on.
        [[ $sig == INT ]] || kill -s "$sig" "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    exit "$code"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

# --- the server --------------------------------------------------------------

ensure_binaries
if is_root; then
    ensure_pg_user
    # The server user must be able to reach the directory: stay out of $TMPDIR,
    # which may sit under root's home.
    TMP=$(mktemp -d /tmp/pishkhan-pg.XXXXXXXX)
    chown postgres: "$TMP"
else
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/pishkhan-pg.XXXXXXXX")
fi
chmod 700 "$TMP"
DATA=$TMP/data
LOG=$TMP/postgres.log
as_pg initdb -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$TMP/initdb.log" 2>&1 || {
    cat "$TMP/initdb.log" >&2
    die "initdb failed"
}
if is_root; then
    mkdir "$TMP/socket" && chown postgres: "$TMP/socket"
else
    mkdir "$TMP/socket"
fi

{
    echo
    echo "# throwaway-postgres.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$TMP/socket'"
    echo "max_connections = 200"
    if [[ $PG_FAST == 1 ]]; then
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
    fi
} >>"$DATA/postgresql.conf"

# Start the postmaster as a child of this script, in its own session (so that
# Ctrl-C meant for the command does not shut it down), and wait until it
# accepts connections.
start_server() {
    local port=$1 i
    : >"$LOG"
    if is_root; then
        (cd "$TMP" && exec setsid runuser -u postgres -- "$PG_BIN/postgres" -D "$DATA" -p "$port") \
            >>"$LOG" 2>&1 </dev/null &
    else
        (cd "$TMP" && exec setsid "$PG_BIN/postgres" -D "$DATA" -p "$port") \
            >>"$LOG" 2>&1 </dev/null &
    fi
    SERVER=$!
    for ((i = 0; i < 600; i++)); do
        kill -0 "$SERVER" 2>/dev/null || return 1
        if as_pg pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Another process may take the port between picking and binding it: retry.
PORT=
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    start_server "$PORT" && break
    stop_server
    if ((attempt < 5)) && grep -q 'could not bind\|Address already in use' "$LOG"; then
        continue
    fi
    cat "$LOG" >&2
    die "PostgreSQL did not start (server log above)"
done

export PISHKHAN_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
printf '%s: PostgreSQL on 127.0.0.1:%s (fast=%s)\n' "$PROG" "$PORT" "$PG_FAST" >&2

# --- the command -------------------------------------------------------------

# Run in the background so that TERM/HUP sent to this script are handled at
# once; keep stdin, and undo the SIGINT/SIGQUIT ignoring that bash applies to
# background jobs so that Ctrl-C still interrupts the command.
(
    trap - INT QUIT TERM HUP EXIT
    exec "$@"
) <&0 &
CHILD=$!
status=0
wait "$CHILD" || status=$?
CHILD=
exit "$status"
