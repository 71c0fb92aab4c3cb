# SPDX-License-Identifier: Apache-2.0
# Shared by the tests that check 802.1X client certificates with a real FreeRADIUS and
# eapol_test (R-8021X-07): the RADIUS server's own PKI, a throwaway FreeRADIUS on loopback
# (radius/radiusd.conf.in) whose client CA and CRLs the test supplies, the client key of a
# certificate AMT holds (from amtsim's state file), and one EAP-TLS authentication.
# Source after lib.sh; needs NET (claim_net).

RADIUS_PORT=$((20000 + $$ % 20000))

# radius_tools: freeradius, eapol_test and sqlite3 are installed (scripts/install-deps.sh).
radius_tools() {
  local tool ok=0
  for tool in freeradius eapol_test sqlite3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-deps.sh)" >&2; ok=1; }
  done
  return $ok
}

# radius_pki DIR: the RADIUS server's CA (radius-ca.pem) and its certificate for
# radius.contoso.com (radius.pem, radius.key) in DIR; AMT is told to trust that CA.
radius_pki() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/radius-ca.key" -out "$d/radius-ca.pem" \
    -subj "/CN=RADIUS CA" -days 30 -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -keyout "$d/radius.key" -out "$d/radius.csr" \
    -subj "/CN=radius.contoso.com" >/dev/null 2>&1
  printf 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:radius.contoso.com\n' >"$d/radius.ext"
  openssl x509 -req -in "$d/radius.csr" -CA "$d/radius-ca.pem" -CAkey "$d/radius-ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$d/radius.ext" -out "$d/radius.pem" >/dev/null 2>&1
  chmod 600 "$d"/*.key
}

# radius_config RAD PKI: FreeRADIUS configuration in RAD listening on $NET.200:$RADIUS_PORT,
# with the server certificate from PKI; the test puts the client CA chain in
# RAD/clients-ca.pem and the CA certificates with their CRLs in RAD/cadir (radius_cadir).
radius_config() {
  local rad=$1 pki=$2
  mkdir -p "$rad/cadir"
  sed -e "s|@SERVER_KEY@|$pki/radius.key|" -e "s|@SERVER_CERT@|$pki/radius.pem|" \
      -e "s|@CLIENTS_CA@|$rad/clients-ca.pem|" -e "s|@CA_PATH@|$rad/cadir|" \
      -e "s|@LISTEN_ADDR@|$NET.200|" -e "s|@LISTEN_PORT@|$RADIUS_PORT|" \
      "$AMTPROV_SOURCE_DIR/tests/integration/radius/radiusd.conf.in" >"$rad/radiusd.conf"
  printf 'bob\tCleartext-Password := "unused"\n' >"$rad/users"
  RAD=$rad
  RAD_PKI=$pki
}

# radius_cadir PEM...: the CA path FreeRADIUS checks client certificates with (CA
# certificates and CRLs, PEM), with OpenSSL's hashed names. A new CRL needs a restart.
radius_cadir() {
  rm -f "$RAD/cadir"/*
  cp "$@" "$RAD/cadir/"
  openssl rehash "$RAD/cadir" 2>/dev/null
}

FR_PID=
radius_start() {
  freeradius -X -d "$RAD" >"$RAD/fr.log" 2>&1 &
  FR_PID=$!
  PIDS+=("$FR_PID")
  wait_for 10 grep -q "Ready to process requests" "$RAD/fr.log"
}
radius_stop() { [ -n "$FR_PID" ] && kill "$FR_PID" 2>/dev/null; wait "$FR_PID" 2>/dev/null; FR_PID=; }

# client_pair_of STATE DUMP HANDLE OUT: the certificate HANDLE of an amtsim dump (DUMP) in
# OUT.pem and its key, which AMT holds (amtsim's state file STATE), in OUT.key (0600).
client_pair_of() {
  python3 - "$@" <<'PY' && chmod 600 "$4.key"
import base64, json, subprocess, sys
state, dump, handle, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
der = base64.b64decode([c["der"] for c in json.load(open(dump))["certificates"] if c["handle"] == handle][0])
pem = subprocess.run(["openssl", "x509", "-inform", "DER"], input=der, capture_output=True).stdout
open(out + ".pem", "wb").write(pem)
pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem, capture_output=True).stdout
for k in json.load(open(state))["keys"]:
    kp = subprocess.run(["openssl", "pkey", "-pubout"], input=k["pem"].encode(), capture_output=True).stdout
    if kp == pub:
        open(out + ".key", "w").write(k["pem"])
        break
else:
    sys.exit("no key in AMT for the certificate")
PY
}

# eap_tls NAME CERT-PREFIX IDENTITY: one EAP-TLS authentication with eapol_test (log in
# RAD/et-NAME.log); exit status 0 when FreeRADIUS accepted it.
eap_tls() {
  cat >"$RAD/$1.conf" <<EOF
network={
 key_mgmt=IEEE8021X
 eapol_flags=0
 eap=TLS
 identity="$3"
 ca_cert="$RAD_PKI/radius-ca.pem"
 client_cert="$2.pem"
 private_key="$2.key"
}
EOF
  eapol_test -c "$RAD/$1.conf" -a "$NET.200" -p "$RADIUS_PORT" -A "$NET.201" -s testing123 -t 10 >"$RAD/et-$1.log" 2>&1
}
