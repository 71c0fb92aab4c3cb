#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim's Kerberos endpoints (HTTP Negotiate, MS-WSTEP 3.1.1.1.1) against a Samba AD DC,
# as AD CS runs against Active Directory: a throwaway domain on loopback, the site account
# and a service account holding the SPN HTTP/<host> (its keytab exported with samba-tool),
# tickets from Samba's KDC. The checks are those of test_adcssim_kerberos.sh
# (adcssim_krb_lib.sh).
TEST_NAME=adcssim_kerberos_samba
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_krb_lib.sh"

need_tools samba samba-tool kinit klist

claim_net
IP="$NET.$((($$ & 63) + 1))"
D="$T/dc"
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
  --option="log file = $D/log.%m" >"$T/provision.log" 2>&1 ||
  { tail -20 "$T/provision.log"; exit 1; }
SAM=(-H "$D/private/sam.ldb")
samba-tool user create sccm-site 'Site-Secret-1' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create stranger 'Stranger-3x!' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool user create adcs-http 'Svc-Secret-9!x' "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool spn add "HTTP/$HOST" adcs-http "${SAM[@]}" >>"$T/provision.log" 2>&1
samba-tool domain exportkeytab "$T/http.keytab" --principal="HTTP/$HOST" \
  -s "$D/etc/smb.conf" >>"$T/provision.log" 2>&1
check "the service account's keytab for HTTP/$HOST is exported" \
  bash -c "klist -k '$T/http.keytab' | grep -q 'HTTP/$HOST@$REALM'"
chmod 600 "$T/http.keytab"
samba -i -M single -s "$D/etc/smb.conf" --maximum-runtime=900 >"$T/samba.out" 2>&1 &
PIDS+=("$!")

export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"
cat >"$KRB5_CONFIG" <<EOF2
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
[realms]
  $REALM = {
    kdc = $IP
  }
EOF2
check "Samba's KDC answers" wait_for 60 bash -c "exec 3<>/dev/tcp/$IP/88"
adcssim_kerberos_checks "$T/http.keytab"

finish
