#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hostile devices (R-PROV-13): no answer from a device may crash or stall amtprovd.
#  1. Crash-loop guard: a device whose step is in flight each time amtprovd dies (SIGKILL,
#     while amtsim drips its answer) is rewound 3 times, then set aside as FAILED naming
#     the step (status 8116); it is not resumed again.
#  2. A fleet of evil devices, one per hostile answer amtsim gives (empty SOAP Body, wrong
#     element, fault without detail, huge body, truncated body, slow drip) to the first
#     stage's AMT_GeneralSettings requests (SET_HOST_NAME: the empty Body crashed amtprovd),
#     beside healthy devices: amtprovd survives, each evil device ends FAILED (the slow one:
#     waiting for its retry) with a reason naming the step, the device is named in the log,
#     and the healthy devices are PROVISIONED, in bounded time.
TEST_NAME=e2e_hostile
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH (lib.sh)

KINDS=(empty_body wrong_element fault_no_detail huge_body truncated_body slow_drip)
dev() { # ID HOST FAULTS-JSON
  cat <<JSON
    { "id": "$1", "address": "$NET.$2", "amt_version": "16.1.25", "provisioning_state": "in",
      "host_name": "$1", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ],
      "faults": $3 }
JSON
}
{
  echo '{ "key_pool": 4, "keygen_latency_ms": 20, "devices": ['
  dev pc1 1 '{}'; echo ,
  dev pc2 2 '{}'; echo ,
  # Every authenticated request answered one byte a second: the step stays in flight.
  dev crash1 9 '{ "hostile": "slow_drip", "hostile_drip_ms": 1000 }'
  for i in "${!KINDS[@]}"; do
    echo ,
    dev "evil$((i + 1))" $((20 + i)) "{ \"hostile\": \"${KINDS[$i]}\", \"hostile_match\": \"AMT_GeneralSettings\", \"hostile_drip_ms\": 1000 }"
  done
  echo '] }'
} >"$T/fleet.json"
mkdir -p "$T/sim"
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

SITE="$T/site/site.json"
mkdir -p "$T/site"
# A short operation limit: a dripping device costs 8 s, not the 60 s default.
cat >"$SITE" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "hostile", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport", "config": {"timeout_ms": 8000}},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"}
}
JSON
"$AMTPROV" -m "$SITE" db init >/dev/null
register() {
  local id
  for id in "$@"; do
    "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err" &&
      "$AMTPROV" -m "$SITE" device add --from-json "$T/$id.agent.json" >/dev/null || return 1
  done
}
show() { "$AMTPROV" -m "$SITE" --json device show "$1.contoso.com"; }
field() { show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
state_is() { test "$(field "$1" state)" = "$2"; }

# --- 1. crash-loop guard
check "crash1 registers" register crash1
# Round N: the device check has begun N times. A kill leaves CHECKING_DEVICE on record, so the
# state alone would let the next round kill amtprovd before it rewound and began the step.
begun() { [ "$(field crash1 in_flight)" = "$1" ] && state_is crash1 CHECKING_DEVICE; }
for round in 1 2 3 4; do
  start_daemon "$T/amtprovd.kill$round.log" -m "$SITE"
  check "round $round: crash1's device check is in flight (begun $round times)" wait_for 30 begun "$round"
  kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
  check "round $round: in_flight counts $round interrupted run(s)" test "$(field crash1 in_flight)" = "$round"
done
check "no sanitizer report (killed runs)" no_sanitizer_reports "$T"/amtprovd.kill*.log

"$AMTSIM" dump --control "$T/sim/control.sock" crash1 >"$T/crash1.dump1.json"
check "crash1 was answered with drips" grep -q 'hostile answer slow_drip' "$T/crash1.dump1.json"

# --- 2. the evil fleet beside healthy devices (registered now, so that the SIGKILLs above
# never interrupted them)
check "the healthy and the evil devices register" register pc1 pc2 evil1 evil2 evil3 evil4 evil5 evil6
start=$(date +%s)
expect_rc 0 "amtprovd survives every hostile answer and exits cleanly" \
  "$AMTPROVD" -m "$SITE" -l debug --once=240 2>"$T/amtprovd.log"
elapsed=$(( $(date +%s) - start ))
check "bounded: the run took ${elapsed}s (< 150 s)" test "$elapsed" -lt 150
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"

for id in pc1 pc2; do
  check "the healthy $id is PROVISIONED beside the evil ones" state_is "$id" PROVISIONED
done

show crash1 >"$T/crash1.json"
check "crash-loop guard: crash1 is FAILED, naming the step and the guard (R-PROV-13)" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "FAILED", d
assert "crash-loop guard" in d["last_error"] and "CHECKING_DEVICE" in d["last_error"], d
assert d["in_flight"] == 4, d' "$T/crash1.json"
check "crash-loop guard: status 8116 names crash1" \
  bash -c "'$AMTPROV' -m '$SITE' status --id 8116 --device crash1.contoso.com | grep -q CHECKING_DEVICE"
check "crash-loop guard: the log names crash1 and the step" \
  grep -q 'crash1.contoso.com.*crash-loop guard.*CHECKING_DEVICE' "$T/amtprovd.log"
"$AMTSIM" dump --control "$T/sim/control.sock" crash1 >"$T/crash1.dump2.json"
check "crash-loop guard: crash1 got no request in the last run" \
  cmp -s <(grep -o 'hostile answer' "$T/crash1.dump1.json" | wc -l) <(grep -o 'hostile answer' "$T/crash1.dump2.json" | wc -l)

# What each hostile answer must be reported as (in last_error, after the step's name).
declare -A WANT=(
  [empty_body]="returned an empty SOAP Body"
  [wrong_element]="returned <AMTSIM_Unexpected>"
  [fault_no_detail]="fault (no code)"
  [huge_body]="exceeded 16 MiB"
  [truncated_body]="not well-formed XML"
  [slow_drip]="did not"
)
for i in "${!KINDS[@]}"; do
  id="evil$((i + 1))" kind=${KINDS[$i]}
  show "$id" >"$T/$id.json"
  if [ "$kind" = slow_drip ]; then
    # A timeout may pass: the device waits for its retry, with the reason.
    check "$kind: $id waits for a retry of the first stage, reason recorded" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "NEED_FIRST_STAGE" and d["attempts"] >= 1, d
assert "SET_HOST_NAME" in d["last_error"] and sys.argv[2] in d["last_error"], d' "$T/$id.json" "${WANT[$kind]}"
  else
    check "$kind: $id is FAILED in the first stage, naming the operation and the fault" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "FAILED", d
e = d["last_error"]
assert "NEED_FIRST_STAGE" in e and "SET_HOST_NAME" in e and sys.argv[2] in e, e' "$T/$id.json" "${WANT[$kind]}"
  fi
  check "$kind: the log names $id and the operation" \
    grep -q "$id.contoso.com.*SET_HOST_NAME" "$T/amtprovd.log"
  "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.dump.json"
  check "$kind: amtsim really answered $id with it" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["audit"]
assert any("hostile answer " + sys.argv[2] in e["event"] for e in a), sys.argv[2]' "$T/$id.dump.json" "$kind"
done
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
