#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 17 item 11: AMT 22 deprecates SHA-256 and RSA 2048 for provisioning and management
# certificates. A mixed fleet (AMT 16 and AMT 22 on amtsim, which enforces the rule for
# AMT 22) provisions through amtprovd and ca-local with the site's default
# certificates.amt_crypto_policy: the AMT 22 device gets an RSA 3072 key made inside AMT and
# a SHA-384 certificate, the AMT 16 device keeps RSA 2048 and SHA-256 (R-WS-01, R-PROV-06).
# With the rule turned off the AMT 22 device fails with the firmware's reason, and
# `cert check --amt-version 22` warns about a chain such devices refuse (R-PC-01).
TEST_NAME=amt22_crypto_policy
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
claim_net

pki="$T/pki"
make_prov_pki "$pki" 3072 sha384   # a chain AMT 22 accepts
NEW_ROOT_HASH=$ROOT_HASH
old="$T/pki2048"
make_prov_pki "$old"               # RSA 2048, SHA-256: what most sites hold today
OLD_ROOT_HASH=$ROOT_HASH
ROOT_HASH=$NEW_ROOT_HASH

run_site() { # $1: name, $2: extra "certificates" JSON members
  local s="$T/$1"
  mkdir -p "$s/sim"
  python3 - "$s/fleet.json" "$NET" "$ROOT_HASH" "$OLD_ROOT_HASH" <<'PY'
import json, sys
path, net, root, old = sys.argv[1:5]
hashes = [{"name": "lab root", "algo": "sha256", "hash": root},
          {"name": "old root", "algo": "sha256", "hash": old}]
devs = [{"id": "pc%d" % i, "address": "%s.%d" % (net, i), "amt_version": v,
         "provisioning_state": "in", "host_name": "pc%d" % i, "domain_name": "contoso.com",
         "dhcp_domain": "contoso.com", "root_hashes": hashes}
        for i, v in ((1, "16.1.25"), (2, "22.0.10"))]
json.dump({"key_pool": 2, "keygen_latency_ms": 10, "devices": devs}, open(path, "w"))
PY
  "$AMTSIM" serve --fleet "$s/fleet.json" --state-dir "$s/sim" --quiet 2>"$s/amtsim.log" &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  wait_for 20 test -S "$s/sim/control.sock"
  cat >"$s/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "amt22", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"} $2},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"}
}
JSON
  "$AMTPROV" -m "$s/site.json" db init >/dev/null
  for id in pc1 pc2; do
    "$AMTSIM" agent --state-dir "$s/sim" --device "$id" >"$s/$id.agent.json"
    "$AMTPROV" -m "$s/site.json" device add --from-json "$s/$id.agent.json" >/dev/null
  done
  "$AMTPROVD" -m "$s/site.json" --once=300 2>"$s/amtprovd.log"
  for id in pc1 pc2; do "$AMTSIM" dump --control "$s/sim/control.sock" "$id" >"$s/$id.dump.json"; done
  kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null
}
state_of() { "$AMTPROV" -m "$T/$1/site.json" --json device show "$2.contoso.com" |
             python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
# The certificate the device's firmware holds for its TLS server (not a trusted root), as text.
cert_text() {
  python3 -c 'import json,sys; print([c["der"] for c in json.load(open(sys.argv[1]))["certificates"] if not c["trusted_root"]][-1])' \
    "$T/$1/$2.dump.json" | base64 -d | openssl x509 -inform DER -noout -text
}

# 1. The default policy.
run_site default ""
check "the AMT 16 device is provisioned" test "$(state_of default pc1)" = PROVISIONED
check "the AMT 22 device is provisioned" test "$(state_of default pc2)" = PROVISIONED
cert_text default pc1 >"$T/pc1.txt"
cert_text default pc2 >"$T/pc2.txt"
check "R-WS-01: the AMT 22 device's certificate has an RSA 3072 key" grep -q "Public-Key: (3072 bit)" "$T/pc2.txt"
check "R-WS-01: ... signed with SHA-384 (ca-local honours the request's signature_digest)" \
  grep -q "Signature Algorithm: sha384WithRSAEncryption" "$T/pc2.txt"
check "the AMT 16 device keeps RSA 2048 and SHA-256" \
  bash -c "grep -q 'Public-Key: (2048 bit)' '$T/pc1.txt' && grep -q 'sha256WithRSAEncryption' '$T/pc1.txt'"
audit_has() { python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; sys.exit(0 if any(sys.argv[2] in e["event"] for e in a) else 1)' "$@"; }
check "R-PROV-06: the AMT 22 device made its 3072-bit key itself (GenerateKeyPair)" \
  audit_has "$T/default/pc2.dump.json" "GenerateKeyPair: 3072 bits"
check "no sanitizer report" no_sanitizer_reports "$T/default/amtprovd.log" "$T/default/amtsim.log"

# 2. The rule turned off: AMT 22 refuses the 2048-bit key, and says so.
run_site off ', "amt_crypto_policy": []'
check "without the rule the AMT 16 device is still provisioned" test "$(state_of off pc1)" = PROVISIONED
check "without the rule the AMT 22 device fails" test "$(state_of off pc2)" = FAILED
check "... and the firmware refused the 2048-bit key" \
  audit_has "$T/off/pc2.dump.json" "GenerateKeyPair refused: 2048 bits"
"$AMTPROV" -m "$T/off/site.json" --json device show pc2.contoso.com >"$T/off/pc2.show.json"
python3 -c 'import json,sys; print("  reason:", json.load(open(sys.argv[1]))["last_error"])' "$T/off/pc2.show.json"
check "... with a reason that names the key generation" grep -q "GenerateKeyPair" "$T/off/pc2.show.json"

# 3. A provisioning chain of RSA 2048 and SHA-256: fine for AMT 16, a warning for AMT 22.
expect_rc 0 "R-PC-01: cert check passes the 2048/SHA-256 chain (older firmware takes it)" \
  "$AMTPROV" cert check --cert "$old/chain.pem" --key "$old/prov.key" --service-point oob.contoso.com \
  >"$T/check.out"
"$AMTPROV" cert check --cert "$old/chain.pem" --key "$old/prov.key" --service-point oob.contoso.com \
  --amt-version 22 >"$T/check22.out" 2>&1
check "cert check --amt-version 22 warns that AMT 22 devices will refuse it" \
  bash -c "grep -q 'amt22-strength' '$T/check22.out' && grep -q 'AMT 22 and later devices will refuse' '$T/check22.out'"
"$AMTPROV" cert check --cert "$pki/chain.pem" --key "$pki/prov.key" --service-point oob.contoso.com \
  --amt-version 22 >"$T/check22ok.out" 2>&1
check "... and does not warn about a 3072/SHA-384 chain" bash -c "! grep -q 'will refuse' '$T/check22ok.out'"

finish
