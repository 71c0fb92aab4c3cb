# SPDX-License-Identifier: Apache-2.0
# Shared by the tests that run adcssim, the AD CS test server (docs/adcssim.md): start it
# on loopback and wait until it serves its CA certificate. Source after lib.sh.

ADCSSIM="$AMTPROV_BUILD_DIR/adcssim/adcssim"
ADCSSIM_SEED="$AMTPROV_SOURCE_DIR/adcssim/examples/seed.json"
ADCSSIM_CA_NAME="Contoso%20Issuing%20CA"   # the seed's CA name, as it appears in URLs

# adcssim_start DIR SEED IP HTTPS-PORT HTTP-PORT CA-PEM [SERVE-OPTIONS...]: runs `adcssim
# serve` with its state in DIR (logs DIR.out/DIR.err, or $ADCSSIM_LOG.out/.err: a second
# server on the same DIR), waits until it serves its CA certificate over HTTP and writes it
# to CA-PEM. Sets ADCSSIM_PID (also in PIDS, so the server is stopped however the test
# ends). Returns non-zero when it does not come up.
adcssim_start() {
  local dir=$1 seed=$2 ip=$3 https=$4 http=$5 pem=$6 log=${ADCSSIM_LOG:-$1}
  shift 6
  [ -x "$ADCSSIM" ] || { echo "adcssim not built: $ADCSSIM" >&2; return 1; }
  "$ADCSSIM" serve --dir "$dir" --seed "$seed" --listen "$ip:$https" --http-listen "$ip:$http" \
    "$@" >"$log.out" 2>"$log.err" &
  ADCSSIM_PID=$!
  PIDS+=("$ADCSSIM_PID")
  wait_for 20 curl -sf -o "$pem.der" "http://$ip:$http/CertEnroll/$ADCSSIM_CA_NAME.crt" &&
    openssl x509 -inform DER -in "$pem.der" -out "$pem"
}

# adcssim_requests DIR: adcssim's request database (`admin list --json`) on stdout.
adcssim_requests() { "$ADCSSIM" admin --dir "$1" list --json; }

# adcssim_kerberos_checks HOST KEYTAB: starts adcssim on $IP as HOST with the keytab of
# HTTP/HOST and checks its Kerberos CEP/CES endpoints with kinit + curl --negotiate. The
# caller has a KDC for $REALM running with KRB5_CONFIG/KRB5CCNAME set, and the principals
# sccm-site (password Site-Secret-1) and stranger (Stranger-3x!), which the seed does not
# know (samba_lib.sh: samba_kdc_start, mit_kdc_start).
adcssim_kerberos_checks() {
  local HOST=$1 keytab=$2 st
  check "server starts" \
    adcssim_start "$T/ca" "$ADCSSIM_SEED" "$IP" 8443 8080 "$T/ca.pem" --host "$HOST" --keytab "$keytab"
  check "kinit as the site account" bash -c "echo Site-Secret-1 | kinit sccm-site@$REALM >/dev/null"

  CEP="https://$HOST:8443/ADPolicyProvider_CEP_Kerberos/service.svc/CEP"
  CES="https://$HOST:8443/Contoso%20Issuing%20CA_CES_Kerberos/service.svc/CES"
  cat >"$T/gp.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies</a:Action><a:MessageID>urn:uuid:1</a:MessageID></s:Header><s:Body><GetPolicies xmlns="http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy"><client><lastUpdate xsi:nil="true"/><preferredLanguage xsi:nil="true"/></client><requestFilter xsi:nil="true"/></GetPolicies></s:Body></s:Envelope>
XML
  post() {  # post URL FILE OUT [curl options]
    local url=$1 file=$2 out=$3; shift 3
    curl -s --cacert "$T/ca.pem" --resolve "$HOST:8443:$IP" \
      -H 'Content-Type: application/soap+xml; charset=utf-8' --data-binary @"$file" \
      -o "$out" -w '%{http_code}' "$@" "$url"
  }
  st=$(post "$CEP" "$T/gp.xml" "$T/gp.out" --negotiate -u :)
  check "CEP GetPolicies with Kerberos (Negotiate) answers 200" test "$st" = 200
  check "CEP lists the Kerberos CES URI (clientAuthentication 2)" \
    grep -q "<clientAuthentication>2</clientAuthentication><uri>https://$HOST:8443/Contoso%20Issuing%20CA_CES_Kerberos/service.svc/CES</uri>" "$T/gp.out"
  check "the reply is valid against xcep.xsd" bash -c "python3 -c \"
import xml.etree.ElementTree as ET
b = ET.parse('$T/gp.out').getroot().find('{http://www.w3.org/2003/05/soap-envelope}Body')
open('$T/gp.body', 'w').write(ET.tostring(list(b)[0], encoding='unicode'))\" &&
    xmllint --noout --nonet --schema '$AMTPROV_SOURCE_DIR/adcssim/tests/fixtures/xsd/xcep.xsd' '$T/gp.body' 2>/dev/null"

  openssl req -new -newkey rsa:2048 -nodes -keyout "$T/amt.key" -out "$T/amt.csr" \
    -subj "/CN=amt7.contoso.com" -addext "1.3.6.1.4.1.311.20.2=ASN1:BMPSTRING:AMTWebServer" 2>/dev/null
  cat >"$T/rst.xml" <<XML
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep</a:Action><a:MessageID>urn:uuid:2</a:MessageID></s:Header><s:Body><RequestSecurityToken xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512"><TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</TokenType><RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</RequestType><BinarySecurityToken ValueType="http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary" xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">$(sed '/-----/d' "$T/amt.csr")</BinarySecurityToken></RequestSecurityToken></s:Body></s:Envelope>
XML
  st=$(post "$CES" "$T/rst.xml" "$T/rst.out" --negotiate -u :)
  check "CES Issue with Kerberos: the certificate is issued" \
    bash -c "test '$st' = 200 && grep -q '>Issued</DispositionMessage>' '$T/rst.out'"
  check "the request is recorded for the Kerberos principal's account" \
    bash -c "'$ADCSSIM' admin --dir '$T/ca' list --json | grep -q '\"requester\": \"sccm-site\"'"

  st=$(post "$CEP" "$T/gp.xml" "$T/nt.out" -D "$T/nt.hdr")
  check "no Negotiate token: 401 with WWW-Authenticate: Negotiate" \
    bash -c "test '$st' = 401 && grep -qi '^WWW-Authenticate: Negotiate' '$T/nt.hdr'"
  st=$(post "$CEP" "$T/gp.xml" "$T/bad.out" -H 'Authorization: Negotiate YWJjZA==')
  check "a garbage token: 401" test "$st" = 401
  kdestroy >/dev/null 2>&1
  check "kinit as a principal the directory does not know" bash -c "echo Stranger-3x! | kinit stranger@$REALM >/dev/null"
  st=$(post "$CEP" "$T/gp.xml" "$T/st.out" --negotiate -u :)
  check "a valid ticket for an unknown account: 401" test "$st" = 401
  no_sanitizer_reports "$T/ca.err" || fail "sanitizer report from adcssim"
}
