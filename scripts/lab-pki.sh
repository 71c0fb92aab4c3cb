# SPDX-License-Identifier: Apache-2.0
# Sourced, not run: the lab provisioning PKI that the demo, the benchmarks and the
# integration tests share (a real site buys its provisioning certificate instead).
#
# lab_prov_pki DIR [BITS] [DIGEST] [DAYS] [ROOT_CN]: in DIR, a provisioning root (root.pem,
# root.key) and a provisioning certificate for oob.contoso.com with AMT's provisioning OID
# (R-PC-01) valid DAYS days (default 365) (prov.pem, prov.key, chain.pem = leaf + root); the
# keys 0600. RSA BITS (2048) and DIGEST (sha256) throughout. The root outlives the leaf (ten
# years, or DAYS + 1 if longer) so tests that move their clock see the leaf expire first. Sets
# LAB_ROOT_HASH, the root's SHA-256 that simulated devices must hold. Returns non-zero if
# openssl fails.
lab_prov_pki() {
  local d=$1 bits=${2:-2048} md=${3:-sha256} days=${4:-365} cn=${5:-Provisioning Root}
  local root_days=$((days + 1 > 3650 ? days + 1 : 3650))
  mkdir -p "$d" &&
    openssl req -x509 -newkey "rsa:$bits" -nodes -keyout "$d/root.key" -out "$d/root.pem" \
      -subj "/CN=$cn" -days "$root_days" "-$md" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null &&
    openssl req -newkey "rsa:$bits" -nodes -keyout "$d/prov.key" -out "$d/prov.csr" \
      -subj "/CN=oob.contoso.com" 2>/dev/null &&
    printf 'extendedKeyUsage=serverAuth,2.16.840.1.113741.1.2.3\nbasicConstraints=CA:FALSE\n' >"$d/ext" &&
    openssl x509 -req -in "$d/prov.csr" -CA "$d/root.pem" -CAkey "$d/root.key" \
      -CAcreateserial -days "$days" "-$md" -extfile "$d/ext" -out "$d/prov.pem" 2>/dev/null &&
    cat "$d/prov.pem" "$d/root.pem" >"$d/chain.pem" &&
    chmod 600 "$d"/*.key || return 1
  LAB_ROOT_HASH=$(openssl x509 -in "$d/root.pem" -outform DER | sha256sum | cut -d' ' -f1)
}
