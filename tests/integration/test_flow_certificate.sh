#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The flow's certificate step through amtprovd (R-PROV-06, R-WS-01, R-PROV-13): the key is
# kept in the real credential store before the CA sees the request, an issued certificate
# is recorded with its DER, and every CA outcome lands the device in the right state:
# ISSUED -> NEED_FIRST_STAGE; REJECTED -> FAILED with the CA's reason; UNREACHABLE ->
# retried with backoff; WAIT -> CA_WAITING with the cookie kept, polled until issued.
# This test covers the key made by amtprov (key_source "amtprov"); the key generated inside
# AMT is covered by test_e2e_amt_keys.sh against amtsim.
TEST_NAME=flow_certificate
. "$(dirname "$0")/lib.sh"

q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
state_of() { q "select state from devices where fqdn='$1'"; }

pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH (lib.sh)
OTP=$(printf 'one-time' | sha256sum | cut -d' ' -f1)

site_with_ca() { # $1: CA plugin, $2: its config JSON
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "it", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$TEST_PLUGINS", "$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "amt": {"plugin": "fake-amt", "config": {"otp_hash": "$OTP", "root_hash": "$ROOT_HASH"}},
    "lab-ca": {"plugin": "$1", "config": $2},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer", "key_bits": 2048,
                                  "key_source": "amtprov"}},
  "amt": {"transport": "amt"},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"}
}
JSON
  rm -rf "$T/site/state"
  "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
  "$AMTPROV" -m "$T/site/site.json" device add --fqdn pc1.contoso.com \
    --uuid 00000000-0000-4000-8000-000000000001 --amt-version 11.8.50 --otp-hash "$OTP" >/dev/null
}

# ISSUED
site_with_ca fake-ca-issued '{}'
expect_rc 0 "amtprovd runs the certificate step" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d1.log"
check "no sanitizer report" no_sanitizer_reports "$T/d1.log"
passed_cert_step() { test -n "$(q "select 1 from audit where detail like 'REQUESTING_CERTIFICATE -> NEED_FIRST_STAGE%' or detail like 'CA_WAITING -> NEED_FIRST_STAGE%'")"; }
check "R-PROV-06: an issued certificate moves the device on to the first stage" passed_cert_step
"$AMTPROV" -m "$T/site/site.json" --json cert list --device pc1.contoso.com >"$T/certs.json"
check "R-WS-01: the certificate is recorded as an active web-server certificate for the device" \
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert len(c)==1 and c[0]["purpose"]=="web-server" and c[0]["status"]=="active" and c[0]["subject"].lower().endswith("cn=pc1.contoso.com") and c[0]["ca"]=="lab-ca"' "$T/certs.json"
check "R-PROV-13: its DER is kept beside the record" \
  test "$(q "select length(der) > 300 from certificate_data")" = 1
check "status 8200 recorded" test "$(q "select count(*) from status_messages where msg_id=8200")" = 1
check "the web server key is in the encrypted credential store, not in clear" \
  bash -c "test -s '$T/site/state/plugins/creds/credentials.store' && ! grep -q 'PRIVATE KEY' '$T/site/state/plugins/creds/credentials.store'"
check "the key is nowhere in amtprovd's log" bash -c "! grep -q 'PRIVATE KEY' '$T/d1.log'"

# The CA is only ever asked for a name of the site's policy (docs/api.md "Who may do what"):
# pc1 registered before site.fqdn_patterns excluded it
site_with_ca fake-ca-issued '{}'
sed -i 's/"dns_suffix": "contoso.com" }/"dns_suffix": "contoso.com", "fqdn_patterns": ["desk-*.contoso.com"] }/' "$T/site/site.json"
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d5.log"
check "R-PC-05: a device outside site.fqdn_patterns fails before any certificate request" \
  test "$(state_of pc1.contoso.com)" = FAILED
check "... saying why" test -n "$(q "select 1 from devices where last_error like '%matches none of the site''s fqdn_patterns%'")"
check "... and the CA was asked for nothing" \
  test "$(q "select count(*) from certificates")/$(q "select count(*) from status_messages where msg_id=8200")" = 0/0

# REJECTED
site_with_ca fake-ca-rejected '{"reason": "template AMTWebServer not allowed"}'
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d2.log"
check "a REJECTED request fails the device" test "$(state_of pc1.contoso.com)" = FAILED
check "with the CA's own reason (status 8201)" \
  test -n "$(q "select 1 from status_messages where msg_id=8201 and text like '%template AMTWebServer not allowed%'")"
check "and no certificate is recorded" test "$(q "select count(*) from certificates")" = 0

# UNREACHABLE
site_with_ca fake-ca-unreachable '{}'
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d3.log"
check "an UNREACHABLE CA is retried: the device waits in NEED_CERTIFICATE" \
  test "$(state_of pc1.contoso.com)" = NEED_CERTIFICATE
check "with backoff and the reason recorded (8202, 8105)" \
  test "$(q "select (next_attempt_at > strftime('%s','now')) || attempts || last_error_code from devices")" = "119"

# WAIT_WITH_DELAY: pending at the CA, polled until issued
site_with_ca fake-ca-wait-delay '{"delay_seconds": 1, "polls_until_issued": 1}'
start_daemon "$T/d4.log" -m "$T/site/site.json"
check "a WAIT answer keeps the request pending at the CA (CA_WAITING, cookie kept)" \
  wait_for 10 bash -c "[ \"\$(sqlite3 '$T/site/state/site.db' \"select count(*) from pending_ops where kind='ca-poll' and payload like '%cookie%'\")\" = 1 ] || [ -n \"\$(sqlite3 '$T/site/state/site.db' \"select 1 from audit where detail like 'CA_WAITING -> NEED_FIRST_STAGE%'\")\" ]"
check "the pending request is polled until the certificate is issued" \
  wait_for 15 bash -c "[ -n \"\$(sqlite3 '$T/site/state/site.db' \"select 1 from audit where detail like 'CA_WAITING -> NEED_FIRST_STAGE%'\")\" ]"
check "the finished pending operation is removed" test "$(q "select count(*) from pending_ops")" = 0
check "the audit trail shows CA_WAITING" \
  test -n "$(q "select 1 from audit where detail like '%-> CA_WAITING%'")"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$T/d4.log"

finish
