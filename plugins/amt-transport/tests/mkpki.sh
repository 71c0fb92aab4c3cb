#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test PKI for test_amt_transport: a root CA, provisioning certificates with and without the
# AMT OID, device web-server certificates (one revoked), a CRL, and a self-signed certificate
# naming another address. Usage: mkpki.sh DIR NET (NET = "127.a.b", device addresses NET.n).
set -euo pipefail
D=$1 NET=$2
cd "$D"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 30 \
  -subj "/CN=amt-transport test root" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl x509 -in root.pem -outform DER | sha256sum | cut -d' ' -f1 >root.sha256
leaf() { # name cn extfile-lines
  local n=$1 cn=$2; shift 2
  printf '%s\n' "$@" >"$n.ext"
  q openssl req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" -subj "/CN=$cn"
  q openssl x509 -req -in "$n.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
    -out "$n.pem" -extfile "$n.ext"
  cat "$n.pem" root.pem >"$n.chain"
}
leaf prov oob.contoso.com "extendedKeyUsage=serverAuth,2.16.840.1.113741.1.2.3"
leaf nooid oob.contoso.com "extendedKeyUsage=serverAuth"
leaf man1 man1.contoso.com "extendedKeyUsage=serverAuth" \
  "subjectAltName=DNS:man1.contoso.com,IP:$NET.4"
leaf rev1 rev1.contoso.com "extendedKeyUsage=serverAuth" \
  "subjectAltName=DNS:rev1.contoso.com,IP:$NET.5"
mkdir -p ca crl
: >ca/index.txt
echo 1000 >ca/crlnumber
cat >ca.cnf <<EOC
[ca]
default_ca = d
[d]
database = ca/index.txt
crlnumber = ca/crlnumber
default_md = sha256
default_crl_days = 7
EOC
q openssl ca -config ca.cnf -revoke rev1.pem -keyfile root.key -cert root.pem
q openssl ca -config ca.cnf -gencrl -keyfile root.key -cert root.pem -out crl.pem
openssl crl -in crl.pem -outform DER -out crl/root.crl
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 30 \
  -subj "/CN=$NET.1" -addext "subjectAltName=IP:$NET.1"
