#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# amtprov-agent's refusals (R-PROV-01..02, issue 15), each with its own exit status and a
# clear message: no MEI device or driver (3); AMT absent or disabled (4); AMT already
# provisioned (5, nothing registered); firmware busy (6: the client held by another
# connection, or NOT_READY); the server refused (7, with the server's reason; remote
# configuration is stopped again and the OTP never printed); usage errors (2). And no
# answer from a device crashes or stalls the agent: truncated, mislabelled, lying-length,
# oversized and random answers are refused with exit 1, silence with exit 6.
TEST_NAME=agent_errors
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
AGENT="$AMTPROV_BUILD_DIR/agent/amtprov-agent"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
IP="$NET.240"
PORT=$((20000 + $$ % 20000))
URL="https://$IP:$PORT"
M="$T/site/site.json"
O="$T/out"; E="$T/err"

run() { # expected-exit name args...: the agent's stdout/stderr in $O/$E, sanitizer-checked
  local want=$1 name=$2; shift 2
  "$AGENT" "$@" >"$O" 2>"$E"
  local rc=$?
  no_sanitizer_reports "$E" || rc=99
  if [ "$rc" -eq "$want" ]; then pass "$name"; else fail "$name (exit $rc, want $want): $(head -c 400 "$E")"; fi
}

mkdir -p "$T/sim"
cat >"$T/fleet.json" <<JSON
{ "key_pool": 1, "keygen_latency_ms": 5,
  "defaults": { "amt_version": "12.0.45", "domain_name": "contoso.com", "tls_port": 0, "http_port": 0 },
  "devices": [
    { "id": "ok", "address": "$NET.1", "host_name": "ok" },
    { "id": "post", "address": "$NET.2", "provisioning_state": "post", "control_mode": "acm" },
    { "id": "absent", "address": "$NET.3", "faults": {"mei": "absent"} },
    { "id": "disabled", "address": "$NET.4", "faults": {"mei": "disabled"} },
    { "id": "busy", "address": "$NET.5", "faults": {"mei": "busy"} },
    { "id": "notready", "address": "$NET.6", "faults": {"mei": "not_ready"} },
    { "id": "held", "address": "$NET.7" },
    { "id": "old", "address": "$NET.8", "amt_version": "5.2.10" }
  ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --mei-dir "$T/mei" --quiet \
  2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the simulated MEI" wait_for 20 test -S "$T/mei/old.sock"
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1"; }
state_of() { dump "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["provisioning_state"])'; }

# --- the server (no AMT transport: registered devices just wait)
pki="$T/pki"
make_api_cert "$pki" "$IP"
mkdir -p "$T/site"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "agent-errors", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "api": { "listen": "$IP:$PORT", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "registration_keys": ["api/registration-key"],
           "address_check": "allow_list", "address_allow": ["$NET.0/24"] }
}
JSON
"$AMTPROV" -m "$M" db init >/dev/null
openssl rand -hex 32 | "$AMTPROV" -m "$M" cred set api/registration-key --stdin >/dev/null
for h in ok post old other; do
  install -m 600 /dev/null "$T/$h.secret"
  "$AMTPROV" -m "$M" enroll-secret --fqdn "$h.contoso.com" >"$T/$h.secret"
done
start_daemon "$T/amtprovd.log" -m "$M" -l debug
up() { curl -s --cacert "$pki/api.pem" "$URL/v1/health" >/dev/null; }
check "amtprovd serves the API" wait_for 30 up
reg() { # device fqdn secret-name [more args]
  local dev=$1 fqdn=$2 sec=$3; shift 3
  echo --mei "$T/mei/$dev.sock" --mei-timeout 3000 register --server "$URL" --fqdn "$fqdn" \
    --secret-file "$T/$sec.secret" --ca-bundle "$pki/api.pem" "$@"
}

# --- usage
run 2 "no command is a usage error" 
run 2 "an unknown command is a usage error" frobnicate
run 2 "register needs --server, --fqdn and --secret-file" --mei "$T/mei/ok.sock" register --fqdn ok.contoso.com
run 2 "the API must be https://" $(reg ok ok.contoso.com ok | sed "s|$URL|http://$IP:$PORT|")
chmod 644 "$T/ok.secret"
run 2 "a secret file readable by others is refused" $(reg ok ok.contoso.com ok)
check "... saying so" grep -q "readable by group or others" "$E"
chmod 600 "$T/ok.secret"
check "a usage error changes nothing on the device" test "$(state_of ok)" = pre

# --- the firmware side
run 3 "no MEI device or driver: exit 3" --mei "$T/no-such-device" info
check "... naming the device and the driver" grep -q "no MEI device.*mei_me driver" "$E"
run 4 "no AMT host interface client (no AMT, or disabled): exit 4" --mei "$T/mei/absent.sock" info
check "... saying so" grep -q "no AMT host interface client" "$E"
run 4 "AMT disabled (empty answers): exit 4" $(reg disabled ok.contoso.com ok)
check "... saying AMT is disabled" grep -q "AMT is disabled" "$E"
run 6 "firmware busy (the client is in use): exit 6" $(reg busy ok.contoso.com ok)
check "... saying it is in use" grep -q "in use" "$E"
run 6 "firmware not ready (AMT_STATUS_NOT_READY): exit 6" $(reg notready ok.contoso.com ok)
check "... saying try again later" grep -q "AMT_STATUS_NOT_READY.*try again later" "$E"
# Another program holds the AMTHI client (one host connection at a time, as the kernel).
python3 - "$T/mei/held.sock" "$T/held.ready" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
guid = bytes([0x28, 0x00, 0xf8, 0x12, 0xb7, 0xb4, 0x2d, 0x4b, 0xac, 0xa8, 0x46, 0xe0, 0xff, 0x65, 0x81, 0x4c])
s.sendall(struct.pack("<I", 16) + guid)
assert s.recv(10)[4] == 0
open(sys.argv[2], "w").close()
time.sleep(60)
PY
holder=$!
PIDS+=("$holder")
check "another program connects to held's AMT host interface" wait_for 10 test -e "$T/held.ready"
run 6 "the AMTHI client held by another connection: exit 6" --mei "$T/mei/held.sock" info
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
held_free() { "$AGENT" --mei "$T/mei/held.sock" info >/dev/null 2>&1; }
check "once it lets go, the agent connects" wait_for 10 held_free

run 5 "R-PROV-01: AMT already provisioned: exit 5" $(reg post post.contoso.com post)
check "... saying so" grep -q "already provisioned" "$E"
"$AMTPROV" -m "$M" --json device list >"$T/list.json"
check "... and nothing was registered" python3 -c 'import json,sys; assert not [d for d in json.load(open(sys.argv[1])) if d["fqdn"]=="post.contoso.com"]' "$T/list.json"

# --- the server refuses: the secret of another host
run 7 "the server refuses another host's secret: exit 7" $(reg ok ok.contoso.com other)
check "... with the server's reason" grep -q "refused ok.contoso.com (HTTP 403).*this enrollment secret is for other.contoso.com" "$E"
check "... and remote configuration is stopped again (state pre)" test "$(state_of ok)" = pre
dump ok >"$T/ok.dump.json"
check "... the device's audit shows start and stop over MEI" python3 - "$T/ok.dump.json" <<'PY'
import json, sys
a = [e["event"] for e in json.load(open(sys.argv[1]))["audit"]]
assert any("otp set by host agent" in e for e in a) and any("StartConfigurationEx" in e for e in a) \
    and any("StopConfiguration" in e for e in a), a
PY
# The OTP the agent set is in the device's state file (saved within a second).
otp_saved() { python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["otp"]) == 16' "$T/sim/ok.json"; }
check "the device holds the agent's 16-character OTP" wait_for 10 otp_saved
SECRETS="$T/secrets.tsv"
install -m 600 /dev/null "$SECRETS"
python3 -c 'import json,sys; print("OTP ok\t" + json.load(open(sys.argv[1]))["otp"])' "$T/sim/ok.json" >>"$SECRETS"
check "the OTP is in neither the agent's output nor amtprovd's log" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$O" "$E" "$T/amtprovd.log"
run 1 "the server unreachable: exit 1" $(reg ok ok.contoso.com ok | sed "s|$URL|https://$NET.241:9|")
check "... and remote configuration is stopped again" test "$(state_of ok)" = pre

# --- the same agent succeeds; an AMT 5 device gets StartConfiguration (no Ex before 6.0)
run 0 "ok registers" $(reg ok ok.contoso.com ok)
check "... and is in provisioning (state in)" test "$(state_of ok)" = in
run 0 "an AMT 5.2 device registers with StartConfiguration" $(reg old old.contoso.com old)
dump old >"$T/old.dump.json"
check "... not StartConfigurationEx" python3 -c 'import json,sys; a=[e["event"] for e in json.load(open(sys.argv[1]))["audit"]]; assert any("MEI StartConfiguration:" in e for e in a), a' "$T/old.dump.json"
run 0 "an agent run again on a device in provisioning registers again (no new start)" $(reg ok ok.contoso.com ok)
check "... saying configuration is already under way" grep -q "already under way" "$O"

# --- hostile "firmware": no answer crashes or stalls the agent
for mode in truncated wrong_command lying_length oversized_frame garbage; do
  python3 "$(dirname "$0")/fake_mei.py" "$T/fake-$mode.sock" "$mode" &
  PIDS+=("$!")
  wait_for 10 test -S "$T/fake-$mode.sock"
  run 1 "a $mode answer is refused (exit 1)" --mei "$T/fake-$mode.sock" --mei-timeout 3000 info
  check "... naming what is wrong" grep -Eq "malformed|longer than" "$E"
done
python3 "$(dirname "$0")/fake_mei.py" "$T/fake-silent.sock" silent &
PIDS+=("$!")
wait_for 10 test -S "$T/fake-silent.sock"
run 6 "firmware that never answers: exit 6 after --mei-timeout" --mei "$T/fake-silent.sock" --mei-timeout 1000 info
check "... saying no answer came" grep -q "no answer within 1000 ms" "$E"
check "no sanitizer report (amtsim, amtprovd)" no_sanitizer_reports "$T/amtsim.log" "$T/amtprovd.log"

finish
