#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim's Kerberos endpoints (MS-WSTEP 3.1.1.1.1, HTTP Negotiate / SPNEGO) against a real
# MIT KDC run by the test on loopback: the server holds a keytab for HTTP/<host>, curl
# authenticates with a ticket from kinit. CEP lists the Kerberos CES (clientAuthentication
# 2); GetPolicies and an Issue through the Kerberos CES succeed for the site account (R-CA-04
# rights apply as with the other modes); no ticket or a ticket for an unknown principal gets
# 401 Negotiate.
TEST_NAME=adcssim_kerberos
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_krb_lib.sh"

need_tools krb5kdc kdb5_util kadmin.local kinit

claim_net
IP="$NET.$((($$ & 63) + 1))"
K="$T/krb"
mkdir -p "$K"
export KRB5_CONFIG="$K/krb5.conf" KRB5_KDC_PROFILE="$K/kdc.conf" KRB5CCNAME="FILE:$K/cc"
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
    kdc = $IP:8888
  }
[domain_realm]
  .contoso.test = $REALM
EOF2
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

adcssim_kerberos_checks "$K/http.keytab"

finish
