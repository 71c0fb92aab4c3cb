# SPDX-License-Identifier: Apache-2.0
# A throwaway Samba AD DC on a loopback address, for the tests that need real Active
# Directory (LDAP, LDAPS, StartTLS) or its KDC. Source it after lib.sh; everything stays in
# the given directory, the DC listens only on the given 127.x address, and samba is added to
# PIDS so lib.sh's trap stops it even when the test fails.
#
#   samba_dc_provision DIR IP SERVICES   provision the domain CONTOSO.TEST (NetBIOS CONTOSO,
#                                        admin password $SAMBA_ADMIN_PW) serving SERVICES
#                                        ("kdc" or "ldap kdc"); with ldap, DIR/tls/ca.pem is
#                                        the CA of the DC's certificate (DNS dc1.contoso.test
#                                        and IP SANs). Offline changes go through SAMBA_SAM.
#   samba_dc_start DIR IP                start it and wait for the KDC (and LDAPS if served)
#   samba_krb5_conf FILE IP              a client krb5.conf for the realm at IP
#   samba_delegate_ou OU USER            give USER the rights docs/directory-ad.md lists for
#                                        directory-ad's site account, on OU only (offline)
#   samba_ldap_get FILTER ATTRS...       search the domain over LDAPS as the administrator
#                                        (after samba_dc_start with ldap), no referrals
SAMBA_REALM=CONTOSO.TEST
SAMBA_BASE_DN=DC=contoso,DC=test
SAMBA_DOMAIN=CONTOSO
SAMBA_ADMIN_PW='Adm1n!Passw0rd'
export PATH="$PATH:/usr/sbin"

samba_dc_provision() {
  local d=$1 ip=$2 services=$3 tls=()
  mkdir -p "$d/run"
  if [[ " $services " == *" ldap "* ]]; then
    mkdir -p "$d/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Test CA $SAMBA_REALM" \
      -keyout "$d/tls/ca.key" -out "$d/tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.${SAMBA_REALM,,}" \
      -keyout "$d/tls/dc.key" -out "$d/tls/dc.csr" 2>/dev/null
    printf 'subjectAltName=DNS:dc1.%s,IP:%s\nextendedKeyUsage=serverAuth\n' \
      "${SAMBA_REALM,,}" "$ip" >"$d/tls/ext"
    openssl x509 -req -in "$d/tls/dc.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" \
      -CAcreateserial -days 30 -extfile "$d/tls/ext" -out "$d/tls/dc.pem" 2>/dev/null
    chmod 600 "$d/tls/dc.key" "$d/tls/ca.key"
    tls=(--option="tls enabled = yes" --option="tls keyfile = $d/tls/dc.key"
         --option="tls certfile = $d/tls/dc.pem" --option="tls cafile = $d/tls/ca.pem")
  fi
  samba-tool domain provision --targetdir="$d" --realm="$SAMBA_REALM" --domain="$SAMBA_DOMAIN" \
    --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$SAMBA_ADMIN_PW" \
    --host-name=dc1 --host-ip="$ip" \
    --option="interfaces = $ip/8" --option="bind interfaces only = yes" \
    --option="server services = $services" \
    --option="pid directory = $d/run" --option="ncalrpc dir = $d/run/ncalrpc" \
    --option="winbindd socket directory = $d/run/winbindd" \
    --option="ntp signd socket directory = $d/run/ntp_signd" \
    --option="log file = $d/log.%m" "${tls[@]}" >"$d/provision.log" 2>&1 ||
    { tail -20 "$d/provision.log"; return 1; }
  SAMBA_SAM=(-H "$d/private/sam.ldb")
  SAMBA_DC_DIR=$d SAMBA_DC_IP=$ip
  # Tests must not depend on dates or on Samba's complexity rules for their own passwords.
  samba-tool domain passwordsettings set "${SAMBA_SAM[@]}" --complexity=off \
    --max-pwd-age=0 --min-pwd-age=0 >>"$d/provision.log" 2>&1
}

samba_dc_start() {
  local d=$1 ip=$2
  samba -i -M single -s "$d/etc/smb.conf" --maximum-runtime=900 >"$d/samba.out" 2>&1 &
  PIDS+=("$!")
  wait_for 60 bash -c "exec 3<>/dev/tcp/$ip/88" || { tail -20 "$d/samba.out"; return 1; }
  if [ -f "$d/tls/ca.pem" ]; then
    wait_for 60 env LDAPCONF=/dev/null LDAPRC=/dev/null LDAPTLS_CACERT="$d/tls/ca.pem" \
      ldapsearch -x -H "ldaps://$ip" -s base -b '' dn >/dev/null ||
      { tail -20 "$d/samba.out"; return 1; }
  fi
}

samba_krb5_conf() {
  cat >"$1" <<EOF
[libdefaults]
  default_realm = $SAMBA_REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 0
[realms]
  $SAMBA_REALM = {
    kdc = $2
  }
[domain_realm]
  .${SAMBA_REALM,,} = $SAMBA_REALM
EOF
}

samba_delegate_ou() {
  local computer=bf967a86-0de6-11d0-a285-00aa003049e2 sid  # schemaIDGUID of computer
  sid=$(samba-tool user show "$2" --attributes=objectSid "${SAMBA_SAM[@]}" 2>/dev/null |
    sed -n 's/^objectSid: //p')
  [ -n "$sid" ] || return 1
  # create/delete computer objects in the OU; on those below it read/write properties,
  # extended rights (reset password), delete, read control
  samba-tool dsacl set "${SAMBA_SAM[@]}" --objectdn="$1" \
    --sddl="(OA;;CCDC;$computer;;$sid)(OA;CIIO;RPWPCRSDRC;;$computer;$sid)"
}

samba_ldap_get() {
  env LDAPCONF=/dev/null LDAPRC=/dev/null LDAPTLS_CACERT="$SAMBA_DC_DIR/tls/ca.pem" \
    ldapsearch -LLL -o ldif-wrap=no -x -H "ldaps://$SAMBA_DC_IP" \
    -D "Administrator@${SAMBA_REALM,,}" -w "$SAMBA_ADMIN_PW" -b "$SAMBA_BASE_DN" "$1" "${@:2}" \
    2>/dev/null | grep -v '^# ref'
}
