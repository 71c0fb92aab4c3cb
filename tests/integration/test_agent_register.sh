#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Seed 003 steps 1-3 on the hosts themselves (R-PROV-01..03, issue 15): a fleet of
# simulated AMT computers, each with its own simulated MEI (amtsim --mei-dir), registers
# through amtprov-agent concurrently, each host with its own enrollment secret, and amtprovd
# then provisions every one of them end to end while the agents wait. Checked on the
# devices themselves: the OTP each agent set over MEI is the one AMT showed over WS-Man
# (the device check passed, R-PROV-05), remote configuration was started over MEI, every
# device is post-provisioning; `info` reports what the device is; no OTP in any output.
TEST_NAME=agent_register
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
AGENT="$AMTPROV_BUILD_DIR/agent/amtprov-agent"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
N=6
IP="$NET.240"
PORT=$((20000 + $$ % 20000))
URL="https://$IP:$PORT"
M="$T/site/site.json"

pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH
make_api_cert "$pki" "$IP"

# The fleet: Not Provisioned computers (state pre), mixed firmware, the lab root's hash.
mkdir -p "$T/sim"
python3 - "$T/fleet.json" "$NET" "$N" "$ROOT_HASH" <<'PY'
import json, sys
path, net, n, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
vers = ["11.8.50", "12.0.45", "16.1.25"]
devs = [{"id": "pc%d" % i, "address": "%s.%d" % (net, i), "amt_version": vers[i % 3],
         "provisioning_state": "pre", "host_name": "pc%d" % i, "domain_name": "contoso.com",
         "dhcp_domain": "contoso.com",
         "root_hashes": [{"name": "lab root", "algo": "sha256", "hash": root}]}
        for i in range(1, n + 1)]
json.dump({"key_pool": 4, "keygen_latency_ms": 20, "devices": devs}, open(path, "w"))
PY
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --mei-dir "$T/mei" --quiet \
  2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet and its simulated MEI" wait_for 20 test -S "$T/mei/pc$N.sock"
check "each simulated MEI socket is 0600" test "$(stat -c %a "$T/mei/pc1.sock")" = 600

mkdir -p "$T/site"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "agents", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com",
            "fqdn_patterns": ["pc*.contoso.com"] },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds", "mebx_password": "site/mebx"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt"},
  "api": { "listen": "$IP:$PORT", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "registration_keys": ["api/registration-key"],
           "address_check": "allow_list", "address_allow": ["$NET.0/24"] }
}
JSON
"$AMTPROV" -m "$M" db init >/dev/null
printf 'M3bx-Str0ng!Pw' | "$AMTPROV" -m "$M" cred set site/mebx --stdin
openssl rand -hex 32 | "$AMTPROV" -m "$M" cred set api/registration-key --stdin >/dev/null
# Each host's own enrollment secret, handed over as a 0600 file.
for i in $(seq 1 $N); do
  install -m 600 /dev/null "$T/pc$i.secret"
  "$AMTPROV" -m "$M" enroll-secret --fqdn "pc$i.contoso.com" >"$T/pc$i.secret"
done
check "every host has its enrollment secret" bash -c "for i in \$(seq 1 $N); do test -s '$T'/pc\$i.secret || exit 1; done"

# What a technician checks first, before anything is registered.
"$AGENT" --mei "$T/mei/pc1.sock" --json info >"$T/pc1.info.json" 2>"$T/pc1.info.err"
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.before.json"
check "info reports the device amtsim holds (version, state, UUID, wired MAC and IP, hashes)" \
  python3 - "$T/pc1.info.json" "$T/pc1.before.json" <<'PY'
import json, sys
i, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert i["amt_version"] == d["amt_version"], (i["amt_version"], d["amt_version"])
assert i["provisioning_state"] == "pre" and i["control_mode"] == "none", i
assert i["uuid"] == d["uuid"], (i["uuid"], d["uuid"])
assert i["wired"]["mac"] == d["wired"]["mac"] and i["wired"]["ipv4"] == d["wired"]["ip"], i["wired"]
assert any(h["name"] == "lab root" and h["algorithm"] == "SHA256" for h in i["hashes"]), i["hashes"]
assert len(i["hashes"]) == len(d["root_hashes"]), (len(i["hashes"]), len(d["root_hashes"]))
PY

LOG="$T/amtprovd.log"
start_daemon "$LOG" -m "$M" -l debug
up() { curl -s --cacert "$pki/api.pem" "$URL/v1/health" >/dev/null; }
check "amtprovd serves the API" wait_for 30 up

# The fleet's agents, all at once, each waiting until its device is provisioned.
agent_pids=()
for i in $(seq 1 $N); do
  "$AGENT" --mei "$T/mei/pc$i.sock" register --server "$URL" --fqdn "pc$i.contoso.com" \
    --secret-file "$T/pc$i.secret" --ca-bundle "$pki/api.pem" --manufacturer "Contoso Labs" \
    --model "vPro $i" --wait --interval 1 --timeout 400 >"$T/pc$i.out" 2>"$T/pc$i.err" &
  agent_pids+=("$!")
  PIDS+=("$!")
done
rcs=()
for p in "${agent_pids[@]}"; do wait "$p"; rcs+=("$?"); done
check "R-PROV-02/03: every agent registered its device and saw it provisioned (exit 0)" \
  test "${rcs[*]}" = "$(printf '0 %.0s' $(seq 1 $N) | sed 's/ $//')"
[ "${rcs[*]}" = "$(printf '0 %.0s' $(seq 1 $N) | sed 's/ $//')" ] || { echo "exits: ${rcs[*]}"; tail -n 5 "$T"/pc*.err; }
check "each agent said what it registered" bash -c "for i in \$(seq 1 $N); do grep -q \"^registered pc\$i.contoso.com (AMT \" '$T'/pc\$i.out || exit 1; done"
check "each agent showed the states it passed, up to PROVISIONED" \
  bash -c "for i in \$(seq 1 $N); do grep -q 'pc'\$i'.contoso.com: PROVISIONED' '$T'/pc\$i.err || exit 1; done"

"$AMTPROV" -m "$M" --json device list >"$T/devices.json"
check "amtprovd holds every device PROVISIONED with what its agent reported" \
  python3 - "$T/devices.json" "$N" "$T/sim" <<'PY'
import json, sys
devs = {d["fqdn"]: d for d in json.load(open(sys.argv[1]))}
n = int(sys.argv[2])
assert len(devs) == n, sorted(devs)
for i in range(1, n + 1):
    d = devs["pc%d.contoso.com" % i]
    s = json.load(open("%s/pc%d.json" % (sys.argv[3], i)))
    assert d["state"] == "PROVISIONED", d
    assert d["uuid"] == s["uuid"] and d["amt_version"] == s["amt_version"], (d, s["uuid"])
PY
for i in $(seq 1 $N); do "$AMTSIM" dump --control "$T/sim/control.sock" "pc$i" >"$T/pc$i.dump.json"; done
audit_has() { # device, text
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert any(sys.argv[2] in e["event"] for e in a), sys.argv[2]' "$T/$1.dump.json" "$2"
}
for i in $(seq 1 $N); do
  check "R-PROV-02: pc$i got its OTP over MEI" audit_has "pc$i" "otp set by host agent"
  check "R-PROV-02: pc$i started remote configuration over MEI" audit_has "pc$i" "remote configuration started (state in)"
  check "R-PROV-05/10: pc$i passed the OTP check and committed" audit_has "pc$i" "CommitChanges: provisioned"
done
check "every device is post-provisioning" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["provisioning_state"]=="post" for f in sys.argv[1:])' "$T"/pc*.dump.json

# R-PROV-01 from the host's side: a provisioned device is not registered again.
expect_rc 5 "R-PROV-01: an agent on a provisioned device refuses to register (exit 5)" \
  "$AGENT" --mei "$T/mei/pc1.sock" register --server "$URL" --fqdn pc1.contoso.com \
  --secret-file "$T/pc1.secret" --ca-bundle "$pki/api.pem" >"$T/again.out" 2>"$T/again.err"
check "... saying it is already provisioned" grep -q "already provisioned" "$T/again.err"
"$AGENT" --mei "$T/mei/pc1.sock" info >"$T/pc1.info.txt" 2>&1
check "info shows post and ACM afterwards" bash -c "grep -q 'Provisioning state *post' '$T/pc1.info.txt' && grep -q 'Control mode *acm' '$T/pc1.info.txt'"

# No secret in any output: the enrollment secrets, and no agent prints an OTP (16 characters
# it made; amtprovd's log may name only hashes).
SECRETS="$T/secrets.tsv"
install -m 600 /dev/null "$SECRETS"
for i in $(seq 1 $N); do printf 'secret pc%d\t%s\n' "$i" "$(cat "$T/pc$i.secret")" >>"$SECRETS"; done
check "no enrollment secret in amtprovd's log or any agent output" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$LOG" "$T"/pc*.out "$T"/pc*.err
check "no agent prints anything OTP-like (a 16-character token)" \
  bash -c "! grep -hE '(^|[^A-Za-z0-9])[A-HJ-NP-Za-km-z2-9]{16}([^A-Za-z0-9]|$)' '$T'/pc*.out '$T'/pc*.err"
check "no sanitizer report (amtprovd, amtsim, agents)" no_sanitizer_reports "$LOG" "$T/amtsim.log" "$T"/pc*.err

finish
