#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ca-mscert against adcssim, the AD CS test server, through `amtprov plugin test` of a site's
# CA instance (credentials from the site's store): CEP GetPolicies and the template rules
# at start (R-CA-01 stand-alone CA, R-CA-02 v3 template, R-CA-04 no Enroll permission), CES
# issue for the web server and 802.1X purposes with UsernameToken and with a TLS client
# certificate, pending -> resubmit -> issued, pending -> deny -> REJECTED with the CA's
# error, a wrong password as a clear configuration error, and revocation through WinRM
# certutil ending up on the CA's own CRL (R-REV-02).
TEST_NAME=ca_mscert
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_lib.sh"

SEED="$ADCSSIM_SEED"

claim_net
IP="$NET.$((($$ & 63) + 1))"
HTTPS="https://$IP:8443"
CRL_URL="http://$IP:8080/CertEnroll/Contoso%20Issuing%20CA.crl"
CEP_UP="$HTTPS/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
CEP_CERT="$HTTPS/ADPolicyProvider_CEP_Certificate/service.svc/CEP"
STATE="$T/ca"
W="$T/work"
O="$T/out"
E="$T/err"
mkdir -p "$W"

check "adcssim starts and serves its CA certificate" \
  adcssim_start "$STATE" "$SEED" "$IP" 8443 8080 "$W/ca.pem"
SERVER=$ADCSSIM_PID

# instance NAME JSON-FIELDS RECORDS [CEP-URL]: a site NAME ($T/NAME/site.json) whose CA
# instance "ca" is ca-mscert with these settings, and RECORDS (name:secret ...) in its store.
# A stored password lets the next start read the policy and apply the template rules, so a
# site whose template breaks them gets only the one record.
instance() {
  mkdir -p "$T/$1"
  cat >"$T/$1/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "$1", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": { "creds": {"plugin": "credstore-file"},
    "ca": {"plugin": "ca-mscert", "config": {"cep_url": "${4:-$CEP_UP}", "ca_bundle": "$W/ca.pem",
           "timeout_seconds": 10, $2}} },
  "credentials": {"store": "creds"}
}
JSON
  local rec
  for rec in $3; do
    printf '%s' "${rec#*:}" >"$W/secret"
    run_cli "$O" "$E" -m "$T/$1/site.json" cred set "${rec%%:*}" --from-file "$W/secret" ||
      fail "cred set ${rec%%:*} in site $1: $(cat "$E")"
  done
  rm -f "$W/secret"
}
PW=adcs/password:Site-Secret-1
WR=adcs/winrm:Site-Secret-1
UP='"username": "sccm-site", "password": "adcs/password"'
WINRM='"winrm_url": "'$HTTPS'/wsman", "winrm_username": "sccm-site", "winrm_password": "adcs/winrm", "ca_config": "ca\\Contoso Issuing CA"'
instance adcs "$UP, \"web_server_template\": \"AMTWebServer\", \"client_8021x_template\": \"AMT8021XClient\", $WINRM" "$PW $WR"
instance approval "$UP, \"web_server_template\": \"AMTWebServerApproval\", \"poll_interval\": 1, $WINRM" "$PW $WR"
instance v3 "$UP, \"web_server_template\": \"AMTWebServerV3\"" "$PW"
instance restricted "$UP, \"web_server_template\": \"AMTWebServerRestricted\"" "$PW"
instance wrongpw "\"username\": \"sccm-site\", \"password\": \"adcs/wrong\", \"web_server_template\": \"AMTWebServer\"" adcs/wrong:not-the-password
instance helpdesk "$UP, \"web_server_template\": \"AMTWebServer\", \"winrm_url\": \"$HTTPS/wsman\", \"winrm_username\": \"helpdesk\", \"winrm_password\": \"adcs/helpdesk\"" "$PW adcs/helpdesk:Helpdesk-Secret-2"

# revoked_serials: serials adcssim lists as revoked, upper case.
revoked_serials() {
  "$ADCSSIM" admin --dir "$STATE" list --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["status"] == "revoked":
        print(r["serial"].upper(), r["revocation_reason"])'
}

# ---- issue both purposes, revoke through WinRM ---------------------------------------------
expect_rc 0 "plugin test: web server and 802.1X certificates issued, contract kept, revoked" \
  run_cli "$O" "$E" -v -m "$T/adcs/site.json" plugin test --fqdn amt1.contoso.com ca
cat "$O" "$E"
check "plugin test -v prints every template check, expected vs actual" \
  grep -q "check ok   R-CA-02: template 'AMTWebServer' schema version: expected 1 or 2 (version 3 CNG templates are refused), actual 2" "$E"
check "the web server certificate was ISSUED with a chain" \
  grep -Eq '^web-server +submit +ISSUED certificate [0-9]+ bytes, chain given' "$O"
check "the 802.1X client certificate was ISSUED" grep -Eq '^802.1x-client +submit +ISSUED' "$O"
check "both were revoked through WinRM certutil" \
  test "$(grep -Ec '^[a-z0-9.-]+ +revoke +ISSUED: certutil -revoke' "$O")" = 2
check "adcssim lists two certificates revoked with reason 5 (cessation of operation)" \
  test "$(revoked_serials | grep -c ' 5$')" = 2
curl -sf -o "$W/crl.der" "$CRL_URL"
openssl crl -inform DER -in "$W/crl.der" -noout -text >"$W/crl.txt"
on_crl() {
  local n=0 s
  for s in $(revoked_serials | cut -d' ' -f1); do
    grep -qi "Serial Number: $s" "$W/crl.txt" || return 1
    n=$((n + 1))
  done
  [ "$n" -eq 2 ]
}
check "the two revoked serials are on the CA's own CRL (R-REV-02)" on_crl
check "no secret reached the output" bash -c "! grep -q 'Site-Secret-1' '$O' '$E'"

# ---- pending: resubmitted by the CA officer, then issued on poll -----------------------------
# officer ACTION: the first pending request gets ACTION (resubmit/deny), as certutil would.
officer() {
  for _ in $(seq 1 200); do
    id=$("$ADCSSIM" admin --dir "$STATE" list --json 2>/dev/null | python3 -c '
import json, sys
p = [r["id"] for r in json.load(sys.stdin) if r["status"] == "pending"]
print(p[0] if p else "")')
    if [ -n "$id" ]; then "$ADCSSIM" admin --dir "$STATE" "$1" "$id" >/dev/null; return; fi
    sleep 0.1
  done
}
officer resubmit &
PIDS+=("$!")
expect_rc 0 "pending (taken under submission), resubmitted, then issued on poll" \
  run_cli "$O" "$E" -m "$T/approval/site.json" plugin test --purpose web-server --max-wait 30 ca
cat "$O"
check "submit answered WAIT_WITH_DELAY with RequestID,URI as cookie" \
  grep -Eq "^web-server +submit +WAIT_WITH_DELAY cookie '[0-9]+,$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES#Contoso Issuing CA' delay 1s" "$O"
check "a poll answered ISSUED" grep -Eq '^web-server +poll +ISSUED certificate' "$O"

officer deny &
PIDS+=("$!")
expect_rc 1 "pending, denied by the CA officer: the plugin test fails" \
  run_cli "$O" "$E" -m "$T/approval/site.json" plugin test --purpose web-server --max-wait 30 --no-revoke ca
cat "$O"
check "the poll answered REJECTED with the CA's message and error code" \
  grep -Eq '^web-server +poll +REJECTED .*CA: .*\(0x80094014, RequestID [0-9]+\)' "$O"

# ---- CES failover: a dead endpoint first, then one that is not a CES (HTTP 404) ---------------
CES_UP="$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
instance failover "$UP, \"web_server_template\": \"AMTWebServer\", \"ces_urls\": [\"https://$NET.250:9/CES\", \"$HTTPS/NoSuch_CES/service.svc/CES\", \"$CES_UP\"]" "$PW"
expect_rc 0 "CES failover: issued by the third CES after a dead one and a broken one" \
  run_cli "$O" "$E" -m "$T/failover/site.json" plugin test --purpose web-server --no-revoke ca
cat "$O" "$E"
check "the dead endpoint was tried first, then the next" \
  grep -q "https://$NET.250:9/CES: .*; trying the next CES, $HTTPS/NoSuch_CES/service.svc/CES" "$E"
check "the one that is not a CES answered an HTTP error, then the next" \
  grep -q "CES $HTTPS/NoSuch_CES/service.svc/CES: HTTP [45][0-9][0-9]; trying the next CES, $CES_UP" "$E"
check "the certificate was issued" grep -Eq '^web-server +submit +ISSUED' "$O"
instance allbad "$UP, \"web_server_template\": \"AMTWebServer\", \"ces_urls\": [\"https://$NET.250:9/CES\"]" "$PW"
expect_rc 1 "CES failover: with every CES dead the answer is UNREACHABLE (retried by the core)" \
  run_cli "$O" "$E" -m "$T/allbad/site.json" plugin test --purpose web-server --no-revoke ca
check "UNREACHABLE, naming the endpoint" grep -Eq "^web-server +submit +UNREACHABLE.*https://$NET.250:9/CES" "$O"
instance badlist "$UP, \"web_server_template\": \"AMTWebServer\", \"ces_urls\": [\"http://$IP:8080/CES\"]" ""
expect_rc 3 "a ces_urls entry that is not https is a configuration error (exit 3)" \
  run_cli "$O" "$E" -m "$T/badlist/site.json" plugin test --purpose web-server --no-revoke ca
check "the error names the field" grep -q "ces_urls.*entry 0 must be an https:// URL" "$E"

# ---- template rules at start -----------------------------------------------------------------
expect_rc 3 "a version 3 template is refused at start (R-CA-02)" \
  run_cli "$O" "$E" -m "$T/v3/site.json" plugin test --purpose web-server ca
check "the error names the rule and the template" \
  grep -q "R-CA-02: template 'AMTWebServerV3' schema version: expected 1 or 2 (version 3 CNG templates are refused), actual 3" "$E"
expect_rc 3 "a template without Enroll permission is refused at start (R-CA-04)" \
  run_cli "$O" "$E" -m "$T/restricted/site.json" plugin test --purpose web-server ca
check "the error names the permission and the template" \
  grep -q "R-CA-04: Read/Enroll permission on template 'AMTWebServerRestricted': expected enroll true, actual enroll false" "$E"
expect_rc 3 "a wrong password is a configuration error, not a retry" \
  run_cli "$O" "$E" -m "$T/wrongpw/site.json" plugin test --purpose web-server ca
check "it says the CEP refused the authentication" grep -q "InvalidSecurity" "$E"
check "and does not print the wrong password" bash -c "! grep -q 'not-the-password' '$O' '$E'"

# ---- revocation without Issue and Manage Certificates ---------------------------------------
expect_rc 1 "an account without Issue and Manage Certificates cannot revoke (R-CA-04)" \
  run_cli "$O" "$E" -m "$T/helpdesk/site.json" plugin test --purpose web-server ca
check "the revoke answer is UNCONFIGURED and says what right is missing" \
  grep -Eq "^web-server +revoke +UNCONFIGURED: certutil: access denied: 'helpdesk' needs Issue and Manage Certificates" "$O"

# ---- TLS client certificate authentication ---------------------------------------------------
# The site's own certificate, from the CA's 802.1X client template (CN maps to sccm-site).
openssl req -new -newkey rsa:2048 -nodes -keyout "$W/site.key" -out "$W/site.csr" \
  -subj "/CN=sccm-site.contoso.com" 2>/dev/null
chmod 600 "$W/site.key"
NS_WSSE="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSTEP="http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
NS_WST="http://docs.oasis-open.org/ws-sx/ws-trust/200512"
cat >"$W/rst.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">$NS_WSTEP/RST/wstep</a:Action><o:Security s:mustUnderstand="1" xmlns:o="$NS_WSSE"><o:UsernameToken><o:Username>sccm-site</o:Username><o:Password>Site-Secret-1</o:Password></o:UsernameToken></o:Security></s:Header><s:Body><RequestSecurityToken xmlns="$NS_WST"><TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</TokenType><RequestType>$NS_WST/Issue</RequestType><BinarySecurityToken ValueType="$NS_WSTEP#PKCS10" EncodingType="$NS_WSSE#base64binary" xmlns="$NS_WSSE">$(sed '/-----/d' "$W/site.csr")</BinarySecurityToken><AdditionalContext xmlns="http://schemas.xmlsoap.org/ws/2006/12/authorization"><ContextItem Name="CertificateTemplate"><Value>AMT8021XClient</Value></ContextItem></AdditionalContext></RequestSecurityToken></s:Body></s:Envelope>
XML
curl -s --cacert "$W/ca.pem" -H 'Content-Type: application/soap+xml; charset=utf-8' \
  --data-binary @"$W/rst.xml" -o "$W/site.out" "$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
python3 - "$W/site.out" >"$W/site.pem" <<'PY'
import sys, textwrap, xml.etree.ElementTree as ET
ns = {'wst': 'http://docs.oasis-open.org/ws-sx/ws-trust/200512',
      'wsse': 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'}
e = ET.parse(sys.argv[1]).getroot().find('.//wst:RequestedSecurityToken/wsse:BinarySecurityToken', ns)
b = ''.join(e.text.split())
print('-----BEGIN CERTIFICATE-----\n' + '\n'.join(textwrap.wrap(b, 64)) + '\n-----END CERTIFICATE-----')
PY
instance tlscert "\"auth\": \"certificate\", \"client_certificate\": \"$W/site.pem\", \"client_key\": \"$W/site.key\", \"web_server_template\": \"AMTWebServer\", $WINRM" "$WR" "$CEP_CERT"
expect_rc 0 "TLS client certificate authentication: CEP, CES issue, WinRM revoke" \
  run_cli "$O" "$E" -v -m "$T/tlscert/site.json" plugin test --purpose web-server ca
cat "$O"
check "issued over the Certificate CES endpoint" grep -Eq '^web-server +submit +ISSUED' "$O"
check "CEP named the Certificate CES (clientAuthentication 8)" \
  grep -q "CES $HTTPS/Contoso%20Issuing%20CA_CES_Certificate/service.svc/CES" "$E"

# ---- stand-alone CA (R-CA-01) -----------------------------------------------------------------
kill -TERM "$SERVER"
wait "$SERVER"
check "no sanitizer reports from adcssim" no_sanitizer_reports "$STATE.err"
sed 's/"mode": "enterprise"/"mode": "standalone"/' "$SEED" >"$T/standalone.json"
adcssim_start "$STATE" "$T/standalone.json" "$IP" 8443 8080 "$W/ca-sa.pem" ||
  fail "adcssim restarts as a stand-alone CA"
expect_rc 3 "a stand-alone CA is refused at start (R-CA-01)" \
  run_cli "$O" "$E" -m "$T/adcs/site.json" plugin test --purpose web-server ca
check "the error says the CA publishes no enterprise templates" \
  grep -q "R-CA-01: enterprise CA publishing templates (a stand-alone CA has none): expected at least 1 CA and 1 template, actual 0 CA(s), 0 template(s)" "$E"

finish
