#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The CA contract (docs/plugin-guide.md; R-WS-01, R-8021X-02, R-REV-01): a CA plugin that
# answers ISSUED with a certificate breaking one rule is refused at once, before the
# certificate reaches AMT. One simulated device per rule, each with a site whose CA is
# fake-ca-issued configured to break that rule ("break"). Web server: the device ends FAILED
# in the first stage, AMT not committed and holding no certificate of ours. 802.1X client
# (second stage, after the commit): FAILED, and AMT got no client certificate and no 802.1X
# profile. Every refusal is status 8211 naming the CA instance, the purpose and the rule.
TEST_NAME=flow_ca_contract
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
claim_net

pki="$T/pki"
make_prov_pki "$pki"

WEB_RULES=(der key subject san eku chain crl)
X_RULES=(key eku)
mkdir -p "$T/sim"
dev() { printf '{ "id": "%s", "address": "%s", "amt_version": "16.1.25", "provisioning_state": "in", "host_name": "%s", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "%s" } ] }' "$1" "$2" "$1" "$ROOT_HASH"; }
devs="" i=1
for r in "${WEB_RULES[@]}"; do devs+="${devs:+,} $(dev "w$r" "$NET.$i")"; i=$((i + 1)); done
for r in "${X_RULES[@]}"; do devs+=", $(dev "x$r" "$NET.$i")"; i=$((i + 1)); done
devs+=", $(dev wpoll "$NET.$i")"
cat >"$T/fleet.json" <<JSON
{ "key_pool": 4, "keygen_latency_ms": 20, "devices": [ $devs ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

# site NAME DEVICE WEB-CA-CONFIG [802.1X-CA-CONFIG]: the web server CA is fake-ca-issued with
# WEB-CA-CONFIG; with a fourth argument, a wired EAP-TLS profile asks another fake CA
# ("dot1x-ca") configured so, and the transport does not check CRLs (no CRL is served here,
# and the second stage must reach the 802.1X step). Without it the transport checks CRLs, as
# by default, so rule crl applies to the web server certificate.
site() {
  local d="$T/$1" xp="" xc="" tc="{}"
  mkdir -p "$d"
  if [ -n "${4:-}" ]; then
    xp=', "dot1x-ca": {"plugin": "fake-ca-issued", "config": '"$4"'}, "dot1x": {"plugin": "radius-8021x"}'
    xc=', "ieee8021x": {"plugin": "dot1x", "wired": {"name": "lan", "eap": "eap-tls", "client_certificate": {"ca": "dot1x-ca"}}}'
    tc='{"crl_check": false}'
  fi
  cat >"$d/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "$1", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins", "$TEST_PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport", "config": $tc},
    "web-ca": {"plugin": "${WEB_CA:-fake-ca-issued}", "config": $3},
    "creds": {"plugin": "credstore-file"}$xp
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "web-ca"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"}$xc
}
JSON
  "$AMTPROV" -m "$d/site.json" db init >/dev/null
  "$AMTSIM" agent --state-dir "$T/sim" --device "$2" >"$d/agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$d/site.json" device add --from-json "$d/agent.json" >/dev/null
}
db() { sqlite3 -batch -noheader "$T/$1/state/site.db" "$2"; }
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.dump.json"; }
# AMT was never committed and holds no certificate amtprov added.
untouched() {
  dump "$1" && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["provisioning_state"] == "in", d["provisioning_state"]
assert not any("AddCertificate" in e["event"] for e in d["audit"]), "a certificate was added"
' "$T/$1.dump.json"
}
# Committed by the first stage, but no 802.1X client certificate or profile in AMT: the only
# certificate amtprov added is the web server's.
no_client_cert() {
  dump "$1" && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
n = sum(e["event"].startswith("AddCertificate") for e in d["audit"])
assert n == 1, "%d certificates added" % n
assert not d["ieee8021x"]["enabled"], d["ieee8021x"]
' "$T/$1.dump.json"
}
CRL_URL="http://$NET.250:8080/web-ca.crl"

for r in "${WEB_RULES[@]}"; do
  site "w$r" "w$r" "{\"break\": \"$r\", \"crl_url\": \"$CRL_URL\"}"
  "$AMTPROVD" -m "$T/w$r/site.json" --once=60 2>"$T/w$r.log"
  check "web server, rule $r: the device is FAILED" test "$(db "w$r" "select state from devices")" = FAILED
  check "web server, rule $r: status 8211 names the CA instance, the purpose and the rule" \
    test "$(db "w$r" "select count(*) from status_messages where msg_id=8211 and text like '%CA ''web-ca'' (web-server): contract rule ''$r''%'")" = 1
  check "web server, rule $r: the device's last error says the same" \
    test -n "$(db "w$r" "select 1 from devices where last_error like '%contract rule ''$r''%'")"
  check "web server, rule $r: no certificate recorded" \
    test "$(db "w$r" "select count(*) from certificates")" = 0
  check "web server, rule $r: AMT not committed, no certificate added" untouched "w$r"
  check "no sanitizer report" no_sanitizer_reports "$T/w$r.log"
done

# WAIT_WITH_DELAY, then a poll answers ISSUED with a certificate for another key: refused the
# same way, and the request is not polled again (its pending poll is gone).
WEB_CA=fake-ca-wait-delay site wpoll wpoll '{"break": "key", "delay_seconds": 1, "crl_url": "'"$CRL_URL"'"}'
start_daemon "$T/wpoll.log" -m "$T/wpoll/site.json"
check "web server after WAIT: the device ends FAILED" \
  wait_for 60 bash -c "[ \"\$(sqlite3 '$T/wpoll/state/site.db' 'select state from devices')\" = FAILED ]"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "web server after WAIT: it waited at the CA first" \
  test -n "$(db wpoll "select 1 from audit where detail like '%-> CA_WAITING%'")"
check "web server after WAIT: status 8211 names rule 'key'" \
  test "$(db wpoll "select count(*) from status_messages where msg_id=8211 and text like '%contract rule ''key''%'")" = 1
check "web server after WAIT: no poll left pending, no certificate recorded" \
  test "$(db wpoll "select (select count(*) from pending_ops where kind='ca-poll') || (select count(*) from certificates)")" = 00
check "web server after WAIT: AMT not committed, no certificate added" untouched wpoll
check "no sanitizer report" no_sanitizer_reports "$T/wpoll.log"

# 802.1X: the web server certificate keeps the contract; the client certificate does not.
for r in "${X_RULES[@]}"; do
  site "x$r" "x$r" '{}' "{\"break\": \"$r\"}"
  "$AMTPROVD" -m "$T/x$r/site.json" --once=120 2>"$T/x$r.log"
  check "802.1X client, rule $r: the device is FAILED" test "$(db "x$r" "select state from devices")" = FAILED
  check "802.1X client, rule $r: status 8211 names the CA instance, the purpose and the rule" \
    test "$(db "x$r" "select count(*) from status_messages where msg_id=8211 and text like '%CA ''dot1x-ca'' (802.1x-client): contract rule ''$r''%'")" = 1
  check "802.1X client, rule $r: no client certificate recorded" \
    test "$(db "x$r" "select count(*) from certificates where purpose=2")" = 0
  check "802.1X client, rule $r: AMT got no client certificate and no 802.1X profile" no_client_cert "x$r"
  check "no sanitizer report" no_sanitizer_reports "$T/x$r.log"
done

# amtprov plugin test applies the same check and says which rule broke.
expect_rc 1 "plugin test: a CA breaking rule eku fails" \
  run_cli "$T/pt.out" "$T/pt.err" plugin test --plugin-dir "$TEST_PLUGINS" --purpose web-server \
  --config "{\"break\": \"eku\", \"crl_url\": \"$CRL_URL\"}" fake-ca-issued
check "plugin test names the instance, the purpose and the rule" \
  grep -q "CA 'fake-ca-issued' (web-server): contract rule 'eku'" "$T/pt.out"
# Against a site: the instance as configured there, and the site's settings.
expect_rc 1 "plugin test of a site's CA instance applies its configuration (break eku)" \
  run_cli "$T/pt.out" "$T/pt.err" -m "$T/weku/site.json" plugin test --purpose web-server web-ca
check "... and names the site's instance" \
  grep -q "CA 'web-ca' (web-server): contract rule 'eku'" "$T/pt.out"
expect_rc 0 "plugin test of a site whose transport checks no CRL needs no CRL distribution point" \
  run_cli "$T/pt.out" "$T/pt.err" -m "$T/xkey/site.json" plugin test --purpose web-server web-ca
finish
