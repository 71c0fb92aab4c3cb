#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The 802.1X client certificate's CA outcomes in the second stage (R-PROV-11 3, R-8021X-02,
# R-PROV-13): each simulated device is provisioned by its own site whose wired EAP-TLS
# profile asks a fake CA. REJECTED -> FAILED with the CA's reason and nothing recorded but
# the key AMT generated for the request (kept for the next attempt);
# UNREACHABLE -> back to NEED_8021X with backoff and the reason; WAIT -> the cookie
# kept, the device in CA_WAITING (as for the web server certificate), then back in
# NEED_8021X, which polls until issued, then PROVISIONED with the certificate bound;
# a WAIT during an update waits in CA_WAITING, then NEED_UPDATE polls (R-REV-04).
TEST_NAME=e2e_8021x_ca
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
claim_net

pki="$T/pki"
make_prov_pki "$pki"

mkdir -p "$T/sim"
dev() { printf '{ "id": "%s", "address": "%s", "amt_version": "16.1.25", "provisioning_state": "in", "host_name": "%s", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "%s" } ] }' "$1" "$2" "$1" "$ROOT_HASH"; }
cat >"$T/fleet.json" <<JSON
{ "key_pool": 4, "keygen_latency_ms": 20,
  "devices": [ $(dev rej "$NET.1"), $(dev unr "$NET.2"), $(dev wait "$NET.3") ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

# site NAME DEVICE CRL-HOST FAKE-CA CONFIG: a site whose 802.1X CA is FAKE-CA.
site() {
  local d="$T/$1"
  mkdir -p "$d"
  cat >"$d/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "$1", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins", "$TEST_PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.$3:8080"}},
    "dot1x-ca": {"plugin": "$4", "config": $5},
    "creds": {"plugin": "credstore-file"},
    "dot1x": {"plugin": "radius-8021x"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"},
  "ieee8021x": {"plugin": "dot1x",
                "wired": {"name": "lan", "eap": "eap-tls", "client_certificate": {"ca": "dot1x-ca"}}}
}
JSON
  "$AMTPROV" -m "$d/site.json" db init >/dev/null
  "$AMTSIM" agent --state-dir "$T/sim" --device "$2" >"$d/agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$d/site.json" device add --from-json "$d/agent.json" >/dev/null
}
db() { sqlite3 -batch -noheader "$T/$1/state/site.db" "$2"; }

# REJECTED
site rejected rej 250 fake-ca-rejected '{"reason": "no 802.1X for this OU"}'
"$AMTPROVD" -m "$T/rejected/site.json" --once=120 2>"$T/d1.log"
check "no sanitizer report" no_sanitizer_reports "$T/d1.log"
check "REJECTED: the device is FAILED" test "$(db rejected "select state from devices")" = FAILED
check "REJECTED: with the CA's reason, naming the profile" \
  test -n "$(db rejected "select 1 from devices where last_error like '%no 802.1X for this OU%' and last_error like '%lan%'")"
check "REJECTED: status 8201 recorded" test "$(db rejected "select count(*) from status_messages where msg_id=8201")" = 1
check "REJECTED: no client certificate recorded, no request left in flight" \
  test "$(db rejected "select (select count(*) from certificates where purpose=2) || (select count(*) from pending_ops where kind!='8021x-amt-key')")" = 00
# R-PROV-06, R-PROV-13: the key AMT generated for the refused request stays recorded, so the
# next attempt adopts it rather than fill AMT with another.
check "REJECTED: the profile's key inside AMT stays recorded (handle) for the next attempt" \
  test "$(db rejected "select count(*) from pending_ops where kind='8021x-amt-key' and payload like '%\"handle\"%' and payload like '%\"lan\"%'")" = 1

# UNREACHABLE
site unreachable unr 251 fake-ca-unreachable '{}'
"$AMTPROVD" -m "$T/unreachable/site.json" --once=120 2>"$T/d2.log"
check "no sanitizer report" no_sanitizer_reports "$T/d2.log"
check "UNREACHABLE: retried, the device waits in NEED_8021X" \
  test "$(db unreachable "select state from devices")" = NEED_8021X
check "UNREACHABLE: with backoff and the reason" \
  test -n "$(db unreachable "select 1 from devices where attempts=1 and next_attempt_at > strftime('%s','now') and last_error like '%unreachable%'")"

# WAIT (with delay): the cookie is kept, then polled until issued
site wait wait 252 fake-ca-wait-delay '{"delay_seconds": 1, "polls_until_issued": 1}'
start_daemon "$T/d3.log" -m "$T/wait/site.json"
check "WAIT: the request is kept pending at the CA (8021x-poll with its cookie)" \
  wait_for 30 bash -c "[ \"\$(sqlite3 '$T/wait/state/site.db' \"select count(*) from pending_ops where kind='8021x-poll' and payload like '%cookie%'\")\" = 1 ] || [ \"\$(sqlite3 '$T/wait/state/site.db' 'select state from devices')\" = PROVISIONED ]"
check "WAIT: polled until issued, then PROVISIONED" \
  wait_for 30 bash -c "[ \"\$(sqlite3 '$T/wait/state/site.db' 'select state from devices')\" = PROVISIONED ]"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$T/d3.log"
check "WAIT: the device shows it waits for the CA (CA_WAITING), then the 802.1X step polls" \
  test -n "$(db wait "select 1 from audit where detail like 'CONFIGURING_8021X -> CA_WAITING%'")" -a \
       -n "$(db wait "select 1 from audit where detail like 'CA_WAITING -> NEED_8021X%'")"
check "WAIT: no pending operation left" test "$(db wait "select count(*) from pending_ops")" = 0
check "WAIT: one active client certificate for profile lan" \
  test "$(db wait "select count(*) from certificates where purpose=2 and profile='lan' and status='active'")" = 1
"$AMTSIM" dump --control "$T/sim/control.sock" wait >"$T/wait.dump.json"
check "WAIT: AMT's wired 802.1X uses it" \
  python3 -c 'import json,sys; x=json.load(open(sys.argv[1]))["ieee8021x"]; assert x["enabled"] and x["client_cert_handle"], x' "$T/wait.dump.json"

# WAIT during an update (R-REV-04): the device is deferred in NEED_UPDATE, not sent back to
# provisioning; once issued the new certificate is bound and the old one revoked.
old_id=$(db wait "select id from certificates where purpose=2 and status='active'")
"$AMTPROV" -m "$T/wait/site.json" device update wait.contoso.com >/dev/null
start_daemon "$T/d4.log" -m "$T/wait/site.json"
updated() { # PROVISIONED again, with an active client certificate other than the old one
  [ "$(db wait "select state || ' ' || (select count(*) from certificates where purpose=2 and status='active' and id <> $old_id) from devices")" = "PROVISIONED 1" ]
}
check "update WAIT: polled until issued, then PROVISIONED with a new client certificate" wait_for 30 updated
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$T/d4.log"
check "update WAIT: the device waited in CA_WAITING, then the update polled" \
  test -n "$(db wait "select 1 from audit where detail like 'UPDATING -> CA_WAITING%'")" -a \
       -n "$(db wait "select 1 from audit where detail like 'CA_WAITING -> NEED_UPDATE%'")"
check "update WAIT: the old client certificate is revoked Superseded, the new one active" \
  test "$(db wait "select group_concat(status || ':' || revocation_reason, ' ') from (select status, revocation_reason from certificates where purpose=2 order by id)")" = "revoked:4 active:-1"

finish
