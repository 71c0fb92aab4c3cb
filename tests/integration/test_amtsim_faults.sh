#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# amtsim fault injection over the wire, with curl: a dropped connection on the Nth request,
# correct Digest credentials refused on the Nth authenticated request, per-call latency,
# CommitChanges failing; then fleet-wide faults (top-level "faults" and "defaults"."faults"):
# a drop and a hung request on devices that have no faults of their own.
TEST_NAME=amtsim_faults
source "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
[ -x "$AMTSIM" ] || { echo "amtsim not built: $AMTSIM"; exit 1; }

# Our own loopback /24 (claim_net, lib.sh).
P=$$
claim_net
A_DROP="$NET.$(((P & 63) + 1))"
A_AUTH="$NET.$(((P & 63) + 65))"
A_SLOW="$NET.$(((P & 63) + 129))"

cat >"$T/fleet.json" <<JSON
{
  "key_pool": 1, "faults": { "seed": 7 },
  "devices": [
    { "id": "drop", "address": "$A_DROP", "provisioning_state": "post", "control_mode": "acm",
      "admin_password": "P@ssw0rd1", "faults": { "drop_nth": 3 } },
    { "id": "auth", "address": "$A_AUTH", "provisioning_state": "post", "control_mode": "acm",
      "admin_password": "P@ssw0rd1", "faults": { "digest_fail_nth": 1 } },
    { "id": "slow", "address": "$A_SLOW", "provisioning_state": "post", "control_mode": "acm",
      "admin_password": "P@ssw0rd1", "faults": { "latency_ms": 300, "commit_fail": 38 } }
  ]
}
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/state" 2>"$T/serve.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
SOCK="$T/state/control.sock"
if ! wait_for 30 test -S "$SOCK"; then
  cat "$T/serve.log"; fail "amtsim serve starts"; finish; exit 1
fi
pass "amtsim serve starts"
for d in drop auth slow; do
  "$AMTSIM" dump --control "$SOCK" $d | python3 -c 'import json,sys; print(json.load(sys.stdin)["self_cert_pem"])' >"$T/$d.pem"
done
HDR='<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header>'
AMT=http://intel.com/wbem/wscim/1/amt-schema/1
printf '%s<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><w:ResourceURI>%s/AMT_GeneralSettings</w:ResourceURI><a:MessageID>1</a:MessageID></Header><Body/></Envelope>' "$HDR" "$AMT" >"$T/get.xml"
printf '%s<a:Action>%s/AMT_SetupAndConfigurationService/CommitChanges</a:Action><w:ResourceURI>%s/AMT_SetupAndConfigurationService</w:ResourceURI><a:MessageID>1</a:MessageID></Header><Body><h:CommitChanges_INPUT xmlns:h="%s/AMT_SetupAndConfigurationService"/></Body></Envelope>' "$HDR" "$AMT" "$AMT" "$AMT" >"$T/commit.xml"

# wsman DEVICE ADDR FILE: one curl run (Digest: challenge round + authenticated request).
wsman() {
  curl -sS --max-time 20 --cacert "$T/$1.pem" --digest -u admin:P@ssw0rd1 \
    -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$3" \
    -o "$T/b" -w '%{http_code} %{time_total}\n' "https://$2:16993/wsman" 2>"$T/err"
}

# drop_nth=3: curl's 1st run uses requests 1 (401) and 2; the 2nd run's first request is #3.
check "requests 1-2 answered" bash -c "$(declare -f wsman); T='$T'; wsman drop $A_DROP '$T/get.xml' | grep -q '^200 '"
wsman drop "$A_DROP" "$T/get.xml" >"$T/out"
check "request 3: connection closed without an answer" grep -q 'Empty reply\|reset\|closed' "$T/err"
check "request 4 on: answered again" bash -c "$(declare -f wsman); T='$T'; wsman drop $A_DROP '$T/get.xml' | grep -q '^200 '"

# digest_fail_nth=1: the first correctly authenticated request is refused, later ones pass.
check "correct credentials refused once (401)" bash -c "$(declare -f wsman); T='$T'; wsman auth $A_AUTH '$T/get.xml' | grep -q '^401 '"
check "then accepted" bash -c "$(declare -f wsman); T='$T'; wsman auth $A_AUTH '$T/get.xml' | grep -q '^200 '"

# latency_ms=300 on each of the two round trips.
wsman slow "$A_SLOW" "$T/get.xml" >"$T/slow"
check "latency: 200 after >= 0.6 s (two delayed round trips)" \
  python3 -c 'import sys; c,t=open(sys.argv[1]).read().split(); assert c=="200" and float(t)>=0.6, (c,t)' "$T/slow"
wsman slow "$A_SLOW" "$T/commit.xml" >/dev/null
check "CommitChanges fails with the injected ReturnValue 38" grep -q '<h:ReturnValue>38</h:ReturnValue>' "$T/b"

"$AMTSIM" dump --control "$SOCK" drop >"$T/drop.json"
check "audit records the dropped request" grep -q 'fault injection: connection from .* dropped on request 3' "$T/drop.json"

kill -TERM "$SIM_PID"
wait "$SIM_PID"
check "serve exits cleanly on SIGTERM" test $? -eq 0
check "no sanitizer reports" no_sanitizer_reports "$T/serve.log"

# Fleet-wide: every device drops its 3rd request (top level) and leaves its 5th unanswered
# ("defaults"."faults"); "keep" overrides the drop with its own faults object.
A_FW="$NET.$(((P & 31) + 193))"
A_KEEP="$NET.$(((P & 15) + 226))"
cat >"$T/fleet2.json" <<JSON
{
  "key_pool": 1, "faults": { "seed": 3, "drop_nth": 3 },
  "defaults": { "faults": { "hang_nth": 5 } },
  "devices": [
    { "id": "fw", "address": "$A_FW", "provisioning_state": "post", "control_mode": "acm",
      "admin_password": "P@ssw0rd1" },
    { "id": "keep", "address": "$A_KEEP", "provisioning_state": "post", "control_mode": "acm",
      "admin_password": "P@ssw0rd1", "faults": { "drop_nth": 0 } }
  ]
}
JSON
"$AMTSIM" serve --fleet "$T/fleet2.json" --state-dir "$T/state2" 2>"$T/serve2.log" &
SIM_PID=$!
PIDS+=("$SIM_PID")
SOCK="$T/state2/control.sock"
check "amtsim serves the fleet with fleet-wide faults" wait_for 30 test -S "$SOCK"
for d in fw keep; do
  "$AMTSIM" dump --control "$SOCK" $d | python3 -c 'import json,sys; print(json.load(sys.stdin)["self_cert_pem"])' >"$T/$d.pem"
done
check "fleet-wide drop_nth: requests 1-2 answered" bash -c "$(declare -f wsman); T='$T'; wsman fw $A_FW '$T/get.xml' | grep -q '^200 '"
wsman fw "$A_FW" "$T/get.xml" >"$T/out"
check "fleet-wide drop_nth: request 3 closed without an answer" grep -q 'Empty reply\|reset\|closed' "$T/err"
check "a device's own faults override the fleet's drop_nth" bash -c "
  $(declare -f wsman); T='$T'; wsman keep $A_KEEP '$T/get.xml' | grep -q '^200 ' && wsman keep $A_KEEP '$T/get.xml' | grep -q '^200 '"
# keep: requests 1-4 answered; defaults.faults hang_nth=5 leaves the 5th unanswered.
start=$(date +%s)
curl -sS --max-time 3 --cacert "$T/keep.pem" --digest -u admin:P@ssw0rd1 \
  -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$T/get.xml" \
  -o /dev/null "https://$A_KEEP:16993/wsman" 2>"$T/err"
rc=$?
check "defaults.faults hang_nth: request 5 gets no answer until the client gives up (curl 28)" \
  test "$rc" -eq 28 -a $(( $(date +%s) - start )) -ge 2
"$AMTSIM" dump --control "$SOCK" fw >"$T/fw.json"
"$AMTSIM" dump --control "$SOCK" keep >"$T/keep.json"
check "audit records the fleet-wide drop" grep -q 'dropped on request 3' "$T/fw.json"
check "audit records the hang" grep -q 'request 5 from .* left unanswered (hang)' "$T/keep.json"
check "the device with its own faults never dropped" bash -c "! grep -q 'dropped on request' '$T/keep.json'"
kill -TERM "$SIM_PID"
wait "$SIM_PID"
check "serve exits cleanly on SIGTERM with a hung connection open" test $? -eq 0
check "no sanitizer reports (fleet-wide faults)" no_sanitizer_reports "$T/serve2.log"
finish
