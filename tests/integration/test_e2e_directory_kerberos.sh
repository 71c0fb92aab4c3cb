#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 14 item 4, end to end with the real directory plugin: a throwaway Samba AD DC on
# loopback (samba_lib.sh), the site account with only the rights docs/directory-ad.md lists
# on an OU, and amtprovd provisioning two amtsim devices with directory-ad and Kerberos on.
# R-PROV-04: directory-ad makes each device's computer account and SPNs; R-ACC-01: the
# second stage gives AMT the key derived from the password directory-ad set and an ACL
# entry for the group amt-admins, named in the manifest and resolved to its SID through the
# directory. A domain user in the group then gets a ticket for the device's SPN from the
# real KDC and reaches WS-Man with `curl --negotiate`; a user outside the group gets 401.
# After unprovision the account is gone, no ticket for its SPN can be had, and the device
# refuses the ticket it accepted before.
TEST_NAME=e2e_directory_kerberos
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/samba_lib.sh"

need_tools samba samba-tool ldapsearch kinit kvno curl
AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"

claim_net
IP="$NET.200"
D="$T/dc"
OU="OU=AMT,$SAMBA_BASE_DN"
SITE_PW='Site-Acct-Pw-7x!'
check "Samba AD DC provisions" samba_dc_provision "$D" "$IP" "ldap kdc"
SAM=("${SAMBA_SAM[@]}")
{
  samba-tool ou create "$OU" "${SAM[@]}"
  samba-tool user create amtprov-site "$SITE_PW" "${SAM[@]}"
  samba-tool group add amt-admins "${SAM[@]}"
  samba-tool user create alice 'Alice-Pw-7x!' "${SAM[@]}"
  samba-tool user create mallory 'Mallory-Pw-7x!' "${SAM[@]}"
  samba-tool group addmembers amt-admins alice "${SAM[@]}"
} >>"$T/setup.log" 2>&1
GROUP_SID=$(samba_sid amt-admins)
check "the site account gets only the rights docs/directory-ad.md lists, on $OU" \
  samba_delegate_ou "$OU" amtprov-site >>"$T/setup.log" 2>&1
check "Samba AD DC serves LDAPS and the KDC on $IP only" samba_dc_start "$D" "$IP"
# The devices live in contoso.com (the provisioning certificate's domain), their accounts in
# the realm CONTOSO.TEST: consoles map the device names to that realm.
krb5_conf "$T/krb5.conf" "$IP" .contoso.test .contoso.com
export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"

make_prov_pki "$T/pki"   # oob.contoso.com; sets ROOT_HASH
mkdir -p "$T/sim" "$T/site"
printf '{ "key_pool": 3, "devices": [ %s, %s, %s ] }\n' "$(fleet_dev pc1 "$NET.1")" "$(fleet_dev pc2 "$NET.2")" \
  "$(fleet_dev pc3 "$NET.3")" >"$T/fleet.json"
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves three devices" wait_for 20 test -S "$T/sim/control.sock"
M="$T/site/site.json"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "krbad", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"},
    "ad": {"plugin": "directory-ad", "config": {"url": "ldaps://$IP", "ca_file": "$D/tls/ca.pem",
           "encryption_types": 4,
           "bind_dn": "amtprov-site@contoso.test", "bind_password": "ad/site"}}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key"},
  "amt": {"transport": "amt", "directory": "ad", "directory_container": "$OU", "kerberos": true,
          "user_accounts": [{"name": "amt-admins", "realms": ["pt-administration"],
                             "access": "network"}]}
}
JSON
"$AMTPROV" -m "$M" db init >/dev/null
printf '%s' "$SITE_PW" | "$AMTPROV" -m "$M" cred set ad/site --stdin >/dev/null
for id in pc1 pc2; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$M" device add --from-json "$T/$id.agent.json" >/dev/null
done
expect_rc 0 "R-PROV-04, R-ACC-01: amtprovd provisions both devices with directory-ad and Kerberos" \
  "$AMTPROVD" -m "$M" -l debug --once=120 2>"$T/amtprovd.1.log"
"$AMTPROV" -m "$M" --json device list >"$T/devices.json"
check "both devices are PROVISIONED" \
  python3 -c 'import json,sys; s=[d["state"] for d in json.load(open(sys.argv[1]))]; assert s==["PROVISIONED"]*2, s' "$T/devices.json"

for id in pc1 pc2; do
  ID=${id^^}
  samba_ldap_get "(sAMAccountName=$ID\$)" dn servicePrincipalName msDS-SupportedEncryptionTypes \
    msDS-KeyVersionNumber >"$T/$id.ldif"
  check "R-PROV-04: directory-ad made $id's computer account in $OU" \
    grep -qx "dn: CN=$ID,$OU" "$T/$id.ldif"
  check "R-PROV-04: $id's account holds the SPNs AMT answers to" bash -c "
    for s in HTTP/$id.contoso.com:16992 HTTP/$id.contoso.com:16993 HTTPS/$id.contoso.com:16993 HTTP/$id.contoso.com; do
      grep -qx \"servicePrincipalName: \$s\" '$T/$id.ldif' || exit 1; done"
  check "R-ACC-01: $id's account allows RC4-HMAC only (encryption_types 4), the key AMT holds" \
    grep -qx "msDS-SupportedEncryptionTypes: 4" "$T/$id.ldif"
  "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.dump.json"
  check "R-ACC-01: AMT on $id holds the realm, the account's key version, its SPNs and the group's SID" \
    python3 - "$T/$id.dump.json" "$T/$id.ldif" "$id" "$GROUP_SID" <<'PY'
import base64, json, re, sys
dump = json.load(open(sys.argv[1]))
k = dump["kerberos"]
kvno = int(re.search(r"^msDS-KeyVersionNumber: (\d+)$", open(sys.argv[2]).read(), re.M).group(1))
assert k["enabled"] and k["realm"] == "CONTOSO.TEST" and k["key_version"] == kvno, (k, kvno)
spns = {s["spn"] for s in k["spns"]}
assert "HTTP/%s.contoso.com:16993" % sys.argv[3] in spns, spns
def sid(b64):  # AMT's binary SID as S-1-...
    b = base64.b64decode(b64)
    subs = [int.from_bytes(b[8 + 4 * i:12 + 4 * i], "little") for i in range(b[1])]
    return "S-%d-%d-" % (b[0], int.from_bytes(b[2:8], "big")) + "-".join(map(str, subs))
sids = [sid(u["kerberos_sid"]) for u in dump["users"] if u.get("kerberos_sid")]
assert sys.argv[4] in sids, (sids, sys.argv[4])
PY
done

msg='<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>1</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo></Header><Body></Body></Envelope>'
printf '%s' "$msg" >"$T/get.xml"
# wsman_get CCACHE: WS-Man Get on pc1 with Negotiate from the tickets in CCACHE; the status
wsman_get() {
  KRB5CCNAME="FILE:$1" curl -sS --max-time 20 -k --negotiate -u : \
    --resolve "pc1.contoso.com:16993:$NET.1" \
    -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$T/get.xml" \
    -o "$T/body" -w '%{http_code}' "https://pc1.contoso.com:16993/wsman" 2>>"$T/curl.err"
}
# tgt USER PW: a fresh ticket cache $T/cc.USER holding only USER's TGT
tgt() { rm -f "$T/cc.$1"; printf '%s' "$2" | KRB5CCNAME="FILE:$T/cc.$1" kinit "$1@$REALM" >>"$T/kinit.log" 2>&1; }

check "alice (in amt-admins) gets a TGT" tgt alice 'Alice-Pw-7x!'
check "R-PROV-04: alice gets a ticket for pc1's SPN HTTP/pc1.contoso.com:16993 (kvno)" \
  bash -c "KRB5CCNAME='FILE:$T/cc.alice' kvno HTTP/pc1.contoso.com:16993 >>'$T/kvno.log' 2>&1"
status=$(wsman_get "$T/cc.alice")
check "R-ACC-01: alice reaches pc1's WS-Man with curl --negotiate (got $status)" test "$status" = 200
check "R-ACC-01: the answer is pc1's AMT_GeneralSettings" grep -q 'AMT_GeneralSettings' "$T/body"
cp "$T/cc.alice" "$T/cc.alice.old"   # holds the service ticket pc1 accepted
check "mallory (not in amt-admins) gets a TGT" tgt mallory 'Mallory-Pw-7x!'
status=$(wsman_get "$T/cc.mallory")
check "R-ACC-01: mallory, outside the ACL group, gets 401 (got $status)" test "$status" = 401
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump2.json"
check "pc1's audit says mallory's valid ticket was refused for want of an ACL entry" \
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert any("mallory" in e["event"] and "no ACL entry" in e["event"] for e in a), [e["event"] for e in a if "egotiate" in e["event"]]' "$T/pc1.dump2.json"

check "the device unprovision is accepted" \
  bash -c "'$AMTPROV' -m '$M' device unprovision pc1.contoso.com | grep -q NEED_UNPROVISION"
expect_rc 0 "amtprovd unprovisions pc1" "$AMTPROVD" -m "$M" -l debug --once=120 2>"$T/amtprovd.2.log"
check "R-PROV-04: pc1's account and its SPNs are gone from the directory" \
  test -z "$(samba_ldap_get '(|(sAMAccountName=PC1$)(servicePrincipalName=HTTP/pc1.contoso.com*))' dn)"
check "pc2's account stays" test -n "$(samba_ldap_get '(sAMAccountName=PC2$)' dn)"
check "alice gets a fresh TGT" tgt alice 'Alice-Pw-7x!'
check "R-PROV-04: no ticket for pc1's SPN can be had any more (kvno fails)" \
  bash -c "! KRB5CCNAME='FILE:$T/cc.alice' kvno HTTP/pc1.contoso.com:16993 >>'$T/kvno.log' 2>&1"
check "the old cache still holds the ticket pc1 accepted" \
  bash -c "KRB5CCNAME='FILE:$T/cc.alice.old' klist | grep -q 'HTTP/pc1.contoso.com@'"
status=$(wsman_get "$T/cc.alice.old")
check "R-ACC-01: after unprovision pc1 refuses alice's old ticket (got $status)" test "$status" = 401
# The plugin's default encryption types (28: RC4 and AES) make the KDC issue AES tickets,
# while AMT gets the RC4-HMAC key only: the core refuses instead of leaving a device no
# console can reach.
sed '/"encryption_types": 4,/d' "$M" >"$T/site/default-enctypes.json"
"$AMTSIM" agent --state-dir "$T/sim" --device pc3 >"$T/pc3.agent.json" 2>>"$T/agent.err"
"$AMTPROV" -m "$T/site/default-enctypes.json" device add --from-json "$T/pc3.agent.json" >/dev/null
"$AMTPROVD" -m "$T/site/default-enctypes.json" -l debug --once=120 2>"$T/amtprovd.3.log"
"$AMTPROV" -m "$T/site/default-enctypes.json" device show pc3.contoso.com >"$T/pc3.show" 2>&1
check "R-ACC-01: an account that allows AES is refused, naming the setting to change" \
  bash -c "grep -q FAILED '$T/pc3.show' && grep -q 'allows encryption types 28' '$T/pc3.show' &&
           grep -q 'encryption_types to 4' '$T/pc3.show'"
check "R-ACC-01: the device key never reaches amtprovd's log" \
  bash -c "! grep -qi 'MasterKey>[A-Za-z0-9+/]' '$T'/amtprovd.*.log"
check "no sanitizer report (amtprovd, amtsim)" no_sanitizer_reports "$T"/amtprovd.*.log "$T/amtsim.log"

finish
