#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two enterprise CAs in one enrollment policy, through amtprovd (issue 12, MS-XCEP cAs and
# cAReferences; R-CA-01, R-CA-04 per CA). Two adcssim servers, each its own CA (key, request
# database, RequestID space): CA 1 "Contoso Issuing CA" (CES priority 1, the preferred one),
# CA 2 "Contoso Issuing CA 2" (priority 10), whose server's CEP publishes both (--peer-ca).
# The template AMTWebServerApproval is on both; CA 1 takes requests under submission, CA 2
# issues at once.
#   - `amtprov plugin test` lists both CAs;
#   - pc1's request goes to CA 1 (priority) and is pending there: the cookie names CA 1;
#   - CA 1 goes down: the RequestID stays with CA 1 (polled at CA 1 only, never at CA 2);
#   - pc2 then enrolls: CA 1 unreachable, CA 2 issues; amtprov records CA 2's chain;
#   - the certificate is revoked at its issuer, CA 2 (winrm_urls), through plugin test;
#   - CA 1 back, its officer issues pc1's request: the poll at CA 1 provisions pc1.
TEST_NAME=e2e_mscert_two_cas
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/mscert_e2e_lib.sh"

command -v sqlite3 >/dev/null || { fail "sqlite3 is installed (scripts/install-deps.sh)"; finish; exit 1; }
mscert_net   # CA_IP, HTTPS (CA 1), CA_DIR, pki, ROOT_HASH
CA2_DIR="$T/adcs2"
HTTPS2="https://$CA_IP:8444"
CA1="Contoso Issuing CA"; CA2="Contoso Issuing CA 2"
CES1="$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
CES2="$HTTPS2/Contoso%20Issuing%20CA%202_CES_UsernamePassword/service.svc/CES"
# CA 2's seed: its own CA name, and the approval template issued at once.
python3 - "$ADCSSIM_SEED" "$T/seed2.json" "$CA2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["ca"]["name"] = sys.argv[3]
for t in s["templates"]:
    if t["name"] == "AMTWebServerApproval":
        t["enrollment_flags"] = 0
json.dump(s, open(sys.argv[2], "w"))
PY

check "CA 1: adcssim on $CA_IP:8443 (CES priority 1)" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8443 8080 "$CA_DIR.pem"
CA1_PID=$ADCSSIM_PID
ADCSSIM_CA_NAME="Contoso%20Issuing%20CA%202" check "CA 2: adcssim on $CA_IP:8444 (priority 10), its CEP publishing CA 1 too" \
  adcssim_start "$CA2_DIR" "$T/seed2.json" "$CA_IP" 8444 8081 "$T/ca2.pem" --ces-priority 10 --peer-ca "$CA_DIR"
check "two CAs, two keys" bash -c "! cmp -s '$CA_DIR.pem' '$T/ca2.pem'"
cp "$CA_DIR.pem" "$T/ca1.pem"
cat "$T/ca2.pem" >>"$CA_DIR.pem"   # the site's ca_bundle: both CA hosts' TLS chains

check "amtsim serves the fleet" \
  mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)" "$(mscert_dev pc2 "$NET.2" 16.1.25)"
MS_CEP="$HTTPS2/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
MS_EXTRA=', "winrm_urls": ["'$CA1'='$HTTPS'/wsman", "'$CA2'='$HTTPS2'/wsman"]'
check "a site whose CEP publishes the two CAs, the approval template, and pc1" \
  mscert_site main AMTWebServerApproval "" pc1
M="$T/main/site.json"

check "plugin test prints both CAs of the policy" bash -c "
  '$AMTPROV' -v -m '$M' plugin test --purpose web-server --max-wait 1 adcs >'$T/pt.out' 2>'$T/pt.err'
  grep -q \"CA 1 of 2: '$CA2' (cAReferenceID 0, enrollPermission true), CES $CES2 priority 10,\" '$T/pt.err' &&
  grep -q \"CA 2 of 2: '$CA1' (cAReferenceID 1, enrollPermission true), CES $CES1 priority 1,\" '$T/pt.err'"
"$ADCSSIM" admin --dir "$CA_DIR" list --json >"$T/rows0.json"
check "plugin test's request went to CA 1 (priority 1), which took it under submission" \
  grep -Eq "^web-server +submit +WAIT_WITH_DELAY cookie '[0-9]+,$CES1#$CA1'" "$T/pt.out"
for id in $(python3 -c 'import json,sys; [print(r["id"]) for r in json.load(open(sys.argv[1])) if r["status"] == "pending"]' "$T/rows0.json"); do
  "$ADCSSIM" admin --dir "$CA_DIR" deny "$id" >/dev/null
done

mscert_pending_start "$M" "$CES1#$CA1" "$T/d.log"
kill -TERM "$CA1_PID"; wait "$CA1_PID"
check "CA 1 is down" bash -c "! curl -s --cacert '$T/ca1.pem' -o /dev/null '$CES1'"
check "the poll of RequestID $REQ stays with CA 1: its other CAs are not asked" \
  wait_for 30 grep -q "RequestID $REQ stays with CA '$CA1' that took it" "$T/d.log"
check "no poll went to CA 2" bash -c "! grep -q 'polling RequestID $REQ at the next CES, $HTTPS2' '$T/d.log'"
check "pc1 still waits with its cookie at CA 1" ms_waiting "$M" "$REQ,$CES1#$CA1"
check "CA 2 has no request at all" test "$(adcssim_requests "$CA2_DIR" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"

check "pc2 is registered" mscert_register "$M" pc2
start_daemon "$T/d2.log" -m "$M"
check "CA 1 down: pc2's request fails over to CA 2, which issues; pc2 is PROVISIONED" \
  wait_for 60 ms_state_is "$M" pc2.contoso.com PROVISIONED
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "amtprovd said why it asked CA 2" \
  grep -q "trying the next CES, $CES2 (CA '$CA2')" "$T/d2.log"
serial=$(serials pc2.contoso.com web-server active)
check "pc2's certificate is one CA 2 issued" bash -c "
  '$ADCSSIM' admin --dir '$CA2_DIR' list --json | python3 -c '
import json, sys
r = [x for x in json.load(sys.stdin) if (x.get(\"serial\") or \"\").upper().lstrip(\"0\") == sys.argv[1]]
assert r and r[0][\"status\"] == \"issued\", r' '$serial'"
sqlite3 "$T/main/state/site.db" "select d.chain_pem from certificate_data d join certificates c on c.id = d.cert_id join devices v on v.id = c.device_id where v.fqdn = 'pc2.contoso.com'" >"$T/chain2.pem"
chain_is_ca2() {
  [ "$(openssl x509 -in "$T/chain2.pem" -noout -fingerprint -sha256)" = "$(openssl x509 -in "$T/ca2.pem" -noout -fingerprint -sha256)" ]
}
check "amtprov recorded CA 2's chain for it" chain_is_ca2
check "pc1 still waits at CA 1" ms_waiting "$M" "$REQ,$CES1#$CA1"

# Revocation goes to the issuer: plugin test's certificate is issued by CA 2 (CA 1 is down)
# and revoked through CA 2's WinRM, chosen by the certificate's issuer (winrm_urls).
check "plugin test with CA 1 down: issued by CA 2 and revoked there" bash -c "
  '$AMTPROV' -v -m '$M' plugin test --purpose web-server --max-wait 1 adcs >'$T/pt2.out' 2>'$T/pt2.err' &&
  grep -Eq '^[a-z0-9.-]+ +revoke +ISSUED: certutil -revoke' '$T/pt2.out'"
check "CA 2 lists that certificate revoked" \
  test "$(adcssim_requests "$CA2_DIR" | python3 -c 'import json,sys; print(len([r for r in json.load(sys.stdin) if r["status"] == "revoked"]))')" = 1

# CA 1 back: the officer issues the pending request there, and amtprovd's poll at CA 1 gets it.
check "CA 1 is back (same state directory)" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8443 8080 "$T/ca1-again.pem"
check "CA 1's officer resubmits RequestID $REQ" "$ADCSSIM" admin --dir "$CA_DIR" resubmit "$REQ"
# The core polls a request whose CA was unreachable again a minute later (enroll.c
# POLL_SECONDS); amtprovd is stopped, so let that minute pass in the database.
sqlite3 -cmd '.timeout 5000' "$T/main/state/site.db" "update pending_ops set next_attempt_at = 0; update devices set next_attempt_at = 0 where fqdn = 'pc1.contoso.com'"
start_daemon "$T/d3.log" -m "$M"
check "the poll at CA 1 gets pc1's certificate: PROVISIONED" \
  wait_for 60 ms_state_is "$M" pc1.contoso.com PROVISIONED
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "pc1's certificate is CA 1's request $REQ, issued from the approval template" \
  test "$(ca_status "$(serials pc1.contoso.com web-server active)")" = "issued AMTWebServerApproval sccm-site None"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T/d.log' '$T/d2.log' '$T/d3.log'"
check "no sanitizer report (amtsim, adcssim 1 and 2)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err" "$CA2_DIR.err"
finish
