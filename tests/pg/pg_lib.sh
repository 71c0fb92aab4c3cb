# SPDX-License-Identifier: Apache-2.0
# A private PostgreSQL server for a test (Debian's postgresql package): initdb and pg_ctl in
# a fresh directory, listening on a Unix socket in that directory only (no TCP port at all),
# trust authentication (only processes that can reach the directory can connect). Source
# it, call pg_start DIR, and call pg_stop from the test's EXIT trap: the server is stopped
# even when the test fails. Sets PG_CONNINFO (a libpq conninfo for the 'postgres' database)
# and PG_HOST, PG_USER.
#
# With PG_PASSWORD set before pg_start, the server asks for that password instead
# (scram-sha-256 on the socket): a test of how amtprov gets a database password. The
# helpers here (pg_createdb, pg_psql) give it to psql through PGPASSWORD.
#
# initdb and postgres refuse to run as root; as root the server runs as the 'postgres'
# system user the package creates (runuser), as anyone else it runs as that user.

PG_BIN=""
PG_DIR=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && PG_BIN=$d
done

pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# pg_start DIR: DIR must not exist; its parent must be traversable by the server's user.
pg_start() {
  PG_DIR=$1
  if [ -z "$PG_BIN" ]; then
    echo "pg_lib: no PostgreSQL server (install Debian's postgresql package)" >&2
    return 1
  fi
  mkdir -m 700 "$PG_DIR" || return 1
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DIR" || return 1
    PG_USER=postgres
  else
    PG_USER=$(id -un)
  fi
  local auth=(--auth=trust)
  if [ -n "${PG_PASSWORD:-}" ]; then
    printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile" && chmod 600 "$PG_DIR/pwfile" || return 1
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR/pwfile"
    auth=(--auth=scram-sha-256 --pwfile="$PG_DIR/pwfile")
  fi
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" "${auth[@]}" --no-sync \
    -E UTF8 --locale=C >"$PG_DIR.initdb.log" 2>&1 || { cat "$PG_DIR.initdb.log" >&2; return 1; }
  rm -f "$PG_DIR/pwfile"
  # listen_addresses='': no TCP socket; the Unix socket lives in PG_DIR only. fsync stays on
  # (the default): the tests check durability claims, not speed.
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 -l "$PG_DIR/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c max_connections=200" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_HOST=$PG_DIR
  PG_CONNINFO="host=$PG_DIR user=$PG_USER dbname=postgres"
  export PG_HOST PG_USER PG_CONNINFO
}

pg_stop() {
  [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  # A server pg_ctl could not stop (should not happen): kill its postmaster by its pid.
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    local pid
    pid=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  fi
  rm -rf "$PG_DIR" "$PG_DIR.initdb.log"
  PG_DIR=""
}

# pg_psql ARGS...: psql with the server's password (if any) in its environment only.
pg_psql() {
  PGPASSWORD=${PG_PASSWORD:-} "$PG_BIN/psql" -X "$@"
}

# pg_createdb NAME: a new empty database; prints its conninfo.
pg_createdb() {
  pg_psql -q -v ON_ERROR_STOP=1 "$PG_CONNINFO" -c "CREATE DATABASE \"$1\"" >&2 &&
    echo "host=$PG_DIR user=$PG_USER dbname=$1"
}
