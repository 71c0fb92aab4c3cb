#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 16 / R-PROV-13 with several hosts: HOSTS amtprovd (default 3; MULTIHOST_HOSTS=2 for
# two) with their own host ids share one site on a real PostgreSQL server (started by the
# test on a Unix socket in a private directory, stopped by the EXIT trap) and provision one
# amtsim fleet. Once the first host holds device leases it is SIGKILLed; the others finish
# its devices after its leases run out (engine.lease_seconds 5). At the end every device is
# PROVISIONED exactly once (audit trail) and its firmware ran CommitChanges exactly once (no
# device was provisioned by two hosts); every certificate the CA issued is recorded, one
# active web server certificate per device.
#
# The server asks for a password: the hosts read it from database.password_file, and keep
# the site's secrets in credstore-pg (issue 16 item 3) in the same database, under a key
# file the database never sees. At the end every record decrypts with that key, and no
# secret (nor the database password) is in the raw rows or any host's log.
#
# Shared by the hosts and said plainly: they run on this one machine from one manifest, so
# they share its state directory and one ca-local instance (its issuance database is
# SQLite, written under transactions by each process). That is the test's setup, not a
# supported multi-machine layout (ca-local is single-host, docs/database.md). No
# host serves ca-local's CRL (they would all bind one address), so the transport's CRL check
# is off here; revocation is not what this test is about.
#
# With two hosts (test_multihost_pg_two.sh) it then checks that a maintenance task runs on
# one host at a time (task leases): two fresh hosts, a psql session holding an exclusive
# lock on the certificates table so that a provisioning-certificate run blocks mid-run, and
# an on-demand run request. One host claims the run and blocks, the other only notes that
# it is held; the holder is SIGKILLed and the lock dropped; the other runs the task once
# the holder's lease has run out (its run starts after the dead lease's expiry) and records
# it.
TEST_NAME=multihost_pg${MULTIHOST_HOSTS:+_$MULTIHOST_HOSTS}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/recovery_lib.sh"
. "$AMTPROV_SOURCE_DIR/tests/pg/pg_lib.sh"

HOSTS=${MULTIHOST_HOSTS:-3}
N=12
pgbase=$(mktemp -d "${TMPDIR:-/tmp}/amtprov-pg-XXXXXX")
chmod 711 "$pgbase"
trap 'pg_stop; rm -rf "$pgbase"; cleanup' EXIT
PG_PASSWORD="db-Pw-$$-$RANDOM$RANDOM"
pg_start "$pgbase/pg" || { fail "start a private PostgreSQL server"; finish; }
URL=$(pg_createdb amtprov_site) || { fail "create the site database"; finish; }
q() { pg_psql -q -A -t -v ON_ERROR_STOP=1 "$URL" -c "$1"; }

mkdir -p "$T/sim"; fleet "$N" '{"latency_ms": 150}'; sim_start
mkdir -p "$T/site"
(umask 077; printf '%s\n' "$PG_PASSWORD" >"$T/site/db.password"; openssl rand -hex 32 >"$T/site/cred.key")
CREDKEY=$(cat "$T/site/cred.key")
cat >"$T/site/site.json" <<JSON
{ "manifest_version": 1,
  "site": { "name": "multi", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "database": { "url": "$URL", "password_file": "db.password" },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "amt": {"plugin": "amt-transport", "config": {"crl_check": false}},
               "lab-ca": {"plugin": "ca-local", "config": {"crl_url": "http://$NET.250:8080/lab-ca.crl"}},
               "creds": {"plugin": "credstore-pg", "config": {"url": "$URL",
                         "password_file": "$T/site/db.password", "key_file": "$T/site/cred.key"}} },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true},
  "engine": {"max_in_flight": 4, "lease_seconds": 5, "crash_loop_limit": 1000,
             "retry": {"base_seconds": 1, "max_seconds": 2, "max_attempts": 5}} }
JSON
# Secret files the hosts cannot rely on are reported by a check that creates nothing.
# (--no-plugins: credstore-pg reads the same password file and would report it first.)
chmod 644 "$T/site/db.password"
"$AMTPROV" -m "$T/site/site.json" manifest check --no-plugins >"$T/check.out" 2>&1
check "manifest check reports a database password file others can read" \
  grep -q "/database/password_file.*chmod 600" "$T/check.out"
"$AMTPROV" -m "$T/site/site.json" manifest check >>"$T/check.out" 2>&1
check "so does credstore-pg, for its own password_file" \
  grep -q "/plugins/creds/config/password_file.*chmod 600 " "$T/check.out"
chmod 600 "$T/site/db.password"; chmod 644 "$T/site/cred.key"
"$AMTPROV" -m "$T/site/site.json" manifest check >>"$T/check.out" 2>&1
check "manifest check reports a credential key file others can read" \
  grep -q "/plugins/creds/config/key_file.*chmod 600 " "$T/check.out"
chmod 600 "$T/site/cred.key"
check "manifest check passes with both files 0600" "$AMTPROV" -m "$T/site/site.json" manifest check
check "the check created nothing in the database" test "$(q "select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')")" = 0
check "amtprov db init creates the schema in PostgreSQL" "$AMTPROV" -m "$T/site/site.json" db init
check "amtprov db check passes" "$AMTPROV" -m "$T/site/site.json" db check
check "register $N devices" register "$N"

declare -a HPID
for ((h = 1; h <= HOSTS; h++)); do
  AMTPROV_HOST_ID=h$h start_daemon "$T/h$h.log" -m "$T/site/site.json"
  HPID[$h]=$DAEMON_PID
done
holds() { [ "$(q "select count(*) from devices where lease_owner = 'h1' and state like '%ING'")" -gt 0 ]; }
check "host h1 holds leases on devices mid-step" wait_for 120 holds
kill -KILL "${HPID[1]}"; wait "${HPID[1]}" 2>/dev/null
killed=$(q "select count(*) from devices where lease_owner = 'h1' and state like '%ING'")
echo "# killed h1 holding $killed device(s) mid-step: $(q "select string_agg(state || ':' || n, ' ') from (select state, count(*) n from devices group by state) s")"
settled() { [ "$(q "select count(*) from devices where state in ('PROVISIONED', 'FAILED')")" = "$N" ]; }
check "the other hosts settle the fleet" wait_for 300 settled
for ((h = 2; h <= HOSTS; h++)); do kill -TERM "${HPID[$h]}" 2>/dev/null; wait "${HPID[$h]}" 2>/dev/null; done

check "R-PROV-13: every device is PROVISIONED ($(q "select string_agg(fqdn || ' ' || state || ' ' || last_error, '; ') from devices where state <> 'PROVISIONED'"))" \
  test "$(q "select count(*) from devices where state = 'PROVISIONED'")" = "$N"
check "each device reached PROVISIONED once in the audit trail" \
  test "$(q "select count(*) || '/' || count(distinct device_id) from audit where action = 'state' and detail like '% -> PROVISIONED%'")" = "$N/$N"
resumed=$(cat "$T"/h[2-9].log | grep -c "rewound .* after restart")
check "a surviving host resumed h1's interrupted steps ($resumed rewound, $killed held)" \
  test "$resumed" -ge 1
worked=0
for ((h = 2; h <= HOSTS; h++)); do grep -q -- "-> PROVISIONED\|-> NEED_" "$T/h$h.log" && worked=$((worked + 1)); done
check "every surviving host worked on devices ($worked of $((HOSTS - 1)))" test "$worked" = "$((HOSTS - 1))"
once=0
for ((i = 1; i <= N; i++)); do
  "$AMTSIM" dump --control "$T/sim/control.sock" "pc$i" >"$T/pc$i.dump.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(sum(e["event"].startswith("CommitChanges: provisioned") for e in d["audit"]) != 1)' \
    "$T/pc$i.dump.json" && once=$((once + 1))
done
check "no device was provisioned twice: each firmware ran CommitChanges exactly once ($once of $N)" test "$once" = "$N"
check "one active web server certificate per device" \
  test "$(q "select count(distinct device_id) || '/' || count(*) from certificates where status = 'active'")" = "$N/$N"
qca "select serial from certificates" >"$T/issued.txt"
q "select serial_hex from certificates" >"$T/known.txt"
reported=$(q "select count(*) from status_messages where msg_id = 8210")
untracked=$(python3 - "$T/issued.txt" "$T/known.txt" <<'PY'
import sys
norm = lambda s: s.strip().upper().lstrip("0")
issued = {norm(l) for l in open(sys.argv[1]) if l.strip()}
known = {norm(l) for l in open(sys.argv[2]) if l.strip()}
print(len(issued - known))
PY
)
check "R-PROV-13: every certificate the CA issued is recorded ($(wc -l <"$T/issued.txt") issued, $untracked not recorded, $reported reported as possibly untracked)" \
  test "$untracked" -le "$reported"
check "no lease is left behind" test "$(q "select count(*) from devices where lease_owner not in ('', 'h1')")" = 0
if [ "$HOSTS" = 2 ]; then
  TASK=provisioning-certificate
  tq() { q "select $1 from maintenance_tasks where name = '$TASK'"; }
  declare -A TPID
  for t in t1 t2; do
    AMTPROV_HOST_ID=$t start_daemon "$T/$t.log" -m "$T/site/site.json"
    TPID[$t]=$DAEMON_PID
  done
  up() { grep -q "host id (device and task leases): $1" "$T/$1.log"; }
  check "two fresh hosts start" wait_for 30 eval 'up t1 && up t2'
  # The lock makes a run of the task block in its first read of certificates.
  PGAPPNAME=locker pg_psql -q "$URL" -c "BEGIN; LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);" >/dev/null 2>&1 &
  LOCKER=$!; PIDS+=("$LOCKER")
  locked() { [ "$(q "select count(*) from pg_locks l join pg_stat_activity a using (pid) where a.application_name = 'locker' and l.relation = 'certificates'::regclass and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ]; }
  check "a psql session holds an exclusive lock on certificates" wait_for 20 locked
  check "amtprov task run $TASK (on-demand request)" "$AMTPROV" -m "$T/site/site.json" task run "$TASK"
  held() { case "$(tq lease_owner)" in t1|t2) return 0;; *) return 1;; esac; }
  check "one host claims the task's run (task lease)" wait_for 20 held
  X=$(tq lease_owner); Y=t1; [ "$X" = t1 ] && Y=t2
  check "amtprov task list --json says $X runs it" test "$("$AMTPROV" -m "$T/site/site.json" --json task list |
    python3 -c 'import json,sys; print([t["running_on"] for t in json.load(sys.stdin) if t["name"] == sys.argv[1]][0])' "$TASK")" = "$X"
  noted() { grep -q "task $TASK: due, run by host $X" "$T/$Y.log"; }
  check "the other host ($Y) sees the task due and held by $X, and does not run it" wait_for 20 noted
  until_dead=$(tq lease_until)
  kill -KILL "${TPID[$X]}"; wait "${TPID[$X]}" 2>/dev/null
  q "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'locker'" >/dev/null
  served() { [ "$(tq "requests = served and last_run > 0 and lease_owner = ''")" = t ]; }
  check "after $X was SIGKILLed, $Y runs the task and records it" wait_for 60 served
  check "$Y's run began after $X's lease ran out ($(tq last_run) > $until_dead)" \
    test "$(tq last_run)" -gt "$until_dead"
  runs() { grep -c "task $TASK: running (requested)" "$T/$1.log"; }
  check "the task ran once on each host: interrupted on $X, taken over by $Y ($(runs "$X")+$(runs "$Y"))" \
    test "$(runs "$X")/$(runs "$Y")" = 1/1
  kill -TERM "${TPID[$Y]}" 2>/dev/null; wait "${TPID[$Y]}" 2>/dev/null
  check "no task lease is left behind" test "$(q "select count(*) from maintenance_tasks where lease_owner <> ''")" = 0
fi
logs=("$T"/h*.log)
[ "$HOSTS" != 2 ] || logs+=("$T"/t*.log)
check "amtprov db check passes after the kill" "$AMTPROV" -m "$T/site/site.json" db check
# credstore-pg: every record the hosts wrote decrypts with the key file (the format of
# docs/credstore-pg.md); none of those values, nor the database password, is in the raw rows
# or in a host's log.
q "select name, format, key_id, encode(nonce, 'hex'), encode(tag, 'hex'), encode(ciphertext, 'hex') from amtprov_credstore.records" >"$T/cred_rows.txt"
q "select t::text from amtprov_credstore.records t" >"$T/cred_raw.txt"
python3 - "$CREDKEY" "$T/cred_rows.txt" >"$T/cred_secrets.txt" <<'PY'
import hashlib, hmac, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[1])
kid = int.from_bytes(hmac.new(key, b"amtprov credstore-pg key id", hashlib.sha256).digest()[:4], "big") or 1
for line in open(sys.argv[2]):
    name, fmt, key_id, nonce, tag, ct = line.rstrip("\n").split("|")
    assert int(fmt) == 1 and int(key_id) == kid, name
    aad = b"amtprov-credstore-pg\0" + bytes([1]) + kid.to_bytes(4, "big") + name.encode()
    value = AESGCM(key).decrypt(bytes.fromhex(nonce), bytes.fromhex(ct + tag), aad)
    print("%s\t%s" % (name, value.decode("latin-1").replace("\n", "\\n")))
PY
check "every credstore-pg record decrypts with the key file ($(wc -l <"$T/cred_rows.txt") records)" \
  test "$(wc -l <"$T/cred_secrets.txt")" = "$(wc -l <"$T/cred_rows.txt")" -a "$(wc -l <"$T/cred_rows.txt")" -ge "$N"
printf 'db-password\t%s\ncredstore-key\t%s\n' "$PG_PASSWORD" "$CREDKEY" >>"$T/cred_secrets.txt"
check "no secret in the raw credential rows or the hosts' logs" \
  python3 "$AMTPROV_SOURCE_DIR/tests/integration/secret_scan.py" "$T/cred_secrets.txt" -- "$T/cred_raw.txt" "${logs[@]}" "$T/check.out"
check "no sanitizer report" no_sanitizer_reports "${logs[@]}" "$T/amtsim.log"
finish
