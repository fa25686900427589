#!/usr/bin/env bash
# A throwaway PostgreSQL server for the Node app's tests, on 127.0.0.1 only.
#
#   pg_server.sh start DIR PORT [DB]   initdb DIR/data, start the server on 127.0.0.1:PORT,
#                                      create database DB (default apmtop_demo); waits until
#                                      it accepts connections (at most 60 s)
#   pg_server.sh stop DIR              fast shutdown of the server in DIR/data, if running
#
# Uses Debian's `postgresql` package (binaries under /usr/lib/postgresql/*/bin; APMTOP_PG_BIN
# overrides). The superuser is `postgres`, with trust authentication: test data only.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user
# (created by the package), which must be able to reach DIR. The server log is DIR/server.log.
# No Unix socket is created; clients use TCP on 127.0.0.1.
set -euo pipefail

say() { echo "pg_server.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() { die "usage: pg_server.sh start DIR PORT [DB] | stop DIR"; }

# On a fresh Debian/Ubuntu machine, as root, installs the server package (as the Python
# environment is provisioned from PyPI); anywhere else, says what to install.
install_postgresql() {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "PostgreSQL is not installed: apt-get install postgresql"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2 ||
            die "apt-get install postgresql failed"
    fi
}

# The newest installed PostgreSQL's binaries.
find_bin() {
    if [[ -n ${APMTOP_PG_BIN:-} ]]; then
        [[ -x $APMTOP_PG_BIN/initdb ]] || die "APMTOP_PG_BIN=$APMTOP_PG_BIN has no initdb"
        echo "$APMTOP_PG_BIN"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z $dir ]]; then
        install_postgresql
        dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]] ||
        die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (on Debian/Ubuntu: apt-get install postgresql; or set APMTOP_PG_BIN)"
    echo "$dir"
}

# Runs a command as the user that owns the cluster: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root and there is no 'postgres' user to run the server as (apt-get install postgresql creates it)"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2 db=${3:-apmtop_demo}
    [[ $port =~ ^[0-9]+$ ]] || die "port '$port' is not a number"
    local bin
    bin=$(find_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ ! -e $dir/data ]] || die "$dir/data already exists; use a fresh directory"
    if [[ $(id -u) -eq 0 ]]; then
        # The server user must be able to walk into DIR (often a 0700 temp dir of root's).
        chmod 0755 "$dir"
        install -d -o postgres -g postgres -m 0700 "$dir/data"
        touch "$dir/server.log"
        chown postgres:postgres "$dir/server.log"
        as_owner test -w "$dir/data" ||
            die "user postgres cannot write $dir/data (is a parent directory closed to others? use a directory under /tmp)"
    fi
    say "initdb $dir/data ($bin)"
    as_owner "$bin/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        die "initdb failed:
$(cat "$dir/initdb.log")"
    say "starting on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
        start >/dev/null 2>&1 ||
        die "the server did not start on 127.0.0.1:$port within 60 s; server log:
$(cat "$dir/server.log" 2>/dev/null)"
    "$bin/psql" --no-psqlrc --quiet --host=127.0.0.1 --port="$port" --username=postgres --dbname=postgres \
        --set=ON_ERROR_STOP=1 --command="CREATE DATABASE \"$db\"" >/dev/null ||
        die "could not create database $db on 127.0.0.1:$port"
    say "ready: postgresql://postgres@127.0.0.1:$port/$db"
}

stop() {
    local dir=$1
    [[ -f $dir/data/postmaster.pid ]] || {
        say "no server running in $dir/data"
        return 0
    }
    local bin
    bin=$(find_bin)
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=fast --wait --timeout=30 stop >/dev/null 2>&1 ||
        die "the server in $dir/data did not stop within 30 s; server log:
$(tail -n 20 "$dir/server.log" 2>/dev/null)"
    say "stopped"
}

case "${1:-}" in
start)
    [[ $# -ge 3 && $# -le 4 ]] || usage
    start "$2" "$3" "${4:-}"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
*) usage ;;
esac
