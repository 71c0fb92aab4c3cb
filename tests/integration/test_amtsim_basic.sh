#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# amtsim end to end with real clients: curl --digest over TLS (WS-Man Get/Enumerate/Pull,
# faults, 401 challenges), AMT's provisioning-certificate checks with client certificates made
# by the openssl command, Debian's amttool against a legacy (< 9.0) device, the host agent,
# and the control-socket dump.
TEST_NAME=amtsim_basic
source "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
[ -x "$AMTSIM" ] || { echo "amtsim not built: $AMTSIM"; exit 1; }

# Our own loopback /24 (claim_net, lib.sh); host parts derived from the PID.
P=$$
claim_net
A_POST="$NET.$(((P & 63) + 1))"
A_IN="$NET.$(((P & 63) + 65))"
A_LEG="$NET.$(((P & 63) + 129))"
A_PRE="$NET.$(((P & 63) + 193 > 254 ? 254 : (P & 63) + 193))"
[ "$A_PRE" = "$A_LEG" ] && A_PRE="$NET.254"

# ---- a provisioning PKI, made with the openssl command -------------------------------------
PKI="$T/pki"
mkdir -p "$PKI"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=amtsim test root" \
  -keyout "$PKI/root.key" -out "$PKI/root.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=untrusted root" \
  -keyout "$PKI/other.key" -out "$PKI/other.pem" 2>/dev/null
ROOT_HASH=$(openssl x509 -in "$PKI/root.pem" -outform DER | sha256sum | cut -d' ' -f1)

# leaf NAME SUBJECT EKU [CA]: a leaf signed by the test root (or CA), chain file NAME.chain.
leaf() {
  local name=$1 subj=$2 eku=$3 ca=${4:-root}
  printf 'extendedKeyUsage=%s\n' "$eku" >"$PKI/$name.ext"
  openssl req -new -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" \
    -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 1 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.pem" 2>/dev/null
  cat "$PKI/$name.pem" "$PKI/$ca.pem" >"$PKI/$name.chain"
}
leaf good "/CN=oob.contoso.com" "serverAuth,2.16.840.1.113741.1.2.3"
leaf good_ou "/OU=Intel(R) Client Setup Certificate/CN=oob.contoso.com" "serverAuth"
leaf no_oid "/CN=oob.contoso.com" "serverAuth"
leaf no_sa "/CN=oob.contoso.com" "clientAuth,2.16.840.1.113741.1.2.3"
leaf bad_cn "/CN=oob.fabrikam.com" "serverAuth,2.16.840.1.113741.1.2.3"
leaf untrusted "/CN=oob.contoso.com" "serverAuth,2.16.840.1.113741.1.2.3" other

# ---- the fleet -------------------------------------------------------------------------------
cat >"$T/fleet.json" <<JSON
{
  "key_pool": 1,
  "devices": [
    { "id": "post1", "address": "$A_POST", "amt_version": "11.8.50",
      "provisioning_state": "post", "control_mode": "acm", "admin_password": "P@ssw0rd1",
      "host_name": "pc1", "domain_name": "contoso.com" },
    { "id": "in1", "address": "$A_IN", "amt_version": "12.0.45", "provisioning_state": "in",
      "dhcp_domain": "contoso.com", "otp": "Secret0TP123",
      "root_hashes_replace": false,
      "root_hashes": [ { "name": "test root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "legacy1", "address": "$A_LEG", "amt_version": "6.2.61",
      "provisioning_state": "post", "admin_password": "P@ssw0rd1", "tls_modern_override": true,
      "host_name": "oldpc", "domain_name": "contoso.com" },
    { "id": "pre1", "address": "$A_PRE", "amt_version": "16.1.25" }
  ]
}
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/state" 2>"$T/serve.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
SOCK="$T/state/control.sock"
if ! wait_for 30 test -S "$SOCK"; then
  cat "$T/serve.log"
  fail "amtsim serve starts"
  finish
  exit 1
fi
pass "amtsim serve starts"

cert_of() { "$AMTSIM" dump --control "$SOCK" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["self_cert_pem"])' >"$T/$1.pem"; }
for d in post1 in1 legacy1 pre1; do cert_of $d; done

MSG_HDR='<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header>'
REPLY='<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout>'
# msg ACTION RESOURCE BODY: a request shaped like wsman-messages' output.
msg() {
  printf '%s<a:Action>%s</a:Action><a:To>/wsman</a:To><w:ResourceURI>%s</w:ResourceURI><a:MessageID>1</a:MessageID>%s</Header><Body>%s</Body></Envelope>' \
    "$MSG_HDR" "$1" "$2" "$REPLY" "$3"
}
AMT=http://intel.com/wbem/wscim/1/amt-schema/1
CIM=http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2
WXF=http://schemas.xmlsoap.org/ws/2004/09/transfer
WSEN=http://schemas.xmlsoap.org/ws/2004/09/enumeration
msg "$WXF/Get" "$AMT/AMT_GeneralSettings" "" >"$T/get.xml"
msg "$WXF/Get" "$AMT/AMT_SetupAndConfigurationService" "" >"$T/getsetup.xml"
msg "$WXF/Get" "$AMT/AMT_NoSuchThing" "" >"$T/bad.xml"
msg "$WSEN/Enumerate" "$CIM/CIM_SoftwareIdentity" "<Enumerate xmlns=\"$WSEN\" />" >"$T/enum.xml"

# wsman DEVICE ADDR USER:PW FILE [curl args]: POST to /wsman, headers to $T/h, body to $T/b.
wsman() {
  local dev=$1 addr=$2 cred=$3 file=$4; shift 4
  curl -sS --max-time 10 --cacert "$T/$dev.pem" --digest -u "$cred" \
    -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$file" \
    -D "$T/h" -o "$T/b" "$@" "https://$addr:16993/wsman"
}

# ---- HTTP, Digest, WS-Man on a provisioned device -------------------------------------------
check "curl --digest WS-Man Get over TLS" wsman post1 "$A_POST" admin:P@ssw0rd1 "$T/get.xml"
check "200 with the realm in DigestRealm" grep -q '<h:DigestRealm>Digest:[0-9A-F]\{32\}</h:DigestRealm>' "$T/b"
check "Server header names AMT and version" grep -qi '^Server: Intel(R) Active Management Technology 11.8.50' "$T/h"
check "chunked response" grep -qi '^Transfer-Encoding: chunked' "$T/h"
check "host name from the model" grep -q '<h:HostName>pc1</h:HostName>' "$T/b"

wsman post1 "$A_POST" admin:wrong "$T/get.xml"
check "wrong password gets 401" grep -q '^HTTP/1.1 401' "$T/h"
check "401 carries a Digest challenge with qop=auth" grep -q 'WWW-Authenticate: Digest realm="Digest:[0-9A-F]\{32\}", nonce="[^"]\{32\}",stale="false",qop="auth"' "$T/h"
N1=$(grep -o 'nonce="[^"]*"' "$T/h" | tail -1)
wsman post1 "$A_POST" admin:wrong "$T/get.xml"
N2=$(grep -o 'nonce="[^"]*"' "$T/h" | tail -1)
check "every 401 has a fresh nonce" test -n "$N1" -a "$N1" != "$N2"

wsman post1 "$A_POST" admin:P@ssw0rd1 "$T/bad.xml"
check "unknown resource: 400 SOAP fault" grep -q '^HTTP/1.1 400' "$T/h"
check "fault is DestinationUnreachable" grep -q 'DestinationUnreachable' "$T/b"

wsman post1 "$A_POST" admin:P@ssw0rd1 "$T/enum.xml"
CTX=$(grep -o '<d:EnumerationContext>[^<]*' "$T/b" | cut -d'>' -f2)
msg "$WSEN/Pull" "$CIM/CIM_SoftwareIdentity" "<Pull xmlns=\"$WSEN\"><EnumerationContext>$CTX</EnumerationContext><MaxElements>999</MaxElements><MaxCharacters>99999</MaxCharacters></Pull>" >"$T/pull.xml"
wsman post1 "$A_POST" admin:P@ssw0rd1 "$T/pull.xml"
check "Enumerate + Pull CIM_SoftwareIdentity" grep -q '<h:InstanceID>AMT</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>11.8.50</h:VersionString>' "$T/b"
check "Pull ends the sequence" grep -q 'EndOfSequence' "$T/b"

# ---- provisioning TLS: client certificate checks (device in1, in provisioning) ----------------
check "good provisioning cert (OID) + admin/empty password" \
  wsman in1 "$A_IN" "admin:" "$T/getsetup.xml" --cert "$PKI/good.chain" --key "$PKI/good.key"
check "OTP readable while in provisioning" grep -q '<h:ProvisioningServerOTP>U2VjcmV0MFRQMTIz</h:ProvisioningServerOTP>' "$T/b"
check "good provisioning cert (OU)" \
  wsman in1 "$A_IN" "admin:" "$T/get.xml" --cert "$PKI/good_ou.chain" --key "$PKI/good_ou.key"
for bad in no_oid no_sa bad_cn untrusted; do
  if wsman in1 "$A_IN" "admin:" "$T/get.xml" --cert "$PKI/$bad.chain" --key "$PKI/$bad.key" 2>/dev/null; then
    fail "client cert '$bad' refused in the handshake"
  else
    pass "client cert '$bad' refused in the handshake"
  fi
done
if wsman in1 "$A_IN" "admin:" "$T/get.xml" 2>/dev/null; then
  fail "no client cert refused while in provisioning"
else
  pass "no client cert refused while in provisioning"
fi
"$AMTSIM" dump --control "$SOCK" in1 >"$T/in1.json"
check "audit: missing OID/OU recorded" grep -q 'provisioning TLS refused: leaf has neither EKU' "$T/in1.json"
check "audit: missing serverAuth recorded" grep -q 'provisioning TLS refused: leaf lacks EKU serverAuth' "$T/in1.json"
check "audit: CN mismatch recorded" grep -q 'oob.fabrikam.com.*does not match the trusted DNS suffix' "$T/in1.json"
check "audit: unknown root recorded" grep -q 'hash not in the device' "$T/in1.json"
check "audit: accepted cert recorded" grep -q 'client certificate accepted CN' "$T/in1.json"

# ---- legacy SOAP with Debian's amttool ------------------------------------------------------
if command -v amttool >/dev/null 2>&1; then
  AMT_PASSWORD=P@ssw0rd1 HTTPS_CA_FILE="$T/legacy1.pem" timeout 30 amttool "$A_LEG:16993" info >"$T/amttool.out" 2>&1
  check "amttool info: version" grep -q '^AMT version:  6.2.61' "$T/amttool.out"
  check "amttool info: host name" grep -q '^Hostname:     oldpc.contoso.com' "$T/amttool.out"
  AMT_PASSWORD=wrong HTTPS_CA_FILE="$T/legacy1.pem" timeout 30 amttool "$A_LEG:16993" info >"$T/amttool2.out" 2>&1
  check "amttool with a wrong password gets no version" bash -c "! grep -q '^AMT version:  6' '$T/amttool2.out'"
  # Plain HTTP (16992): legacy firmware serves the same EOI services without TLS.
  AMT_PASSWORD=P@ssw0rd1 timeout 30 amttool "$A_LEG" info >"$T/amttool3.out" 2>&1
  check "amttool info over plain HTTP 16992: version and host name" \
    bash -c "grep -q '^AMT version:  6.2.61' '$T/amttool3.out' && grep -q '^Hostname:     oldpc.contoso.com' '$T/amttool3.out'"
else
  echo "skip - amttool not installed (apt-get install amtterm libsoap-lite-perl liblwp-protocol-https-perl)"
fi
# EOI services are gone from 9.0 on.
curl -sS --max-time 10 --cacert "$T/post1.pem" --digest -u admin:P@ssw0rd1 \
  -H 'Content-Type: text/xml' --data-binary '<x/>' -o /dev/null -w '%{http_code}' \
  "https://$A_POST:16993/SecurityAdministrationService" >"$T/code"
check "no legacy SOAP on AMT 11 (404)" grep -q 404 "$T/code"

# ---- host agent and dump ----------------------------------------------------------------------
"$AMTSIM" agent --state-dir "$T/state" --device pre1 >"$T/agent.json"
check "agent prints the JSON amtprov reads" python3 -c '
import json,sys,re
a=json.load(open(sys.argv[1]))
assert set(["fqdn","uuid","amt_version","wired_ip","otp_hash","provisioning_state"]) <= set(a)
assert re.fullmatch("[0-9a-f]{64}", a["otp_hash"]) and a["provisioning_state"]=="pre"
assert a["amt_version"]=="16.1.25" and a["wired_ip"]==sys.argv[2]' "$T/agent.json" "$A_PRE"
if "$AMTSIM" agent --state-dir "$T/state" --device post1 >/dev/null 2>&1; then
  fail "agent refuses a provisioned device"
else
  pass "agent refuses a provisioned device"
fi
"$AMTSIM" dump --control "$SOCK" pre1 >"$T/pre1.json"
check "dump shows state and the OTP event" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["provisioning_state"]=="pre" and d["amt_version"]=="16.1.25"
assert "otp" not in d and "admin_ha1" not in d
assert any("otp set" in e["event"] for e in d["audit"])' "$T/pre1.json"
check "dump lists the fleet" bash -c "'$AMTSIM' dump --control '$SOCK' | grep -q legacy1"

# ---- clean shutdown, state kept --------------------------------------------------------------
kill -TERM "$SIM_PID"
wait "$SIM_PID"
check "serve exits cleanly on SIGTERM" test $? -eq 0
check "state persisted per device" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["provisioning_state"]=="in" and any("refused" in e["event"] for e in d["audit"])' "$T/state/in1.json"
check "no sanitizer reports" no_sanitizer_reports "$T/serve.log"
finish
