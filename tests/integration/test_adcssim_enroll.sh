#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim, the AD CS test server, over real HTTPS with curl and openssl: CEP GetPolicies
# (UsernameToken and TLS client certificate), CES issue / pending / poll / resubmit / deny
# with the admin CLI while the server runs, the template rules (R-CA-02 v3, R-CA-04 enroll
# permission, minimal key length, subject built from the directory), revocation as
# Superseded through the WinRM certutil shell and the CRL fetched over HTTP (R-REV-02), and a
# stand-alone CA made visible through the protocol (R-CA-01). Responses are validated with
# xmllint against the XSDs written from MS-XCEP / MS-WSTEP.
TEST_NAME=adcssim_enroll
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_lib.sh"

XSD="$AMTPROV_SOURCE_DIR/adcssim/tests/fixtures/xsd"
SEED="$ADCSSIM_SEED"

claim_net
IP="$NET.$((($$ & 63) + 1))"
HTTPS="https://$IP:8443"
CRL_URL="http://$IP:8080/CertEnroll/Contoso%20Issuing%20CA.crl"
CEP_UP="$HTTPS/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
CEP_CERT="$HTTPS/ADPolicyProvider_CEP_Certificate/service.svc/CEP"
CES_UP="$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
STATE="$T/ca"
W="$T/work"
mkdir -p "$W"

NS_WSSE="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSTEP="http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
NS_WST="http://docs.oasis-open.org/ws-sx/ws-trust/200512"
NS_XCEP="http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"
hr() { echo $(($1 - 0x100000000)); }   # HRESULT as the signed xs:int ErrorCode

check "server starts and serves its CA certificate over HTTP" \
  adcssim_start "$STATE" "$SEED" "$IP" 8443 8080 "$W/ca.pem"
SERVER=$ADCSSIM_PID

# post URL FILE OUT [curl options]: POSTs a SOAP body, prints the HTTP status.
post() {
  local url=$1 file=$2 out=$3; shift 3
  curl -s --cacert "$W/ca.pem" -H 'Content-Type: application/soap+xml; charset=utf-8' \
    --data-binary @"$file" -o "$out" -w '%{http_code}' "$@" "$url"
}

# body_valid XSD FILE: the first element of the SOAP body is valid against XSD.
body_valid() {
  python3 - "$2" >"$2.body" <<'PY' || return 1
import sys, xml.etree.ElementTree as ET
env = ET.parse(sys.argv[1]).getroot()
body = env.find('{http://www.w3.org/2003/05/soap-envelope}Body')
sys.stdout.write(ET.tostring(list(body)[0], encoding='unicode'))
PY
  xmllint --noout --nonet --schema "$XSD/$1" "$2.body" 2>"$2.xsd.log"
}

# text FILE NS NAME: text of the first element NAME in namespace NS.
text() {
  python3 - "$@" <<'PY'
import sys, xml.etree.ElementTree as ET
e = ET.parse(sys.argv[1]).getroot().find('.//{%s}%s' % (sys.argv[2], sys.argv[3]))
print('' if e is None or e.text is None else e.text.strip())
PY
}

up_header() {
  cat <<XML
<o:Security s:mustUnderstand="1" xmlns:o="$NS_WSSE"><o:UsernameToken><o:Username>$1</o:Username><o:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">$2</o:Password></o:UsernameToken></o:Security>
XML
}

# get_policies OUT USER PASS [URL]
get_policies() {
  cat >"$W/gp.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header><a:Action s:mustUnderstand="1">$NS_XCEP/IPolicy/GetPolicies</a:Action><a:MessageID>urn:uuid:5fb5f6fd-4709-414b-8afa-0c05f6686d1c</a:MessageID><a:To s:mustUnderstand="1">${4:-$CEP_UP}</a:To>$(up_header "$2" "$3")</s:Header><s:Body><GetPolicies xmlns="$NS_XCEP"><client><lastUpdate xsi:nil="true"/><preferredLanguage xsi:nil="true"/></client><requestFilter><policyOIDs xsi:nil="true"/><clientVersion>0</clientVersion><serverVersion>0</serverVersion></requestFilter></GetPolicies></s:Body></s:Envelope>
XML
  post "${4:-$CEP_UP}" "$W/gp.xml" "$1" "${@:5}"
}

# csr NAME BITS SUBJECT TEMPLATE: key and PKCS#10 naming TEMPLATE (BMPString, MS-WCCE).
csr() {
  local ext=()
  [ -n "$4" ] && ext=(-addext "1.3.6.1.4.1.311.20.2=ASN1:BMPSTRING:$4")
  openssl req -new -newkey "rsa:$2" -nodes -keyout "$W/$1.key" -out "$W/$1.csr" \
    -subj "$3" -addext "subjectAltName=DNS:${1}.contoso.com" "${ext[@]}" 2>/dev/null
}

# rst_issue CSRNAME OUT [USER PASS]: posts an Issue RST to CES, prints the HTTP status.
rst_issue() {
  cat >"$W/rst.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">$NS_WSTEP/RST/wstep</a:Action><a:MessageID>urn:uuid:b5d1a601-5091-4a7d-b34b-5204c18b5919</a:MessageID>$(up_header "${3:-sccm-site}" "${4:-Site-Secret-1}")</s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><RequestSecurityToken xmlns="$NS_WST"><TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</TokenType><RequestType>$NS_WST/Issue</RequestType><BinarySecurityToken ValueType="$NS_WSTEP#PKCS10" EncodingType="$NS_WSSE#base64binary" xmlns="$NS_WSSE">$(sed '/-----/d' "$W/$1.csr")</BinarySecurityToken><RequestID xsi:nil="true" xmlns="$NS_WSTEP"/></RequestSecurityToken></s:Body></s:Envelope>
XML
  post "$CES_UP" "$W/rst.xml" "$2"
}

# rst_poll ID OUT: QueryTokenStatus at the Reference URI the pending reply gave.
rst_poll() {
  cat >"$W/poll.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">$NS_WSTEP/RST/wstep</a:Action><a:MessageID>urn:uuid:ce330bb2-0ca2-473b-a29a-19e9264666ff</a:MessageID>$(up_header sccm-site Site-Secret-1)</s:Header><s:Body><RequestSecurityToken xmlns="$NS_WST"><TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</TokenType><RequestType>$NS_WSTEP/QueryTokenStatus</RequestType><RequestID xmlns="$NS_WSTEP">$1</RequestID></RequestSecurityToken></s:Body></s:Envelope>
XML
  post "${3:-$CES_UP}" "$W/poll.xml" "$2"
}

# cert_of OUT PEM: the X509v3 token of an RSTRC as PEM.
cert_of() {
  python3 - "$1" <<'PY' >"$2"
import sys, base64, textwrap, xml.etree.ElementTree as ET
ns = {'wst': 'http://docs.oasis-open.org/ws-sx/ws-trust/200512',
      'wsse': 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'}
e = ET.parse(sys.argv[1]).getroot().find('.//wst:RequestedSecurityToken/wsse:BinarySecurityToken', ns)
if e is None: sys.exit(1)
b = ''.join(e.text.split())
print('-----BEGIN CERTIFICATE-----\n' + '\n'.join(textwrap.wrap(b, 64)) + '\n-----END CERTIFICATE-----')
PY
}

# ---- CEP ------------------------------------------------------------------------------------
st=$(get_policies "$W/gp.out" 'CONTOSO\sccm-site' Site-Secret-1)
check "CEP GetPolicies with UsernameToken answers 200" test "$st" = 200
check "GetPoliciesResponse is valid against xcep.xsd" body_valid xcep.xsd "$W/gp.out"
check "CEP lists the v2 AMT template with the AMT OID extension" \
  grep -q '<commonName>AMTWebServer</commonName><policySchema>2</policySchema>' "$W/gp.out"
check "CEP lists the CES UsernamePassword URI (clientAuthentication 4)" \
  grep -q "<clientAuthentication>4</clientAuthentication><uri>$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES</uri>" "$W/gp.out"
st=$(get_policies "$W/gp-bad.out" sccm-site wrong)
check "a wrong password is a SOAP fault with HTTP 500" test "$st" = 500
check "the fault says InvalidSecurity" grep -q InvalidSecurity "$W/gp-bad.out"

# ---- CES: issue -----------------------------------------------------------------------------
csr amt1 2048 "/CN=amt1.contoso.com" AMTWebServer
st=$(rst_issue amt1 "$W/amt1.out")
check "CES issues the v2 AMT web server certificate (HTTP 200)" test "$st" = 200
check "the RSTRC is valid against wst.xsd" body_valid wst.xsd "$W/amt1.out"
cert_of "$W/amt1.out" "$W/amt1.pem"
check "the issued certificate chains to the CA" \
  openssl verify -CAfile "$W/ca.pem" "$W/amt1.pem"
check "the certificate carries the AMT OID and Server Authentication" \
  bash -c "openssl x509 -in '$W/amt1.pem' -noout -ext extendedKeyUsage | grep -q '2.16.840.1.113741.1.2.3' && openssl x509 -in '$W/amt1.pem' -noout -ext extendedKeyUsage | grep -q 'Server Authentication'"
check "the certificate is for the CSR's key" \
  test "$(openssl x509 -in "$W/amt1.pem" -noout -pubkey)" = "$(openssl pkey -in "$W/amt1.key" -pubout)"
check "the certificate names the CRL distribution point" \
  bash -c "openssl x509 -in '$W/amt1.pem' -noout -ext crlDistributionPoints | grep -qF '$CRL_URL'"

# ---- CES: template rules --------------------------------------------------------------------
csr v3 2048 "/CN=v3.contoso.com" AMTWebServerV3
st=$(rst_issue v3 "$W/v3.out")
check "v3 template: a 2048-bit key is refused (minimal key length 3072)" \
  test "$st:$(text "$W/v3.out" "$NS_WSTEP" ErrorCode)" = "500:$(hr 0x80094811)"
check "the fault detail is valid against wstep.xsd" \
  bash -c "python3 -c \"
import sys, xml.etree.ElementTree as ET
d = ET.parse('$W/v3.out').getroot().find('.//{$NS_WSTEP}CertificateEnrollmentWSDetail')
open('$W/v3.detail', 'w').write(ET.tostring(d, encoding='unicode'))\" && xmllint --noout --nonet --schema '$XSD/wstep.xsd' '$W/v3.detail' 2>/dev/null"
csr v3b 3072 "/CN=v3b.contoso.com" AMTWebServerV3
st=$(rst_issue v3b "$W/v3b.out")
cert_of "$W/v3b.out" "$W/v3b.pem"
check "v3 template with 3072 bits is issued, signed with the template's SHA-384" \
  bash -c "test '$st' = 200 && openssl x509 -in '$W/v3b.pem' -noout -text | grep -q 'sha384WithRSAEncryption'"
csr restricted 2048 "/CN=r.contoso.com" AMTWebServerRestricted
st=$(rst_issue restricted "$W/restricted.out")
check "no Enroll permission on the template: TEMPLATE_DENIED (R-CA-04)" \
  test "$st:$(text "$W/restricted.out" "$NS_WSTEP" ErrorCode)" = "500:$(hr 0x80094012)"
csr short 1024 "/CN=short.contoso.com" AMTWebServer
st=$(rst_issue short "$W/short.out")
check "a key below msPKI-Minimal-Key-Size: CERTSRV_E_KEY_LENGTH" \
  test "$(text "$W/short.out" "$NS_WSTEP" ErrorCode)" = "$(hr 0x80094811)"
csr ws 2048 "/CN=evil.example.org" Workstation
st=$(rst_issue ws "$W/ws.out")
cert_of "$W/ws.out" "$W/ws.pem"
check "no 'supply in the request': subject and SAN come from the directory, not the CSR" \
  bash -c "openssl x509 -in '$W/ws.pem' -noout -subject | grep -q 'CN *= *sccm-site' && openssl x509 -in '$W/ws.pem' -noout -ext subjectAltName | grep -q 'DNS:sccm01.contoso.com' && ! openssl x509 -in '$W/ws.pem' -noout -text | grep -q evil"
csr none 2048 "/CN=none.contoso.com" ""
st=$(rst_issue none "$W/none.out")
check "a request naming no template: UNSUPPORTED_CERT_TYPE" \
  test "$(text "$W/none.out" "$NS_WSTEP" ErrorCode)" = "$(hr 0x80094800)"

# ---- CES: pending, poll, resubmit, deny -----------------------------------------------------
csr pend 2048 "/CN=pend.contoso.com" AMTWebServerApproval
st=$(rst_issue pend "$W/pend.out")
PID1=$(text "$W/pend.out" "$NS_WSTEP" RequestID)
REF=$(python3 -c "
import xml.etree.ElementTree as ET
e = ET.parse('$W/pend.out').getroot().find('.//{$NS_WSSE}Reference')
print(e.get('URI') if e is not None else '')")
check "pend-all template: HTTP 200, Taken Under Submission, a RequestID" \
  bash -c "test '$st' = 200 && grep -q 'Taken Under Submission' '$W/pend.out' && test -n '$PID1'"
check "the pending reply points back to this CES" test "$REF" = "$HTTPS/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
check "the pending RSTRC is valid against wst.xsd" body_valid wst.xsd "$W/pend.out"
st=$(rst_poll "$PID1" "$W/poll1.out" "$REF")
check "polling before approval: still pending" \
  bash -c "test '$st' = 200 && grep -q 'Taken Under Submission' '$W/poll1.out'"
check "admin resubmit while the server runs" \
  "$ADCSSIM" admin --dir "$STATE" resubmit "$PID1"
st=$(rst_poll "$PID1" "$W/poll2.out" "$REF")
cert_of "$W/poll2.out" "$W/pend.pem"
check "polling after resubmit returns the certificate" \
  bash -c "test '$st' = 200 && openssl verify -CAfile '$W/ca.pem' '$W/pend.pem' >/dev/null"
expect_rc 1 "resubmitting an issued request fails like certutil" \
  "$ADCSSIM" admin --dir "$STATE" resubmit "$PID1"
csr deny 2048 "/CN=deny.contoso.com" AMTWebServerApproval
rst_issue deny "$W/deny.out" >/dev/null
PID2=$(text "$W/deny.out" "$NS_WSTEP" RequestID)
check "admin deny" "$ADCSSIM" admin --dir "$STATE" deny "$PID2"
st=$(rst_poll "$PID2" "$W/poll3.out")
check "polling a denied request: fault ADMIN_DENIED_REQUEST with the RequestID" \
  test "$st:$(text "$W/poll3.out" "$NS_WSTEP" ErrorCode):$(text "$W/poll3.out" "$NS_WSTEP" RequestID)" = "500:$(hr 0x80094014):$PID2"

# ---- TLS client certificate -----------------------------------------------------------------
openssl req -new -newkey rsa:2048 -nodes -keyout "$W/site.key" -out "$W/site.csr" \
  -subj "/CN=sccm-site.contoso.com" -addext "1.3.6.1.4.1.311.20.2=ASN1:BMPSTRING:AMT8021XClient" 2>/dev/null
rst_issue site "$W/site.out" >/dev/null
cert_of "$W/site.out" "$W/site.pem"
st=$(get_policies "$W/gpc.out" x x "$CEP_CERT" --cert "$W/site.pem" --key "$W/site.key")
check "CEP over TLS client-certificate authentication answers 200" test "$st" = 200
check "its reply is valid against xcep.xsd" body_valid xcep.xsd "$W/gpc.out"
st=$(get_policies "$W/gpn.out" x x "$CEP_CERT")
check "the Certificate endpoint without a client certificate: 403" test "$st" = 403

# ---- revocation through WinRM, CRL over HTTP ------------------------------------------------
SERIAL=$(openssl x509 -in "$W/amt1.pem" -noout -serial | cut -d= -f2)
wsman() {   # wsman ACTION SHELLID BODY OUT [USER:PASS]
  local sel=""
  [ -n "$2" ] && sel="<w:SelectorSet><w:Selector Name=\"ShellId\">$2</w:Selector></w:SelectorSet>"
  cat >"$W/ws.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:To>$HTTPS/wsman</a:To><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:$(cat /proc/sys/kernel/random/uuid)</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action s:mustUnderstand="true">$1</a:Action>$sel</s:Header><s:Body>$3</s:Body></s:Envelope>
XML
  post "$HTTPS/wsman" "$W/ws.xml" "$4" -u "${5:-sccm-site:Site-Secret-1}"
}
RSP=http://schemas.microsoft.com/wbem/wsman/1/windows/shell
# certutil_revoke ARGS [USER:PASS]: runs certutil in a remote shell; prints exit code.
certutil_revoke() {
  local shell cid
  wsman http://schemas.xmlsoap.org/ws/2004/09/transfer/Create "" \
    "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>" \
    "$W/create.out" "${2:-}" >/dev/null
  shell=$(text "$W/create.out" http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector)
  wsman "$RSP/Command" "$shell" \
    "<rsp:CommandLine><rsp:Command>certutil</rsp:Command><rsp:Arguments>$1</rsp:Arguments></rsp:CommandLine>" \
    "$W/cmd.out" "${2:-}" >/dev/null
  cid=$(text "$W/cmd.out" "$RSP" CommandId)
  wsman "$RSP/Receive" "$shell" \
    "<rsp:Receive><rsp:DesiredStream CommandId=\"$cid\">stdout stderr</rsp:DesiredStream></rsp:Receive>" \
    "$W/recv.out" "${2:-}" >/dev/null
  wsman "$RSP/Signal" "$shell" \
    "<rsp:Signal CommandId=\"$cid\"><rsp:Code>$RSP/signal/terminate</rsp:Code></rsp:Signal>" \
    "$W/sig.out" "${2:-}" >/dev/null
  wsman http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete "$shell" "" "$W/del.out" "${2:-}" >/dev/null
  text "$W/recv.out" "$RSP" ExitCode
}
check "a non-officer account: certutil -revoke exits with access denied" \
  test "$(certutil_revoke "-revoke $SERIAL 4" helpdesk:Helpdesk-Secret-2)" = 5
check "WinRM runs certutil -revoke SERIAL 4 (Superseded) and exits 0 (R-REV-02)" \
  test "$(certutil_revoke "-config &quot;ca\\Contoso Issuing CA&quot; -revoke $SERIAL 4")" = 0
check "its stdout is certutil's" \
  bash -c "python3 -c \"
import base64, xml.etree.ElementTree as ET
e = ET.parse('$W/recv.out').getroot().find('.//{$RSP}Stream')
print(base64.b64decode(e.text).decode())\" | grep -q 'Reason: Superseded'"
check "WinRM refuses anything but certutil -revoke" \
  test "$(certutil_revoke "-resubmit $PID1")" = 1
check "the CRL is served over HTTP" curl -sf -o "$W/crl.der" "$CRL_URL"
check "the CRL lists the serial as Superseded" \
  bash -c "openssl crl -inform DER -in '$W/crl.der' -noout -text | grep -A4 'Serial Number: $SERIAL' | grep -q Superseded"
openssl crl -inform DER -in "$W/crl.der" -out "$W/crl.pem"
check "openssl verify with the CRL refuses the revoked certificate (R-REV-01)" \
  bash -c "! openssl verify -crl_check -CAfile '$W/ca.pem' -CRLfile '$W/crl.pem' '$W/amt1.pem' && openssl verify -crl_check -CAfile '$W/ca.pem' -CRLfile '$W/crl.pem' '$W/pend.pem'"
check "admin list --json shows revoked, issued, pending history and denied rows" \
  bash -c "'$ADCSSIM' admin --dir '$STATE' list --json | python3 -c \"
import json, sys
rows = json.load(sys.stdin)
st = {r['status'] for r in rows}
rev = [r for r in rows if r['status'] == 'revoked']
assert {'issued', 'revoked', 'denied'} <= st, st
assert rev and rev[0]['revocation_reason'] == 4 and rev[0]['serial'] == '$SERIAL'.lower()
\""
expect_rc 1 "admin revoke of an unknown serial fails" \
  "$ADCSSIM" admin --dir "$STATE" revoke 0badc0ffee 4

kill -TERM "$SERVER"
wait "$SERVER"
check "the server stops cleanly on SIGTERM" test $? -eq 0
check "no sanitizer reports from the server" no_sanitizer_reports "$STATE.err"

# ---- stand-alone CA: observable through the protocol ----------------------------------------
sed 's/"mode": "enterprise"/"mode": "standalone"/' "$SEED" >"$T/standalone.json"
adcssim_start "$T/sa" "$T/standalone.json" "$IP" 9443 9080 "$W/ca.pem" ||
  fail "the stand-alone server starts"
CEP_UP="https://$IP:9443/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP"
CES_UP="https://$IP:9443/Contoso%20Issuing%20CA_CES_UsernamePassword/service.svc/CES"
st=$(get_policies "$W/sa-gp.out" sccm-site Site-Secret-1)
check "stand-alone CA: CEP publishes no templates and no enterprise CA (R-CA-01)" \
  bash -c "test '$st' = 200 && grep -q '<policies xsi:nil=\"true\"/>' '$W/sa-gp.out' && grep -q '<cAs xsi:nil=\"true\"/>' '$W/sa-gp.out'"
check "its reply is valid against xcep.xsd" body_valid xcep.xsd "$W/sa-gp.out"
st=$(rst_issue amt1 "$W/sa-rst.out")
check "stand-alone CA: a request naming a template is pended, not issued (R-CA-01)" \
  bash -c "test '$st' = 200 && grep -q 'Taken Under Submission' '$W/sa-rst.out'"
no_sanitizer_reports "$T/sa.err" || fail "sanitizer report from the stand-alone server"

finish
