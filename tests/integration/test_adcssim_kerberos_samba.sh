#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim's Kerberos endpoints (HTTP Negotiate, MS-WSTEP 3.1.1.1.1) against a Samba AD DC,
# as AD CS runs against Active Directory: a throwaway domain on loopback, the site account
# and a service account holding the SPN HTTP/<host> (its keytab exported with samba-tool),
# tickets from Samba's KDC (samba_lib.sh). The checks are those of test_adcssim_kerberos.sh
# (adcssim_krb_lib.sh).
TEST_NAME=adcssim_kerberos_samba
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_krb_lib.sh"
source "$(dirname "$0")/samba_lib.sh"

need_tools samba samba-tool kinit klist

claim_net
IP="$NET.$((($$ & 63) + 1))"
D="$T/dc"
# Only the KDC service runs (no LDAP/SMB/DNS needed here); samba_lib.sh binds only $IP.
samba_dc_provision "$D" "$IP" kdc || exit 1
SAM=("${SAMBA_SAM[@]}")
samba-tool user create sccm-site 'Site-Secret-1' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create stranger 'Stranger-3x!' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create adcs-http 'Svc-Secret-9!x' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool spn add "HTTP/$HOST" adcs-http "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool domain exportkeytab "$T/http.keytab" --principal="HTTP/$HOST" \
  -s "$D/etc/smb.conf" >>"$T/provision.log" 2>&1
check "the service account's keytab for HTTP/$HOST is exported" \
  bash -c "klist -k '$T/http.keytab' | grep -q 'HTTP/$HOST@$REALM'"
chmod 600 "$T/http.keytab"
check "Samba's KDC answers" samba_dc_start "$D" "$IP"
export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"
samba_krb5_conf "$KRB5_CONFIG" "$IP"
adcssim_kerberos_checks "$T/http.keytab"

finish
