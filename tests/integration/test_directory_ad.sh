#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# directory-ad against a real Active Directory: a throwaway Samba AD DC on loopback
# (samba_lib.sh). R-PROV-04: the device's computer account in the site's OU with its SPNs,
# encryption types and a random password set over TLS, found again (not duplicated) on
# retry, deleted on unprovision; the refusals an AD administrator meets (account of
# someone else, SPN held by another object, OU missing, no rights, TLS with a wrong CA).
# R-ACC-01 groundwork: the key version, realm and salt read back give, with the password,
# keys the real KDC accepts (kinit with a keytab made from them), and user and group names
# resolve to the SIDs AD holds. First through a small driver (plugins/directory-ad/tests/
# ad_drive.c: one op through a site and the real loader), then through amtprovd
# provisioning and unprovisioning amtsim devices.
TEST_NAME=directory_ad
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/samba_lib.sh"

need_tools samba samba-tool ldapsearch kinit kvno ktutil
DRIVE="$AMTPROV_BUILD_DIR/plugins/directory-ad/ad_drive"
AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"

claim_net
IP="$NET.200"
D="$T/dc"
BASE="DC=contoso,DC=test"
OU="OU=AMT,$BASE"
SITE_PW='Site-Acct-Pw-7x!'
# The site account, a user without rights, a console user in a group, an account that is
# not amtprov's (a computer STRANGER$) and a user holding an SPN another device would want.
check "Samba AD DC provisions" samba_dc_provision "$D" "$IP" "ldap kdc"
SAM=("${SAMBA_SAM[@]}")
{
  samba-tool ou create "$OU" "${SAM[@]}"
  samba-tool user create amtprov-site "$SITE_PW" "${SAM[@]}"
  samba-tool user create norights 'NoRights-Pw-7x!' "${SAM[@]}"
  samba-tool user create alice 'Alice-Pw-7x!' "${SAM[@]}"
  samba-tool group add amt-admins "${SAM[@]}"
  samba-tool group addmembers amt-admins alice "${SAM[@]}"
  samba-tool computer create STRANGER --computerou=OU=AMT "${SAM[@]}"
  samba-tool user create spnholder 'Holder-Pw-7x!' "${SAM[@]}"
  samba-tool spn add HTTP/taken.contoso.test:16992 spnholder "${SAM[@]}"
} >>"$T/setup.log" 2>&1
sid_of() { samba-tool "$1" show "$2" --attributes=objectSid "${SAM[@]}" 2>/dev/null | sed -n 's/^objectSid: //p'; }
check "the site account gets the documented rights on $OU" \
  samba_delegate_ou "$OU" amtprov-site >>"$T/setup.log" 2>&1
check "Samba AD DC serves LDAPS and the KDC on $IP only" samba_dc_start "$D" "$IP"
krb5_conf "$T/krb5.conf" "$IP"
# STRANGER$ claims a device's name, as a computer someone else joined would.
printf 'dn: CN=STRANGER,%s\nchangetype: modify\nreplace: dNSHostName\ndNSHostName: stranger.contoso.test\n' "$OU" |
  env LDAPCONF=/dev/null LDAPRC=/dev/null LDAPTLS_CACERT="$D/tls/ca.pem" \
  ldapmodify -x -H "ldaps://$IP" -D "Administrator@contoso.test" -w "$SAMBA_ADMIN_PW" >>"$T/setup.log" 2>&1
export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"
LDAPS=(env LDAPCONF=/dev/null LDAPRC=/dev/null LDAPTLS_CACERT="$D/tls/ca.pem"
       ldapsearch -LLL -o ldif-wrap=no -x -H "ldaps://$IP" -D "Administrator@contoso.test" -w "$SAMBA_ADMIN_PW")

# A second CA the DC's certificate does not chain to.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Other CA" \
  -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null

mkdir -p "$T/site"
adcfg() { # url bind_dn [ca_file]
  printf '{"url": "%s", "ca_file": "%s", "bind_dn": "%s", "bind_password": "%s"}' \
    "$1" "${3:-$D/tls/ca.pem}" "$2" "${4:-ad/site}"
}
cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "dir", "service_point_fqdn": "oob.contoso.test", "dns_suffix": "contoso.test" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "creds": {"plugin": "credstore-file"},
    "ad": {"plugin": "directory-ad", "config": $(adcfg "ldaps://$IP" amtprov-site@contoso.test)},
    "ad-starttls": {"plugin": "directory-ad", "config": $(adcfg "ldap://$IP" "CN=amtprov-site,CN=Users,$BASE")},
    "ad-norights": {"plugin": "directory-ad", "config": $(adcfg "ldaps://$IP" norights@contoso.test "" ad/norights)},
    "ad-wrongca": {"plugin": "directory-ad", "config": $(adcfg "ldaps://$IP" amtprov-site@contoso.test "$T/other.pem")},
    "ad-wrongca-starttls": {"plugin": "directory-ad", "config": $(adcfg "ldap://$IP" amtprov-site@contoso.test "$T/other.pem")}
  },
  "credentials": {"store": "creds"},
  "amt": {"directory": "ad", "directory_container": "$OU"}
}
JSON
printf '%s' "$SITE_PW" | "$AMTPROV" -m "$T/site/site.json" cred set ad/site --stdin >/dev/null 2>&1
printf 'NoRights-Pw-7x!' | "$AMTPROV" -m "$T/site/site.json" cred set ad/norights --stdin >/dev/null 2>&1
SECRETS="$T/secrets.tsv"
install -m 600 /dev/null "$SECRETS"
printf 'site account\t%s\n' "$SITE_PW" >>"$SECRETS"

# drive OUT INSTANCE OP ARGS...: runs the driver, output (and its log) in OUT
drive() { local out=$1; shift; "$DRIVE" "$T/site/site.json" "$@" >"$out" 2>>"$T/drive.log"; }
spns() { echo "HTTP/$1:16992" "HTTP/$1:16993" "HTTPS/$1:16993" "HTTP/$1"; }
F=amt1.contoso.test

# --- create (R-PROV-04)
# shellcheck disable=SC2046
check "R-PROV-04: the device's computer account is created over LDAPS" \
  drive "$T/c1.out" ad create "$F" 'AMT1$' - "$T/pw1" $(spns "$F")
samba_ldap_get "(sAMAccountName=AMT1\$)" dn servicePrincipalName dNSHostName userAccountControl \
  msDS-SupportedEncryptionTypes description >"$T/acct1.ldif"
check "R-PROV-04: it is CN=AMT1 in the site's OU" grep -qx "dn: CN=AMT1,$OU" "$T/acct1.ldif"
for s in $(spns "$F"); do
  check "R-PROV-04: SPN $s is on the account" grep -qx "servicePrincipalName: $s" "$T/acct1.ldif"
done
check "R-PROV-04: a workstation trust account (userAccountControl 4096)" \
  grep -qx "userAccountControl: 4096" "$T/acct1.ldif"
check "R-PROV-04: RC4+AES128+AES256 (msDS-SupportedEncryptionTypes 28)" \
  grep -qx "msDS-SupportedEncryptionTypes: 28" "$T/acct1.ldif"
check "R-PROV-04: dNSHostName and amtprov's mark are set" \
  bash -c "grep -qx 'dNSHostName: $F' '$T/acct1.ldif' && grep -qx 'description: amtprov AMT device $F' '$T/acct1.ldif'"
check "the password returned is random and strong (32 characters)" \
  test "$(wc -c <"$T/pw1")" = 32
printf 'account password 1\t%s\n' "$(cat "$T/pw1")" >>"$SECRETS"

# --- what Kerberos into AMT needs (R-ACC-01): keyinfo, and the KDC agrees
check "R-ACC-01: the key facts are read back" drive "$T/k1.out" ad keyinfo "$F"
check "R-ACC-01: realm, AD's salt for a computer account, kvno 1, enctypes 28" \
  diff <(printf 'realm CONTOSO.TEST\nsalt CONTOSO.TESThostamt1.contoso.test\nkvno 1\nenctypes 28\n') "$T/k1.out"
# keytab KT PWFILE: AES256 key from the password with the salt and kvno keyinfo gave
keytab() {
  local kv salt
  kv=$(sed -n 's/^kvno //p' "$T/k.now"); salt=$(sed -n 's/^salt //p' "$T/k.now")
  rm -f "$1"
  printf 'addent -password -p AMT1$@CONTOSO.TEST -k %s -e aes256-cts-hmac-sha1-96 -s %s\n%s\nwkt %s\nquit\n' \
    "$kv" "$salt" "$(cat "$2")" "$1" | ktutil >/dev/null 2>&1
}
cp "$T/k1.out" "$T/k.now"; keytab "$T/kt1" "$T/pw1"
check "R-ACC-01: the KDC accepts the key made from password, salt and kvno (kinit -k)" \
  kinit -k -t "$T/kt1" 'AMT1$@CONTOSO.TEST'
check "R-ACC-01: tickets are issued for the device's SPNs (kvno)" \
  bash -c "kvno 'HTTP/$F:16992' 'HTTP/$F:16993' 'HTTP/$F' >/dev/null"

# --- idempotent: a retry (after a crash too) finds the account, fixes it, new password
"${LDAPS[@]}" -b "CN=AMT1,$OU" -s base >/dev/null 2>&1  # warm
printf 'dn: CN=AMT1,%s\nchangetype: modify\nreplace: msDS-SupportedEncryptionTypes\nmsDS-SupportedEncryptionTypes: 4\n-\ndelete: servicePrincipalName\nservicePrincipalName: HTTP/%s\n' "$OU" "$F" |
  env LDAPCONF=/dev/null LDAPRC=/dev/null LDAPTLS_CACERT="$D/tls/ca.pem" \
  ldapmodify -x -H "ldaps://$IP" -D "Administrator@contoso.test" -w "$SAMBA_ADMIN_PW" >>"$T/setup.log" 2>&1
# shellcheck disable=SC2046
check "R-PROV-04: create again for the same device succeeds" \
  drive "$T/c2.out" ad create "$F" 'AMT1$' - "$T/pw2" $(spns "$F")
check "R-PROV-04: still exactly one object for the device (no duplicate)" \
  test "$(samba_ldap_get "(|(sAMAccountName=AMT1\$)(dNSHostName=$F))" dn | grep -c '^dn:')" = 1
samba_ldap_get "(sAMAccountName=AMT1\$)" servicePrincipalName msDS-SupportedEncryptionTypes >"$T/acct2.ldif"
check "R-PROV-04: what differed is fixed (the removed SPN, the encryption types)" \
  bash -c "grep -qx 'servicePrincipalName: HTTP/$F' '$T/acct2.ldif' && grep -qx 'msDS-SupportedEncryptionTypes: 28' '$T/acct2.ldif'"
check "a new password is set and returned" \
  bash -c "test -s '$T/pw1' && test -s '$T/pw2' && ! cmp -s '$T/pw1' '$T/pw2'"
printf 'account password 2\t%s\n' "$(cat "$T/pw2")" >>"$SECRETS"
drive "$T/k2.out" ad keyinfo "$F"
check "the key version went up to 2" grep -qx "kvno 2" "$T/k2.out"
cp "$T/k2.out" "$T/k.now"; keytab "$T/kt2" "$T/pw2"
check "the KDC accepts the new key" kinit -k -t "$T/kt2" 'AMT1$@CONTOSO.TEST'
check "and no longer the old one" bash -c "test -s '$T/kt1' && ! kinit -k -t '$T/kt1' 'AMT1\$@CONTOSO.TEST' 2>/dev/null"

# --- StartTLS with a DN as bind_dn works as well
# shellcheck disable=SC2046
check "ldap:// with StartTLS (bind by DN) creates a second device's account" \
  drive "$T/c3.out" ad-starttls create amt2.contoso.test AMT2 "$OU" - $(spns amt2.contoso.test)

# --- refusals, each naming the device and the object
# expect_err NAME CODE TEXT INSTANCE OP ARGS...: the driver fails with CODE and TEXT
expect_err() {
  local name=$1 code=$2 text=$3; shift 3
  drive "$T/err.out" "$@"
  if grep -q "^error $code: " "$T/err.out" && grep -qF -- "$text" "$T/err.out"; then
    pass "$name"
  else
    fail "$name (got: $(cat "$T/err.out"))"
  fi
}
expect_err "R-PROV-04: an account amtprov did not make is refused, named, left alone" \
  E_EXISTS "'CN=STRANGER,$OU' (sAMAccountName STRANGER\$" \
  ad create stranger.contoso.test STRANGER - - HTTP/stranger.contoso.test
expect_err "R-PROV-04: deleting it is refused too" E_DENIED "was not created by amtprov" \
  ad delete stranger.contoso.test
check "STRANGER\$ is untouched" \
  test "$(samba_ldap_get '(sAMAccountName=STRANGER$)' description dNSHostName servicePrincipalName | grep -c '^description\|^servicePrincipalName: HTTP/')" = 0
expect_err "R-PROV-04: an SPN held by another object is refused, naming the holder" \
  E_EXISTS "SPN HTTP/taken.contoso.test:16992 is already held by CN=spnholder,CN=Users,$BASE" \
  ad create taken.contoso.test TAKEN - - HTTP/taken.contoso.test:16992
check "nothing was written for it" test -z "$(samba_ldap_get '(sAMAccountName=TAKEN$)' dn)"
expect_err "R-PROV-04: a missing OU is named" E_CONFIG \
  "the container 'OU=Missing,$BASE' does not exist" \
  ad create amt3.contoso.test AMT3 "OU=Missing,$BASE" - HTTP/amt3.contoso.test
expect_err "R-PROV-04: no right to create in the OU is AMTPROV_E_DENIED, naming account and OU" \
  E_DENIED "'norights@contoso.test' may not create computer objects in '$OU'" \
  ad-norights create amt3.contoso.test AMT3 - - HTTP/amt3.contoso.test
expect_err "R-PROV-04: the site account has no rights outside its OU" E_DENIED \
  "may not create computer objects in 'CN=Users,$BASE'" \
  ad create amt3.contoso.test AMT3 "CN=Users,$BASE" - HTTP/amt3.contoso.test
expect_err "LDAPS with a CA the DC's certificate does not chain to: unreachable, URL named" \
  E_UNREACHABLE "cannot open a verified TLS connection to ldaps://$IP" \
  ad-wrongca create amt3.contoso.test AMT3 - - HTTP/amt3.contoso.test
expect_err "StartTLS with the wrong CA: unreachable, no bind without TLS" \
  E_UNREACHABLE "StartTLS with ldap://$IP failed" \
  ad-wrongca-starttls create amt3.contoso.test AMT3 - - HTTP/amt3.contoso.test
check "none of the refused devices has an account" \
  test -z "$(samba_ldap_get '(|(sAMAccountName=AMT3$)(dNSHostName=amt3.contoso.test))' dn)"
sed 's/"url": "ldaps/"url": "ldapx/' "$T/site/site.json" >"$T/site/bad.json"
check "a URL that is neither ldaps:// nor ldap:// is a configuration error" \
  bash -c "'$AMTPROV' -m '$T/site/bad.json' manifest check 2>&1 | grep -q 'must be ldaps://HOST or ldap://HOST'"

# --- names to SIDs (R-ACC-01: ACL entries for Windows users and groups)
ALICE=$(sid_of user alice); GROUP=$(sid_of group amt-admins)
sid_is() { test "$("$DRIVE" "$T/site/site.json" "$1" sid "$2" 2>>"$T/drive.log")" = "$3"; }
check "R-ACC-01: CONTOSO\\alice resolves to her SID" sid_is ad 'CONTOSO\alice' "$ALICE"
check "R-ACC-01: alice@contoso.test resolves to her SID" sid_is ad alice@contoso.test "$ALICE"
check "R-ACC-01: the group amt-admins resolves to its SID (over StartTLS)" \
  sid_is ad-starttls amt-admins "$GROUP"
check "the SIDs are domain SIDs" bash -c "[[ '$ALICE' == S-1-5-21-*-* && '$GROUP' == S-1-5-21-*-* ]]"
expect_err "an unknown name is AMTPROV_E_NOT_FOUND" E_NOT_FOUND "no object named 'nobody'" ad sid nobody
expect_err "another domain's name is AMTPROV_E_NOT_FOUND" E_NOT_FOUND "domain FABRIKAM is not this directory's" \
  ad sid 'FABRIKAM\alice'
expect_err "a filter in a name is only a name" E_NOT_FOUND "no object named '*'" ad sid '*'

# --- delete (R-REV-02a)
check "R-PROV-04: delete removes the account" drive "$T/d1.out" ad delete "$F"
check "the account and its SPNs are gone" \
  test -z "$(samba_ldap_get "(|(sAMAccountName=AMT1\$)(servicePrincipalName=HTTP/$F:16993))" dn)"
# A fresh TGT as the site account: no service ticket cached from before.
fresh_tgt() { kdestroy >/dev/null 2>&1; echo "$SITE_PW" | kinit amtprov-site@CONTOSO.TEST >/dev/null 2>&1; }
check "the site account gets a fresh TGT" fresh_tgt
check "no ticket for the device's SPN any more" bash -c "! kvno 'HTTP/$F:16993' >/dev/null 2>&1"
expect_err "deleting again is AMTPROV_E_NOT_FOUND" E_NOT_FOUND "no computer account" ad delete "$F"
expect_err "keyinfo without an account is AMTPROV_E_NOT_FOUND" E_NOT_FOUND "no computer account" ad keyinfo "$F"
check "no secret in the driver's log (raw, base64, hex)" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$T/drive.log"
check "no sanitizer report (driver)" no_sanitizer_reports "$T/drive.log"

# --- through amtprovd: provisioning creates the accounts, unprovisioning deletes them
make_prov_pki "$T/pki"   # oob.contoso.com; sets ROOT_HASH (lib.sh)
mkdir -p "$T/sim" "$T/e2e"
printf '{ "key_pool": 2, "devices": [ %s, %s ] }\n' "$(fleet_dev pc1 "$NET.1")" "$(fleet_dev pc2 "$NET.2")" >"$T/fleet.json"
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves two devices" wait_for 20 test -S "$T/sim/control.sock"
E2E="$T/e2e/site.json"
cat >"$E2E" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "e2e", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"},
    "ad": {"plugin": "directory-ad", "config": $(adcfg "ldaps://$IP" amtprov-site@contoso.test)}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key"},
  "amt": {"transport": "amt", "directory": "ad", "directory_container": "$OU"}
}
JSON
"$AMTPROV" -m "$E2E" db init >/dev/null
printf '%s' "$SITE_PW" | "$AMTPROV" -m "$E2E" cred set ad/site --stdin >/dev/null
for id in pc1 pc2; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$E2E" device add --from-json "$T/$id.agent.json" >/dev/null
done
expect_rc 0 "amtprovd provisions both devices with directory-ad" \
  "$AMTPROVD" -m "$E2E" -l debug --once=120 2>"$T/amtprovd.1.log"
check "both devices are PROVISIONED" bash -c "'$AMTPROV' -m '$E2E' --json device list |
  python3 -c 'import json,sys; s=[d[\"state\"] for d in json.load(sys.stdin)]; assert s==[\"PROVISIONED\"]*2, s'"
for id in pc1 pc2; do
  ID=${id^^}
  samba_ldap_get "(sAMAccountName=$ID\$)" servicePrincipalName dNSHostName msDS-SupportedEncryptionTypes >"$T/$id.ldif"
  check "R-PROV-04: amtprovd made $id's account in $OU" \
    test "$(samba_ldap_get "(sAMAccountName=$ID\$)" dn)" = "dn: CN=$ID,$OU"
  check "R-PROV-04: with the SPNs AMT uses and encryption types 28" bash -c "
    for s in HTTP/$id.contoso.com:16992 HTTP/$id.contoso.com:16993 HTTPS/$id.contoso.com:16993; do
      grep -qx \"servicePrincipalName: \$s\" '$T/$id.ldif' || exit 1; done
    grep -qx 'msDS-SupportedEncryptionTypes: 28' '$T/$id.ldif'"
done
check "a fresh TGT" fresh_tgt
check "R-PROV-04: a console gets a ticket for pc1's SPN" \
  bash -c "kvno HTTP/pc1.contoso.com:16993 >/dev/null"
check "the device unprovision is accepted" \
  bash -c "'$AMTPROV' -m '$E2E' device unprovision pc1.contoso.com | grep -q NEED_UNPROVISION"
expect_rc 0 "amtprovd unprovisions pc1" "$AMTPROVD" -m "$E2E" -l debug --once=120 2>"$T/amtprovd.2.log"
check "R-REV-02a: pc1's account and its SPNs are gone" \
  test -z "$(samba_ldap_get '(|(sAMAccountName=PC1$)(servicePrincipalName=HTTP/pc1.contoso.com:16993))' dn)"
check "a fresh TGT" fresh_tgt
check "R-REV-02a: no ticket for pc1's SPN any more" bash -c "! kvno HTTP/pc1.contoso.com:16993 >/dev/null 2>&1"
check "pc2's account stays" test -n "$(samba_ldap_get '(sAMAccountName=PC2$)' dn)"
check "no secret in amtprovd's logs (raw, base64, hex)" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$T"/amtprovd.*.log
check "no sanitizer report (amtprovd, amtsim)" no_sanitizer_reports "$T"/amtprovd.*.log "$T/amtsim.log"

finish
