#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a command with a private PostgreSQL server (tests/pg/pg_lib.sh) whose conninfo is in
# AMTPROV_TEST_PG; the server is stopped when the command ends, fails or is interrupted.
# Usage: tests/pg/with_pg.sh COMMAND [ARGS...]   (the unit suite store_pg runs this way)
set -uo pipefail
. "$(dirname "$0")/pg_lib.sh"
base=$(mktemp -d "${TMPDIR:-/tmp}/amtprov-pg-XXXXXX") || exit 1
chmod 711 "$base"
trap 'pg_stop; rm -rf "$base"' EXIT
trap 'exit 130' INT TERM
pg_start "$base/pg" || exit 1
AMTPROV_TEST_PG=$PG_CONNINFO "$@"
