#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# R-ACC-01, R-PROV-04, end to end with a real KDC: a Samba AD DC on loopback holds the
# device's account (password known, SPNs HTTP/pc1.contoso.com...), amtprovd provisions an
# amtsim device through a directory plugin that reports that account (the fake-directory
# test double, configured with the account's password, key version and the ACL group's
# SID), and the second stage writes the Kerberos key and the ACL entry by SID into AMT. Then
# a domain user in the ACL group gets a service ticket from Samba's KDC and calls WS-Man
# with `curl --negotiate`: the device decrypts it with the key amtprov derived and
# authorizes the PAC's group SID. A domain user outside the group gets 401. The derived key
# never reaches amtprovd's log.
TEST_NAME=e2e_kerberos_samba
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba_lib.sh"

need_tools samba samba-tool ldbsearch ldbmodify kinit curl
AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
SAMBA_IP="$NET.200" REALM=CONTOSO.COM
samba_dc_provision "$T/dc" "$SAMBA_IP" kdc || exit 1
SAM=("${SAMBA_SAM[@]}")

# The device's account as directory-ad makes it: a password, the SPNs, RC4-HMAC (the key
# AMT's MasterKey holds) among its encryption types.
DEV_PW='Dev1ce-Acc0unt!Pw-42'
samba-tool user create amt-pc1 "$DEV_PW" "${SAM[@]}" >>"$T/provision.log" 2>&1
for spn in HTTP/pc1.contoso.com HTTP/pc1.contoso.com:16992 HTTP/pc1.contoso.com:16993; do
  samba-tool spn add "$spn" amt-pc1 "${SAM[@]}" >>"$T/provision.log" 2>&1
done
dn=$(ldbsearch "${SAM[@]}" "(sAMAccountName=amt-pc1)" dn 2>/dev/null | sed -n 's/^dn: //p')
printf 'dn: %s\nchangetype: modify\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: 4\n' "$dn" |
  ldbmodify "${SAM[@]}" >>"$T/provision.log" 2>&1
KVNO=$(ldbsearch "${SAM[@]}" "(sAMAccountName=amt-pc1)" msDS-KeyVersionNumber 2>/dev/null |
  sed -n 's/^msDS-KeyVersionNumber: //p')
# Console users: alice in the ACL group, mallory not.
samba-tool group add amt-admins "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create alice 'Al1ce-Console!' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create mallory 'Mall0ry-Outside!' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool group addmembers amt-admins alice "${SAM[@]}" >>"$T/provision.log" 2>&1
GROUP_SID=$(samba_sid amt-admins)
check "the domain has the device account (kvno $KVNO) and the ACL group ($GROUP_SID)" \
  bash -c "[ -n '$KVNO' ] && [[ '$GROUP_SID' == S-1-5-21-* ]]"
check "Samba's KDC answers" samba_dc_start "$T/dc" "$SAMBA_IP"
export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"
krb5_conf "$KRB5_CONFIG" "$SAMBA_IP" .contoso.com

pki="$T/pki"
make_prov_pki "$pki"
mkdir -p "$T/sim"
cat >"$T/fleet.json" <<JSON
{ "devices": [
    { "id": "pc1", "address": "$NET.1", "amt_version": "12.0.45", "provisioning_state": "in",
      "host_name": "pc1", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] } ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the device" wait_for 20 test -S "$T/sim/control.sock"

mkdir -p "$T/site"
cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "krb", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS", "$AMTPROV_BUILD_DIR/tests/plugins"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"},
    "dir": {"plugin": "fake-directory", "config": {"password": "$DEV_PW", "realm": "CONTOSO.COM",
            "kvno": $KVNO, "enctypes": 4, "sids": "amt-admins=$GROUP_SID"}}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "directory": "dir", "kerberos": true,
          "user_accounts": [{"name": "amt-admins", "realms": ["pt-administration"],
                             "access": "network"}]}
}
JSON
"$AMTPROV" -m "$T/site/site.json" db init >/dev/null
"$AMTSIM" agent --state-dir "$T/sim" --device pc1 >"$T/pc1.agent.json" 2>>"$T/agent.err"
"$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/pc1.agent.json" >/dev/null
expect_rc 0 "amtprovd provisions pc1 with Kerberos" \
  "$AMTPROVD" -m "$T/site/site.json" -l debug --once=120 2>"$T/amtprovd.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
"$AMTPROV" -m "$T/site/site.json" --json device list >"$T/devices.json"
check "pc1 is PROVISIONED" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [x["state"] for x in d]==["PROVISIONED"], d' "$T/devices.json"
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json"
check "R-ACC-01: AMT holds the realm, the SPNs, the key version and Kerberos is on" \
  python3 - "$T/pc1.dump.json" "$KVNO" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["kerberos"]
assert k["enabled"] and k["realm"] == "CONTOSO.COM" and k["key_version"] == int(sys.argv[2]), k
spns = {s["spn"]: s["protocol"] for s in k["spns"]}
assert spns.get("HTTP/pc1.contoso.com") == 0 and spns.get("HTTP/pc1.contoso.com:16993") == 1, spns
PY
check "R-ACC-01: the device's key and SIDs are kept in the credential store" bash -c \
  "'$AMTPROV' -m '$T/site/site.json' cred list | grep -qx 'device/pc1.contoso.com/kerberos-master-key' &&
   '$AMTPROV' -m '$T/site/site.json' cred list | grep -qx 'device/pc1.contoso.com/kerberos'"
check "R-ACC-01: the device key never reaches amtprovd's log" \
  bash -c "! grep -qi 'MasterKey>[A-Za-z0-9+/]' '$T/amtprovd.log'"

msg='<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>1</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo></Header><Body></Body></Envelope>'
printf '%s' "$msg" >"$T/get.xml"
# console USER PW: kinit as the user, then WS-Man Get with Negotiate; prints the HTTP status.
console() {
  printf '%s' "$2" | kinit "$1@CONTOSO.COM" >"$T/kinit.$1.log" 2>&1 || { echo "kinit-failed"; return; }
  curl -sS --max-time 20 -k --negotiate -u : --resolve "pc1.contoso.com:16993:$NET.1" \
    -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$T/get.xml" \
    -o "$T/b.$1" -w '%{http_code}' "https://pc1.contoso.com:16993/wsman" 2>"$T/curl.$1.err"
}
# malformed tokens: each a 401, and the device keeps answering (alice's call below)
for tok in 'AAAA!!not-base64' 'YWJjZA==' 'oIIBzTCCAcmgAwoBAKEL' "$(head -c 3000 /dev/urandom | base64 -w0)"; do
  status=$(curl -sS --max-time 20 -k --resolve "pc1.contoso.com:16993:$NET.1" \
    -H "Authorization: Negotiate $tok" -H 'Content-Type: application/soap+xml;charset=UTF-8' \
    --data-binary @"$T/get.xml" -o /dev/null -w '%{http_code}' "https://pc1.contoso.com:16993/wsman")
  check "a malformed Negotiate token (${tok:0:12}...) gets 401 (got $status)" test "$status" = 401
done
status=$(console alice 'Al1ce-Console!')
check "R-ACC-01: alice (in amt-admins) reaches WS-Man with a Kerberos ticket (got $status)" \
  test "$status" = 200
check "R-ACC-01: the answer is the device's AMT_GeneralSettings" grep -q 'AMT_GeneralSettings' "$T/b.alice"
status=$(console mallory 'Mall0ry-Outside!')
check "R-ACC-01: mallory (outside the ACL) gets 401 (got $status)" test "$status" = 401
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump2.json"
check "the device's audit says why mallory was refused" \
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert any("mallory" in e["event"] and "no ACL entry" in e["event"] for e in a), [e["event"] for e in a if "negotiate" in e["event"]]' "$T/pc1.dump2.json"

# R-REV-02a: unprovision clears the device's Kerberos secrets; AMT no longer takes tickets
"$AMTPROV" -m "$T/site/site.json" device unprovision pc1.contoso.com >/dev/null
expect_rc 0 "amtprovd unprovisions pc1" \
  "$AMTPROVD" -m "$T/site/site.json" -l debug --once=120 2>"$T/amtprovd2.log"
check "the device's Kerberos records are removed on unprovision" \
  bash -c "! '$AMTPROV' -m '$T/site/site.json' cred list | grep -q 'device/pc1.contoso.com/kerberos'"
status=$(console alice 'Al1ce-Console!')
check "after unprovision alice's ticket no longer opens the device (got $status)" test "$status" = 401
finish
