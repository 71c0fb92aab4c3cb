# SPDX-License-Identifier: Apache-2.0
# A throwaway Samba AD DC on loopback for Kerberos tests: samba_dc_start provisions the
# domain $SAMBA_REALM (NetBIOS $SAMBA_DOMAIN) in $T/dc bound to $SAMBA_IP only, runs its KDC
# (stopped by lib.sh's trap through PIDS), writes a client krb5.conf and exports
# KRB5_CONFIG and KRB5CCNAME. SAM=(-H sam.ldb) is for samba-tool calls on the database.
# The caller sources lib.sh first and sets SAMBA_IP, SAMBA_REALM, SAMBA_DOMAIN; @p $1 is an
# extra [domain_realm] DNS suffix mapped to the realm (e.g. ".contoso.com").
export PATH="$PATH:/usr/sbin"

samba_dc_start() {
  local suffix=$1 d="$T/dc"
  mkdir -p "$d/run"
  samba-tool domain provision --targetdir="$d" --realm="$SAMBA_REALM" --domain="$SAMBA_DOMAIN" \
    --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass='Adm1n!Passw0rd' \
    --host-name=dc1 --host-ip="$SAMBA_IP" \
    --option="interfaces = $SAMBA_IP/8" --option="bind interfaces only = yes" \
    --option="server services = kdc" \
    --option="pid directory = $d/run" --option="ncalrpc dir = $d/run/ncalrpc" \
    --option="winbindd socket directory = $d/run/winbindd" \
    --option="ntp signd socket directory = $d/run/ntp_signd" \
    --option="log file = $d/log.%m" >"$T/provision.log" 2>&1 ||
    { tail -20 "$T/provision.log"; return 1; }
  SAM=(-H "$d/private/sam.ldb")
  samba -i -M single -s "$d/etc/smb.conf" --maximum-runtime=900 >"$T/samba.out" 2>&1 &
  PIDS+=("$!")
  export KRB5_CONFIG="$T/krb5.conf" KRB5CCNAME="FILE:$T/cc"
  cat >"$KRB5_CONFIG" <<EOF2
[libdefaults]
  default_realm = $SAMBA_REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
[realms]
  $SAMBA_REALM = {
    kdc = $SAMBA_IP
  }
[domain_realm]
  $suffix = $SAMBA_REALM
EOF2
}

# samba_sid NAME: the objectSid of a user, group or computer.
samba_sid() {
  ldbsearch "${SAM[@]}" "(sAMAccountName=$1)" objectSid 2>/dev/null |
    sed -n 's/^objectSid: //p' | head -1
}
