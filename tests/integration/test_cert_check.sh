#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Provisioning-certificate preflight and import as an admin meets them (R-PC-01..08): a CA
# built with the openssl command, a good certificate (exit 0) and bad ones, each failing
# one check (exit 1, the check named with expected and actual), --json, device checks, and
# `cert import` refusing a bad certificate and accepting a good one.
TEST_NAME=cert_check
. "$(dirname "$0")/lib.sh"

O="$T/out"; E="$T/err"
P="$T/pki"; mkdir -p "$P"
SP=oob.contoso.com
NOW=$(date +%s)

# ca NAME SUBJECT [ISSUER] [DIGEST] [BITS]: a CA certificate (self-signed without ISSUER).
ca() {
  local n=$1 subj=$2 iss=${3:-} dg=${4:-sha256} bits=${5:-2048}
  openssl genrsa -out "$P/$n.key" "$bits" 2>/dev/null
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$P/$n.ext"
  if [ -z "$iss" ]; then
    openssl req -x509 -new -key "$P/$n.key" -subj "$subj" -days 3650 "-$dg" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -out "$P/$n.pem" 2>/dev/null
  else
    openssl req -new -key "$P/$n.key" -subj "$subj" -out "$P/$n.csr" 2>/dev/null
    openssl x509 -req -in "$P/$n.csr" -CA "$P/$iss.pem" -CAkey "$P/$iss.key" -CAcreateserial \
      -days 1825 "-$dg" -extfile "$P/$n.ext" -out "$P/$n.pem" 2>/dev/null
  fi
}
# leaf NAME SUBJECT EKU [DAYS] [DIGEST] [KEYSPEC]: a leaf issued by "inter".
leaf() {
  local n=$1 subj=$2 eku=$3 days=${4:-365} dg=${5:-sha256} kspec=${6:-rsa:2048}
  openssl req -new -newkey "$kspec" -nodes -keyout "$P/$n.key" -subj "$subj" -out "$P/$n.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$eku" >"$P/$n.ext"
  openssl x509 -req -in "$P/$n.csr" -CA "$P/inter.pem" -CAkey "$P/inter.key" -CAcreateserial \
    -days "$days" "-$dg" -extfile "$P/$n.ext" -out "$P/$n.crt" 2>/dev/null
  cat "$P/$n.crt" "$P/inter.pem" "$P/root.pem" >"$P/$n.pem"
}

ca root "/CN=Contoso Test Root"
ca inter "/CN=Contoso Issuing CA" root
AMT_EKU="serverAuth,2.16.840.1.113741.1.2.3"
leaf good "/CN=$SP" "$AMT_EKU"
leaf nooid "/CN=$SP" "serverAuth"
leaf ou "/OU=Intel(R) Client Setup Certificate/CN=$SP" "serverAuth"
leaf noserver "/CN=$SP" "clientAuth,2.16.840.1.113741.1.2.3"
leaf wrongcn "/CN=other.contoso.com" "$AMT_EKU"
leaf sha1 "/CN=$SP" "$AMT_EKU" 365 sha1
leaf soon "/CN=$SP" "$AMT_EKU" 10
leaf ec "/CN=$SP" "$AMT_EKU" 365 sha256 ec -pkeyopt ec_paramgen_curve:P-256 2>/dev/null || true
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ec.key" \
  -subj "/CN=$SP" -out "$P/ec.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$AMT_EKU" >"$P/ec.ext"
openssl x509 -req -in "$P/ec.csr" -CA "$P/inter.pem" -CAkey "$P/inter.key" -CAcreateserial \
  -days 365 -sha256 -extfile "$P/ec.ext" -out "$P/ec.crt" 2>/dev/null
cat "$P/ec.crt" "$P/inter.pem" "$P/root.pem" >"$P/ec.pem"
# out of order and missing intermediate
cat "$P/good.crt" "$P/root.pem" "$P/inter.pem" >"$P/unordered.pem"
cat "$P/good.crt" "$P/root.pem" >"$P/nointer.pem"
openssl genrsa -out "$P/other.key" 2048 2>/dev/null

make_site
M="$T/site/site.json"
ck() { run_cli "$O" "$E" -m "$M" cert check "$@"; }

expect_rc 0 "a good certificate passes every check (exit 0)" ck --cert "$P/good.pem" --key "$P/good.key"
check "output lists PASS lines and the root thumbprints" \
  bash -c "grep -q '^PASS  eku-server-auth' '$O' && grep -q 'SHA-256  ' '$O' && grep -q 'SHA-384  ' '$O'"
ROOT256=$(openssl x509 -in "$P/root.pem" -outform DER | sha256sum | cut -d' ' -f1 | tr a-f A-F)
check "the printed SHA-256 thumbprint is the root's DER hash" grep -q "$ROOT256" "$O"
expect_rc 0 "OU instead of the OID passes (R-PC-01)" ck --cert "$P/ou.pem" --key "$P/ou.key"

# bad_case NAME CHECK-ID PATTERN ARGS...: exit 1, FAIL line for CHECK-ID, PATTERN in output.
bad_case() {
  local name=$1 id=$2 pat=$3; shift 3
  expect_rc 1 "$name: exit 1" ck "$@"
  check "$name: names $id" grep -q "^FAIL  $id " "$O"
  check "$name: expected and actual shown" bash -c "grep -q 'expected:' '$O' && grep -q -- '$pat' '$O'"
}
bad_case "no AMT OID or OU" amt-oid-or-ou "actual:   EKU: serverAuth" --cert "$P/nooid.pem" --key "$P/nooid.key"
bad_case "no serverAuth" eku-server-auth "clientAuth" --cert "$P/noserver.pem" --key "$P/noserver.key"
bad_case "CN is not the service point" cn-service-point 'CN "other.contoso.com"' --cert "$P/wrongcn.pem" --key "$P/wrongcn.key"
bad_case "SHA-1 signature" no-sha1 "signed with SHA1" --cert "$P/sha1.pem" --key "$P/sha1.key"
bad_case "ECDSA leaf" key-rsa "ECDSA" --cert "$P/ec.pem" --key "$P/ec.key"
bad_case "wrong key" key-match "does not match" --cert "$P/good.pem" --key "$P/other.key"
bad_case "chain out of order" chain-order "position 2" --cert "$P/unordered.pem" --key "$P/good.key"
bad_case "missing intermediate" chain-complete "Contoso Issuing CA" --cert "$P/nointer.pem" --key "$P/good.key"
bad_case "expired (clock moved on)" validity "expired at" --cert "$P/good.pem" --key "$P/good.key" --now $((NOW + 400 * 86400))

expect_rc 0 "10 days left is valid but warned (R-PC-06)" ck --cert "$P/soon.pem" --key "$P/soon.key"
check "10 days left: WARN with status 7211" bash -c "grep -q '^WARN  validity' '$O' && grep -q 7211 '$O'"

# --- CRL (R-PC-08)
cat >"$P/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $P/index.txt
crlnumber = $P/crlnumber
default_md = sha256
default_crl_days = 30
CNF
: >"$P/index.txt"; echo 01 >"$P/crlnumber"
openssl ca -config "$P/ca.cnf" -cert "$P/inter.pem" -keyfile "$P/inter.key" -revoke "$P/good.crt" \
  -crl_reason keyCompromise >/dev/null 2>&1
openssl ca -config "$P/ca.cnf" -cert "$P/inter.pem" -keyfile "$P/inter.key" -gencrl -out "$P/inter.crl" >/dev/null 2>&1
bad_case "revoked per CRL" revocation "keyCompromise" --cert "$P/good.pem" --key "$P/good.key" --crl "$P/inter.crl"
expect_rc 0 "a CRL that does not list the certificate passes" ck --cert "$P/ou.pem" --key "$P/ou.key" --crl "$P/inter.crl"

# --- JSON
expect_rc 1 "--json on a failing certificate exits 1" run_cli "$O" "$E" -m "$M" --json cert check --cert "$P/nooid.pem" --key "$P/nooid.key"
check "--json parses and names the failing check with both values" python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
bad=[c for c in d["checks"] if not c["ok"]]
assert not d["ok"] and [c["id"] for c in bad]==["amt-oid-or-ou"], bad
assert "2.16.840.1.113741.1.2.3" in bad[0]["expected"] and "serverAuth" in bad[0]["actual"]
assert len(d["root"]["sha384"])==96' "$O"

# --- per device (R-PC-05, R-PC-04)
printf 'sha256 %s\n' "$ROOT256" >"$P/hashes-ok"
printf '# AMT defaults\nsha256 %s\n' "$(printf x | sha256sum | cut -d' ' -f1)" >"$P/hashes-bad"
expect_rc 0 "device in the namespace with the root hash passes" ck --cert "$P/good.pem" --key "$P/good.key" \
  --device pc1.sales.contoso.com --device-hashes "$P/hashes-ok" --device-suffix sales.contoso.com
bad_case "device in another namespace" device-namespace "northwindtraders.com" --cert "$P/good.pem" --key "$P/good.key" \
  --device computer1.northwindtraders.com
bad_case "root hash not on the device" device-root-hash "none is this root" --cert "$P/good.pem" --key "$P/good.key" \
  --device pc1.contoso.com --device-hashes "$P/hashes-bad"
bad_case "trusted DNS suffix mismatch" device-dns-suffix "contoso.local" --cert "$P/good.pem" --key "$P/good.key" \
  --device pc1.contoso.com --device-suffix contoso.local
bad_case "disjoint namespace" device-disjoint-namespace "na.corp.contoso.com" --cert "$P/good.pem" --key "$P/good.key" \
  --device computer1.contoso.com --device-ad-domain na.corp.contoso.com

# --- the manifest's certificate (R-PC-07) and PKCS#12
make_site "\"provisioning_certificate\": {\"certificate\": \"$P/good.pem\", \"key\": \"$P/good.key\"}"
expect_rc 0 "cert check defaults to the manifest's certificate" run_cli "$O" "$E" -m "$M" cert check
cat "$P/root.pem" "$P/inter.pem" >"$P/cas.pem"  # bag order need not be the chain order
openssl pkcs12 -export -in "$P/good.crt" -inkey "$P/good.key" -certfile "$P/cas.pem" \
  -passout pass:s3cret -out "$P/good.p12" 2>/dev/null
printf 's3cret\n' >"$P/pw"; printf 'wrong\n' >"$P/badpw"
expect_rc 0 "PKCS#12 with its password passes" run_cli "$O" "$E" -m "$M" cert check --pkcs12 "$P/good.p12" --password-file "$P/pw"
expect_rc 1 "PKCS#12 with a wrong password fails" run_cli "$O" "$E" -m "$M" cert check --pkcs12 "$P/good.p12" --password-file "$P/badpw"
check "wrong password is said, the password is not printed" bash -c "grep -q 'password is wrong' '$E' && ! grep -q s3cret '$E' '$O'"

# --- import
make_site
expect_rc 1 "import refuses a certificate that fails a check" run_cli "$O" "$E" -m "$M" cert import --cert "$P/nooid.pem" --key "$P/nooid.key"
check "the refusal names the failing check" bash -c "grep -q 'refused' '$E' && grep -q amt-oid-or-ou '$E' && grep -q '^FAIL  amt-oid-or-ou' '$O'"
check "nothing was written on refusal" bash -c "! ls '$T/site/state/provisioning/'*.pem >/dev/null 2>&1"
expect_rc 0 "import accepts a good PEM certificate" run_cli "$O" "$E" -m "$M" cert import --cert "$P/good.pem" --key "$P/good.key"
KEYF=$(ls "$T"/site/state/provisioning/provcert-*.key 2>/dev/null | head -1)
check "the key is stored 0600" test "$(stat -c %a "$KEYF" 2>/dev/null)" = 600
check "the manifest snippet is printed" grep -q '"provisioning_certificate"' "$O"
expect_rc 0 "import from PKCS#12 under a chosen name" run_cli "$O" "$E" -m "$M" cert import --pkcs12 "$P/good.p12" \
  --password-file "$P/pw" --force-name prov2026
check "the imported chain is leaf first and checks clean" run_cli "$O" "$E" \
  -m "$M" cert check --cert "$T/site/state/provisioning/prov2026.pem" --key "$T/site/state/provisioning/prov2026.key"
expect_rc 1 "import never overwrites" run_cli "$O" "$E" -m "$M" cert import --pkcs12 "$P/good.p12" \
  --password-file "$P/pw" --force-name prov2026
expect_rc 2 "import without a certificate is a usage error" run_cli "$O" "$E" -m "$M" cert import

finish
