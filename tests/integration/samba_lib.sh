# SPDX-License-Identifier: Apache-2.0
# The test KDCs, for every test that needs Kerberos or Active Directory: a throwaway Samba AD
# DC on a loopback address (LDAP, LDAPS, StartTLS and its KDC), an MIT KDC, and the client
# krb5.conf. Source it after lib.sh; everything stays in the directories given, servers listen
# only on the given 127.x address and are added to PIDS, so lib.sh's trap stops them even
# when the test fails.
#
# The realm is $REALM (default CONTOSO.TEST; set it before samba_dc_provision for another),
# NetBIOS domain $SAMBA_DOMAIN, administrator password $SAMBA_ADMIN_PW.
#   need_tools TOOL...                   every tool must be installed, or the test exits
#   samba_dc_provision DIR IP SERVICES   the domain in DIR (a copy of one made once per build
#                                        tree) serving SERVICES ("kdc" or "ldap kdc"); with
#                                        ldap, DIR/tls/ca.pem is the CA of the DC's certificate
#                                        (DNS dc1.<realm> and IP SANs). Offline changes go
#                                        through SAMBA_SAM (-H DIR/private/sam.ldb); its base DN
#                                        is SAMBA_BASE_DN. Log: DIR/provision.log
#   samba_dc_start DIR IP                start it and wait for the KDC (and LDAPS if served)
#   krb5_conf FILE KDC [SUFFIX...]       a client krb5.conf for $REALM at KDC (host[:port]),
#                                        over TCP, no DNS; DNS SUFFIXes (default .<realm>)
#                                        map to the realm
#   samba_sid NAME                       the objectSid of a user, group or computer (offline)
#   samba_delegate_ou OU USER            give USER the rights docs/directory-ad.md lists for
#                                        directory-ad's site account, on OU only (offline)
#   samba_ldap_get FILTER ATTRS...       search the domain over LDAPS as the administrator
#                                        (after samba_dc_start with ldap), no referrals
#   samba_kdc_start HOST                 for adcssim: a DC serving only its KDC in $T/krb/dc with
#   mit_kdc_start HOST                   ... or an MIT KDC on $IP:8888 in $T/krb: the principals
#                                        sccm-site (password Site-Secret-1), stranger
#                                        (Stranger-3x!) and HTTP/HOST, whose keys are in
#                                        $K/http.keytab (K=$T/krb); export KRB5_CONFIG and
#                                        KRB5CCNAME ($K/cc)
REALM=${REALM:-CONTOSO.TEST}
SAMBA_DOMAIN=CONTOSO
SAMBA_ADMIN_PW='Adm1n!Passw0rd'
samba_base_dn() { local r=${REALM,,}; echo "DC=${r//./,DC=}"; }
SAMBA_BASE_DN=$(samba_base_dn)
export PATH="$PATH:/usr/sbin"

need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps.sh)"; exit 1; }
  done
}

# Provisioning a domain costs some 7 s of CPU (samba-tool, Python), and every test of a realm
# would make the same one: it is made once per realm and Samba version into a template under
# the build tree, which each test copies. A domain moves with its smb.conf (the only file that
# names its directory and address); the services, the address and TLS are set there too.
# Change SAMBA_TEMPLATE_VERSION with the provisioning below, so that no old template is used.
SAMBA_TEMPLATES="$AMTPROV_BUILD_DIR/test-cache/samba"
SAMBA_TEMPLATE_VERSION=1
samba_template() {
  local t tmp
  t=$SAMBA_TEMPLATES/v$SAMBA_TEMPLATE_VERSION-$REALM-$(samba --version | tr -c 'A-Za-z0-9.\n' _)
  [ -f "$t/ready" ] && { echo "$t"; return 0; }
  mkdir -p "$SAMBA_TEMPLATES"
  exec 8>"$t.lock"
  flock -w 600 8 || { echo "samba_lib: no lock on $t.lock" >&2; return 1; }
  if [ ! -f "$t/ready" ]; then
    tmp=$(mktemp -d "$t.tmp-XXXXXX")
    mkdir -p "$tmp/run"
    if ! samba-tool domain provision --targetdir="$tmp" --realm="$REALM" \
        --domain="$SAMBA_DOMAIN" --server-role=dc --dns-backend=NONE --use-rfc2307 \
        --adminpass="$SAMBA_ADMIN_PW" --host-name=dc1 --host-ip=127.0.0.2 \
        --option="interfaces = 127.0.0.2/8" --option="bind interfaces only = yes" \
        --option="server services = kdc" \
        --option="pid directory = $tmp/run" --option="ncalrpc dir = $tmp/run/ncalrpc" \
        --option="winbindd socket directory = $tmp/run/winbindd" \
        --option="ntp signd socket directory = $tmp/run/ntp_signd" \
        --option="log file = $tmp/log.%m" >"$tmp/provision.log" 2>&1 ||
      # Tests must not depend on dates or on Samba's complexity rules for their passwords.
      ! samba-tool domain passwordsettings set -H "$tmp/private/sam.ldb" --complexity=off \
        --max-pwd-age=0 --min-pwd-age=0 >>"$tmp/provision.log" 2>&1; then
      tail -20 "$tmp/provision.log" >&2
      rm -rf "$tmp"
      exec 8>&-
      return 1
    fi
    echo "$tmp" >"$tmp/ready"          # the directory its smb.conf names
    rm -rf "$t" && mv "$tmp" "$t"
  fi
  exec 8>&-
  echo "$t"
}

samba_dc_provision() {
  local d=$1 ip=$2 services=$3 t from
  SAMBA_BASE_DN=$(samba_base_dn)
  t=$(samba_template) || return 1
  from=$(cat "$t/ready")
  mkdir -p "$d"
  cp -a "$t/." "$d/" && rm -f "$d/ready" "$d"/log.* || return 1
  sed -i -e "s|$from|$d|g" -e "s|^\(\s*interfaces = \).*|\1$ip/8|" \
    -e "s|^\(\s*server services = \).*|\1$services|" "$d/etc/smb.conf"
  if [[ " $services " == *" ldap "* ]]; then
    mkdir -p "$d/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Test CA $REALM" \
      -keyout "$d/tls/ca.key" -out "$d/tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.${REALM,,}" \
      -keyout "$d/tls/dc.key" -out "$d/tls/dc.csr" 2>/dev/null
    printf 'subjectAltName=DNS:dc1.%s,IP:%s\nextendedKeyUsage=serverAuth\n' \
      "${REALM,,}" "$ip" >"$d/tls/ext"
    openssl x509 -req -in "$d/tls/dc.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" \
      -CAcreateserial -days 30 -extfile "$d/tls/ext" -out "$d/tls/dc.pem" 2>/dev/null
    chmod 600 "$d/tls/dc.key" "$d/tls/ca.key"
    sed -i "/^\[global\]/a\\\ttls enabled = yes\n\ttls keyfile = $d/tls/dc.key\n\ttls certfile = $d/tls/dc.pem\n\ttls cafile = $d/tls/ca.pem" \
      "$d/etc/smb.conf"
  fi
  grep -q "interfaces = $ip/8" "$d/etc/smb.conf" && ! grep -q "$from" "$d/etc/smb.conf" ||
    { echo "samba_lib: cannot move the domain to $d" >&2; return 1; }
  SAMBA_SAM=(-H "$d/private/sam.ldb")
  SAMBA_DC_DIR=$d SAMBA_DC_IP=$ip
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

krb5_conf() {
  local f=$1 kdc=$2 s
  shift 2
  [ $# -gt 0 ] || set -- ".${REALM,,}"
  cat >"$f" <<EOF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
[realms]
  $REALM = {
    kdc = $kdc
  }
[domain_realm]
EOF
  for s in "$@"; do printf '  %s = %s\n' "$s" "$REALM" >>"$f"; done
}

samba_sid() {
  ldbsearch "${SAMBA_SAM[@]}" "(sAMAccountName=$1)" objectSid 2>/dev/null |
    sed -n 's/^objectSid: //p' | head -1
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
    -D "Administrator@${REALM,,}" -w "$SAMBA_ADMIN_PW" -b "$SAMBA_BASE_DN" "$1" "${@:2}" \
    2>/dev/null | grep -v '^# ref'
}

# The KDC side of adcssim's Kerberos tests (see the list above); IP is the test's address.
samba_kdc_start() {
  local host=$1
  K="$T/krb"
  mkdir -p "$K"
  samba_dc_provision "$K/dc" "$IP" kdc || exit 1
  {
    samba-tool user create sccm-site 'Site-Secret-1' "${SAMBA_SAM[@]}"
    samba-tool user create stranger 'Stranger-3x!' "${SAMBA_SAM[@]}"
    samba-tool user create adcs-http 'Svc-Secret-9!x' "${SAMBA_SAM[@]}"
    samba-tool spn add "HTTP/$host" adcs-http "${SAMBA_SAM[@]}"
    samba-tool domain exportkeytab "$K/http.keytab" --principal="HTTP/$host" \
      -s "$K/dc/etc/smb.conf"
  } >>"$K/dc/provision.log" 2>&1
  check "the service account's keytab for HTTP/$host is exported" \
    bash -c "klist -k '$K/http.keytab' | grep -q 'HTTP/$host@$REALM'"
  chmod 600 "$K/http.keytab"
  export KRB5_CONFIG="$K/krb5.conf" KRB5CCNAME="FILE:$K/cc"
  krb5_conf "$KRB5_CONFIG" "$IP"
  check "Samba's KDC answers" samba_dc_start "$K/dc" "$IP"
}

mit_kdc_start() {
  local host=$1
  K="$T/krb"
  mkdir -p "$K"
  export KRB5_KDC_PROFILE="$K/kdc.conf" KRB5_CONFIG="$K/krb5.conf" KRB5CCNAME="FILE:$K/cc"
  krb5_conf "$KRB5_CONFIG" "$IP:8888"
  cat >"$KRB5_KDC_PROFILE" <<EOF
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
EOF
  : >"$K/kadm5.acl"
  kdb5_util create -s -r "$REALM" -P "master-$$" >"$K/create.log" 2>&1 ||
    { cat "$K/create.log"; exit 1; }
  kadmin.local -r "$REALM" -q "addprinc -pw Site-Secret-1 sccm-site" >/dev/null 2>&1
  kadmin.local -r "$REALM" -q "addprinc -pw Stranger-3x! stranger" >/dev/null 2>&1
  kadmin.local -r "$REALM" -q "addprinc -randkey HTTP/$host" >/dev/null 2>&1
  kadmin.local -r "$REALM" -q "ktadd -k $K/http.keytab HTTP/$host" >/dev/null 2>&1
  check "the HTTP service key is in the keytab" test -s "$K/http.keytab"
  chmod 600 "$K/http.keytab"
  krb5kdc -n -r "$REALM" -P "$K/kdc.pid" >"$K/kdc.out" 2>&1 &
  PIDS+=("$!")
  check "the MIT KDC answers" wait_for 60 bash -c "exec 3<>/dev/tcp/$IP/8888"
}
