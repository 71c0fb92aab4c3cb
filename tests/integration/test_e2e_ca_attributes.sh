#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# R-PROV-06 with a CA that needs something inside the signed request (SCEP's
# challengePassword, R-CA-03): the CA plugin hands the attribute to the core beforehand
# (csr_attributes, ca.h ABI 1.1), and the core puts it into the template AMT signs (key
# generated inside AMT) or into its own request (key made by amtprov). The test CA is
# fake-ca-* with "challenge" set: it refuses any request without that challenge, like a SCEP
# server. (ca-external's SCEP mode does the same against Debian's scepserver in its unit
# test; it cannot be the web server CA of a site, which needs ca:revoke.) Also checked: a
# request carrying the challenge is never written to the site database, and a CA_WAITING
# poll works without it.
TEST_NAME=e2e_ca_attributes
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
# A loopback /24 of our own (claim_net, lib.sh).
claim_net
CHALLENGE="Chall3nge-$$-kq"
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }

pki="$T/pki"
make_prov_pki "$pki"

SIM_PID=""
sim_start() { # version
  rm -rf "$T/sim"; mkdir -p "$T/sim"
  cat >"$T/fleet.json" <<JSON
{ "key_pool": 4, "keygen_latency_ms": 20,
  "devices": [ { "id": "pc1", "address": "$NET.1", "amt_version": "$1", "provisioning_state": "in",
      "host_name": "pc1", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] } ] }
JSON
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}
sim_stop() { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; rm -f "$T/sim/control.sock"; }
site() { # CA plugin, key_source, extra CA config
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{ "manifest_version": 1,
  "site": { "name": "attrs", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$TEST_PLUGINS", "$AMTPROV_BUILD_DIR/plugins"],
  "plugins": { "amt": {"plugin": "amt-transport", "config": {"crl_check": false}},
               "scep-like": {"plugin": "$1", "config": {"challenge": "$CHALLENGE"$3}},
               "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "scep-like", "key_source": "$2"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"} }
JSON
  rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
  "$AMTSIM" agent --state-dir "$T/sim" --device pc1 >"$T/pc1.agent.json" &&
    "$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/pc1.agent.json" >/dev/null
}
# The fake CA's certificates name no CRL, so the site's transport does not check CRLs
# (otherwise the CA contract refuses them at once, R-REV-01): "installed" = committed, TLS on
# with the CA's certificate.
installed() {
  "$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json" &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["provisioning_state"]=="post" and d["tls_remote"]["enabled"]' "$T/pc1.dump.json" &&
    [ -n "$(q "select 1 from audit where detail like 'COMMITTING -> NEED_SECOND_STAGE%'")" ]
}
audit_count() {
  "$AMTSIM" dump --control "$T/sim/control.sock" pc1 |
    python3 -c 'import json,sys; print(sum(sys.argv[1] in e["event"] for e in json.load(sys.stdin)["audit"]))' "$1"
}
no_challenge_stored() { ! grep -qa "$CHALLENGE" "$T/site/state/site.db" && ! grep -q "$CHALLENGE" "$@"; }

# --- 1. key generated inside AMT, CA answers at once.
sim_start 16.1.25; site fake-ca-issued auto ""
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d1.log"
check "AMT key + challenge: certificate installed, TLS on, committed" installed
check "the CA accepted the request AMT signed (it refuses one without the challenge)" \
  test "$(q "select count(*) from certificates where status='active' and ca_instance='scep-like'")" = 1
check "AMT generated the key and signed the request with the challenge in it" \
  test "$(audit_count 'GenerateKeyPair: key handle'):$(audit_count GeneratePKCS10RequestEx):$(audit_count AddKey)" = "1:1:0"
check "the challenge is neither in the database nor in amtprovd's log" no_challenge_stored "$T/d1.log"
sim_stop

# --- 2. the same when the CA answers WAIT: the pending record holds no request (it carries
# the challenge), and the poll still gets the certificate.
sim_start 16.1.25; site fake-ca-wait-delay auto ', "delay_seconds": 1, "polls_until_issued": 2'
start_daemon "$T/d2.log" -m "$T/site/site.json"
check "the device waits for the CA (CA_WAITING)" wait_for 30 bash -c "[ \"\$(sqlite3 -batch -noheader '$T/site/state/site.db' \"select state from devices\")\" = CA_WAITING ]"
check "the pending poll keeps the cookie and AMT's public key, not the request" \
  test "$(q "select count(*) from pending_ops where kind='ca-poll' and payload like '%\"cookie\"%' and payload like '%\"spki\"%' and payload not like '%\"csr\"%'")" = 1
check "polled until issued, then installed and committed" wait_for 60 installed
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "the challenge is neither in the database nor in amtprovd's log" no_challenge_stored "$T/d2.log"
sim_stop

# --- 3. key made by amtprov: the core adds the attribute to its own request.
sim_start 12.0.45; site fake-ca-issued amtprov ""
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d3.log"
check "amtprov key + challenge: certificate installed, TLS on, committed" installed
check "the key was added (AddKey), not generated in AMT" \
  test "$(audit_count 'AddKey: key handle'):$(audit_count GenerateKeyPair)" = "1:0"
check "the challenge is neither in the database nor in amtprovd's log" no_challenge_stored "$T/d3.log"
sim_stop

check "no sanitizer report" no_sanitizer_reports "$T"/d*.log "$T/amtsim.log"
finish
