# SPDX-License-Identifier: Apache-2.0
# Shared by test_adcssim_kerberos*.sh and test_e2e_mscert_kerberos.sh: the test KDCs (MIT,
# Samba AD DC); adcssim_kerberos_checks starts adcssim with the keytab of HTTP/$HOST and checks
# its Kerberos CEP/CES endpoints with kinit + curl --negotiate. The caller has a KDC for
# $REALM running, KRB5_CONFIG/KRB5CCNAME set, and the principals sccm-site (password
# Site-Secret-1) and stranger (Stranger-3x!), which the seed does not know.
source "$(dirname "${BASH_SOURCE[0]}")/adcssim_lib.sh"
SEED="$ADCSSIM_SEED"
HOST=ca.contoso.test
REALM=CONTOSO.TEST
[ -x "$ADCSSIM" ] || { echo "adcssim not built: $ADCSSIM"; exit 1; }
export PATH="$PATH:/usr/sbin"

# need_tools TOOL...: every tool must be installed (scripts/install-deps.sh).
need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps.sh)"; exit 1; }
  done
}

# krb5_client_conf KDC: the client side for $REALM with that KDC (host[:port]), no DNS, over
# TCP, in $K/krb5.conf; exports KRB5_CONFIG and KRB5CCNAME ($K/cc).
krb5_client_conf() {
  export KRB5_CONFIG="$K/krb5.conf" KRB5CCNAME="FILE:$K/cc"
  cat >"$KRB5_CONFIG" <<EOF2
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  $REALM = {
    kdc = $1
  }
[domain_realm]
  .contoso.test = $REALM
EOF2
}

# mit_kdc_start: an MIT KDC for $REALM on $IP:8888 in $T/krb, with the principals sccm-site
# (password Site-Secret-1), stranger and HTTP/$HOST (keys in $K/http.keytab); exports
# KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5CCNAME; sets K.
mit_kdc_start() {
K="$T/krb"
mkdir -p "$K"
export KRB5_KDC_PROFILE="$K/kdc.conf"
krb5_client_conf "$IP:8888"
cat >"$KRB5_KDC_PROFILE" <<EOF2
[kdcdefaults]
  kdc_listen = $IP:8888
  kdc_tcp_listen = $IP:8888
[realms]
  $REALM = {
    database_name = $K/principal
    key_stash_file = $K/stash
    acl_file = $K/kadm5.acl
    kdc_listen = $IP:8888
    kdc_tcp_listen = $IP:8888
  }
[logging]
  kdc = FILE:$K/kdc.log
EOF2
: >"$K/kadm5.acl"
kdb5_util create -s -r "$REALM" -P "master-$$" >"$K/create.log" 2>&1 ||
  { cat "$K/create.log"; exit 1; }
kadmin.local -r "$REALM" -q "addprinc -pw Site-Secret-1 sccm-site" >/dev/null 2>&1
kadmin.local -r "$REALM" -q "addprinc -pw Stranger-3x! stranger" >/dev/null 2>&1
kadmin.local -r "$REALM" -q "addprinc -randkey HTTP/$HOST" >/dev/null 2>&1
kadmin.local -r "$REALM" -q "ktadd -k $K/http.keytab HTTP/$HOST" >/dev/null 2>&1
check "the HTTP service key is in the keytab" test -s "$K/http.keytab"
chmod 600 "$K/http.keytab"
krb5kdc -n -r "$REALM" -P "$K/kdc.pid" >"$K/kdc.out" 2>&1 &
PIDS+=("$!")
}

# samba_kdc_start: a throwaway Samba AD DC for $REALM on $IP (only its KDC service), as AD
# CS runs against Active Directory, in $K/dc: the site account sccm-site (Site-Secret-1),
# stranger, and a service account holding the SPN HTTP/$HOST whose keys samba-tool exports
# to $K/http.keytab; exports KRB5_CONFIG and KRB5CCNAME; sets K. Waits until the KDC answers.
samba_kdc_start() {
K="$T/krb"
local D="$K/dc" SAM
mkdir -p "$D/run"
# Provisioning binds only $IP; only the KDC service runs (no LDAP/SMB/DNS needed here).
samba-tool domain provision --targetdir="$D" --realm="$REALM" --domain=CONTOSO \
  --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass='Adm1n!Passw0rd' \
  --host-name=dc1 --host-ip="$IP" \
  --option="interfaces = $IP/8" --option="bind interfaces only = yes" \
  --option="server services = kdc" \
  --option="pid directory = $D/run" --option="ncalrpc dir = $D/run/ncalrpc" \
  --option="winbindd socket directory = $D/run/winbindd" \
  --option="ntp signd socket directory = $D/run/ntp_signd" \
  --option="log file = $D/log.%m" >"$K/provision.log" 2>&1 ||
  { tail -20 "$K/provision.log"; exit 1; }
SAM=(-H "$D/private/sam.ldb")
samba-tool user create sccm-site 'Site-Secret-1' "${SAM[@]}" >>"$K/provision.log" 2>&1
samba-tool user create stranger 'Stranger-3x!' "${SAM[@]}" >>"$K/provision.log" 2>&1
samba-tool user create adcs-http 'Svc-Secret-9!x' "${SAM[@]}" >>"$K/provision.log" 2>&1
samba-tool spn add "HTTP/$HOST" adcs-http "${SAM[@]}" >>"$K/provision.log" 2>&1
samba-tool domain exportkeytab "$K/http.keytab" --principal="HTTP/$HOST" \
  -s "$D/etc/smb.conf" >>"$K/provision.log" 2>&1
check "the service account's keytab for HTTP/$HOST is exported" \
  bash -c "klist -k '$K/http.keytab' | grep -q 'HTTP/$HOST@$REALM'"
chmod 600 "$K/http.keytab"
samba -i -M single -s "$D/etc/smb.conf" --maximum-runtime=900 >"$K/samba.out" 2>&1 &
PIDS+=("$!")

krb5_client_conf "$IP"
check "Samba's KDC answers" wait_for 60 bash -c "exec 3<>/dev/tcp/$IP/88"
}

# adcssim_kerberos_checks KEYTAB
adcssim_kerberos_checks() {
  local keytab=$1 st
  check "server starts" \
    adcssim_start "$T/ca" "$SEED" "$IP" 8443 8080 "$T/ca.pem" --host "$HOST" --keytab "$keytab"
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
