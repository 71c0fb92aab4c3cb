#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# wsman-messages conformance: every request envelope Intel's
# @device-management-toolkit/wsman-messages@5.14.1 (npm) generates for the second-stage
# classes is posted to amtsim over TLS with Digest, and each answer is checked (response
# action, ReturnValue, or the documented AMT fault). Includes a full certificate flow:
# GenerateKeyPair -> null-signed CSR -> GeneratePKCS10RequestEx -> test CA -> AddCertificate
# -> TLSCredentialContext Create -> TLSSettingData Put -> CommitChanges -> new server cert.
# The package is installed with npm into the test's temp dir; no registry = failure, not skip.
TEST_NAME=amtsim_wsman_messages
source "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
SCRIPT="$AMTPROV_SOURCE_DIR/sim/tests/wsman_messages_conformance.js"
[ -x "$AMTSIM" ] || { echo "amtsim not built: $AMTSIM"; exit 1; }
for tool in node npm openssl; do
  command -v "$tool" >/dev/null || { fail "$tool is installed"; finish; exit 1; }
done

# ---- the library, from the npm registry (cache inside the temp dir) ---------------------------
mkdir -p "$T/npm"
if ! (cd "$T/npm" && timeout 180 npm install --no-audit --no-fund --silent \
      --cache "$T/npm/.cache" "@device-management-toolkit/wsman-messages@5.14.1" >"$T/npm.log" 2>&1); then
  cat "$T/npm.log"
  fail "npm install @device-management-toolkit/wsman-messages@5.14.1 (registry unreachable?)"
  finish
  exit 1
fi
pass "npm install @device-management-toolkit/wsman-messages@5.14.1"

# Our own loopback /24 (claim_net, lib.sh).
claim_net
ADDR="$NET.1"

# A test CA: it issues the AMT web-server certificate from the CSR the device signs.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=amtsim wsman test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null

KEYGEN_MS=120
cat >"$T/fleet.json" <<JSON
{
  "key_pool": 3, "keygen_latency_ms": $KEYGEN_MS,
  "devices": [
    { "id": "pc7", "address": "$ADDR", "amt_version": "12.0.45",
      "provisioning_state": "post", "control_mode": "acm", "admin_password": "P@ssw0rd1",
      "host_name": "pc7", "domain_name": "contoso.com" }
  ]
}
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/state" 2>"$T/serve.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
SOCK="$T/state/control.sock"
if ! wait_for 60 test -S "$SOCK"; then
  cat "$T/serve.log"
  fail "amtsim serve starts"
  finish
  exit 1
fi
pass "amtsim serve starts"
"$AMTSIM" dump --control "$SOCK" pc7 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["self_cert_pem"])' >"$T/pc7.pem"

# ---- the conformance run -------------------------------------------------------------------
KEYGEN_MS=$KEYGEN_MS NODE_PATH="$T/npm/node_modules" timeout 300 \
  node "$SCRIPT" "$ADDR" 16993 admin 'P@ssw0rd1' "$T/pc7.pem" "$T" >"$T/conformance.out" 2>&1
RC=$?
cat "$T/conformance.out"
check "every wsman-messages envelope answered as AMT does (node exit $RC)" test "$RC" -eq 0
check "the conformance run checked something" grep -q '^wsman-messages conformance: [1-9][0-9]* passed, 0 failed' "$T/conformance.out"

"$AMTSIM" dump --control "$SOCK" pc7 >"$T/pc7.json"
check "audit: TLS switched to the installed certificate at CommitChanges" grep -q 'TLS: enabled, certificate handle' "$T/pc7.json"
check "audit: unprovision ran last" grep -q 'unprovision: state pre' "$T/pc7.json"

kill -TERM "$SIM_PID"
wait "$SIM_PID"
check "serve exits cleanly on SIGTERM" test $? -eq 0
check "no sanitizer reports" no_sanitizer_reports "$T/serve.log"
finish
