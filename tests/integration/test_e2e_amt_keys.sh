#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# R-PROV-06 end to end: the web server certificate is requested around a key generated inside
# AMT (GenerateKeyPair + GeneratePKCS10RequestEx) on AMT >= 9, and around a key made by
# amtprov on older firmware. Checked on amtsim's own state: the key was generated in the
# device (never added), the certificate AMT serves carries that key, and amtprov's credential
# store holds no key for the device. Then R-PROV-13 for AMT-held keys:
#  - amtprovd SIGKILLed while AMT generates the key: the restart adopts that key, no second;
#  - a device that failed after its key was generated is retried: the same key is used;
#  - key_source "amt" on firmware amtprov provisions through legacy SOAP fails with a reason.
TEST_NAME=e2e_amt_keys
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
# A loopback /24 of our own (claim_net, lib.sh).
claim_net
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }

pki="$T/pki"
make_prov_pki "$pki"

SIM_PID=""
fleet() { # faults JSON, then "id:version[:keygen_ms]"...
  local faults=$1 first=1 id ver ms n; shift
  { echo "{ \"key_pool\": 6, \"keygen_latency_ms\": 20, \"faults\": $faults, \"devices\": ["
    for spec in "$@"; do
      IFS=: read -r id ver ms <<<"$spec"; n=${id#pc}
      printf '%s{"id": "%s", "address": "%s.%d", "amt_version": "%s", "provisioning_state": "in", "host_name": "%s", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "tls_modern_override": true%s, "root_hashes": [{"name": "root", "algo": "sha256", "hash": "%s"}]}\n' \
        "$([ $first = 1 ] || echo ,)" "$id" "$NET" "$n" "$ver" "$id" \
        "${ms:+, \"keygen_latency_ms\": $ms}" "$ROOT_HASH"
      first=0
    done
    echo "] }"; } >"$T/fleet.json"
}
sim_start() {
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}
sim_stop() { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; rm -f "$T/sim/control.sock"; }
# Each case starts a new site state, so a new lab-ca: 2048-bit CA keys (3072, the default, costs
# seconds of CPU per case on a loaded machine; other tests keep it).
site() { # key_source
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{ "manifest_version": 1,
  "site": { "name": "keys", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "amt": {"plugin": "amt-transport"},
               "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080", "key_bits": 2048}},
               "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer", "key_source": "$1"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "ping": true},
  "engine": {"retry": {"base_seconds": 1, "max_seconds": 2, "max_attempts": 5}} }
JSON
  rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
}
register() {
  local id
  for id in "$@"; do
    "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" &&
      "$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/$id.agent.json" >/dev/null || return 1
  done
}
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.dump.json"; }
# audit_count DEVICE TEXT: how many of the device's audit events contain TEXT.
audit_count() {
  python3 -c 'import json,sys; print(sum(sys.argv[2] in e["event"] for e in json.load(open(sys.argv[1]))["audit"]))' \
    "$T/$1.dump.json" "$2"
}
run_until_settled() { # runs amtprovd --once until no device is in flight (backoff between)
  local log=$1 i
  for i in 1 2 3 4 5; do
    "$AMTPROVD" -m "$T/site/site.json" --once=120 2>>"$log"
    [ "$(q "select count(*) from devices where state not in ('PROVISIONED','FAILED')")" = 0 ] && return 0
    sleep 2.2
  done
  return 1
}
# served_key_is_amt_key DEVICE: the certificate the device serves on 16993 carries the public
# key of the key pair AMT generated (read from amtsim's state file, which holds the PEM and
# is written within a second of a change: the checks wait for it).
served_key_is_amt_key() {
  local id=$1 n=${1#pc}
  openssl s_client -connect "$NET.$n:16993" -servername "$id.contoso.com" </dev/null 2>/dev/null |
    openssl x509 -noout -pubkey >"$T/$id.served.pub" 2>/dev/null || return 1
  python3 - "$T/sim/$id.json" "$T/$id.served.pub" "$T/$id.amt.pub" <<'PY' || return 1
import json, re, subprocess, sys
state = json.load(open(sys.argv[1]))
gen = [int(m.group(1)) for e in state["audit"]
       for m in [re.search(r"GenerateKeyPair: key handle (\d+)", e["event"])] if m]
assert len(gen) == 1, gen
key = [k for k in state["keys"] if k["handle"] == gen[0]][0]
pub = subprocess.run(["openssl", "pkey", "-pubout"], input=key["pem"].encode(),
                     capture_output=True, check=True).stdout
open(sys.argv[3], "wb").write(pub)
PY
  cmp -s "$T/$id.served.pub" "$T/$id.amt.pub"
}

# --- 1. a fleet: two current firmware versions (AMT key) and one AMT 6.0 device (amtprov key:
# GenerateKeyPair comes with AMT 6.2; AMT 6.2-8.x generate theirs too, test_e2e_legacy.sh).
mkdir -p "$T/sim"
fleet '{}' pc1:12.0.45 pc2:16.1.25 pc3:6.0.30
sim_start; site auto
check "register the devices" register pc1 pc2 pc3
run_until_settled "$T/d1.log"
check "every device is PROVISIONED (AMT 12, 16 and 6.0)" \
  test "$(q "select group_concat(state) from devices")" = "PROVISIONED,PROVISIONED,PROVISIONED"
check "the AMT 6.0 device got its certificate" \
  test "$(q "select count(*) from certificates c join devices d on d.id=c.device_id where d.fqdn='pc3.contoso.com'")" = 1
for id in pc1 pc2 pc3; do dump "$id"; done
for id in pc1 pc2; do
  check "R-PROV-06: $id's key was generated inside AMT (GenerateKeyPair once)" test "$(audit_count $id 'GenerateKeyPair: key handle')" = 1
  check "R-PROV-06: AMT signed $id's request (GeneratePKCS10RequestEx, SHA-256)" test "$(audit_count $id 'GeneratePKCS10RequestEx: key handle')" = 1
  check "R-PROV-06: no key was added to $id (no AddKey)" test "$(audit_count $id 'AddKey')" = 0
  check "R-PROV-10 (3): $id holds its certificate, TLS on" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tls_remote"]["enabled"] and d["tls_remote"]["cert_handle"]' "$T/$id.dump.json"
done
check "R-PROV-06: AMT 6.0 gets a key made by amtprov (no GenerateKeyPair)" test "$(audit_count pc3 'GenerateKeyPair')" = 0
"$AMTPROV" -m "$T/site/site.json" cred list >"$T/creds.txt" 2>&1
check "no web server key in the credential store for the AMT-key devices" \
  bash -c "! grep -q 'device/pc1.contoso.com/web-key' '$T/creds.txt' && ! grep -q 'device/pc2.contoso.com/web-key' '$T/creds.txt'"
check "the AMT 6.0 device's key is in the credential store" grep -q 'device/pc3.contoso.com/web-key' "$T/creds.txt"
check "no amt-key record is left once the devices committed" test "$(q "select count(*) from pending_ops where kind='amt-key'")" = 0
sim_stop
for id in pc1 pc2; do
  sim_start
  check "R-PROV-06: the certificate $id serves carries the key AMT generated" wait_for 10 served_key_is_amt_key "$id"
  sim_stop
done
# And that certificate is the one amtprov recorded for the device.
sim_start
python3 - "$T/site/state/site.db" "$T/pc1.served.pub" <<'PY' >"$T/match.txt" 2>&1
import sqlite3, subprocess, sys
db = sqlite3.connect(sys.argv[1])
der = db.execute("select d.der from certificate_data d join certificates c on c.id = d.cert_id "
                 "join devices v on v.id = c.device_id where v.fqdn = 'pc1.contoso.com' "
                 "and c.status = 'active'").fetchone()[0]
pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-pubkey"], input=der,
                     capture_output=True, check=True).stdout
assert pub == open(sys.argv[2], "rb").read(), "recorded certificate has another key"
PY
check "R-PROV-13: amtprov's record of pc1's certificate carries that key" test ! -s "$T/match.txt"
[ -s "$T/match.txt" ] && cat "$T/match.txt" >&2
sim_stop

# --- 1b. key_source "amtprov" on current firmware: amtprov's key, installed with AddKey.
rm -rf "$T/sim"; mkdir -p "$T/sim"
fleet '{}' pc4:12.0.45
sim_start; site amtprov
check "register the device" register pc4
run_until_settled "$T/d1b.log"
check "key_source amtprov: PROVISIONED" test "$(q "select state from devices")" = PROVISIONED
dump pc4
check "key_source amtprov: the key was added (AddKey), not generated in AMT" \
  test "$(audit_count pc4 'AddKey: key handle'):$(audit_count pc4 'GenerateKeyPair')" = "1:0"
"$AMTPROV" -m "$T/site/site.json" cred list >"$T/creds4.txt" 2>&1
check "key_source amtprov: the key is in the credential store" grep -q 'device/pc4.contoso.com/web-key' "$T/creds4.txt"
check "key_source amtprov: no amt-key record" test "$(q "select count(*) from pending_ops where kind='amt-key'")" = 0
sim_stop

# --- 2. amtprovd SIGKILLed while AMT generates the key (its answer is 4 s late): the
# restart finds the intent on record and adopts the key AMT made instead of a second one.
rm -rf "$T/sim"; mkdir -p "$T/sim"
fleet '{}' pc1:12.0.45:4000
sim_start; site auto
check "register the device" register pc1
start_daemon "$T/d2.log" -m "$T/site/site.json"
check "AMT starts generating the key" wait_for 30 bash -c "'$AMTSIM' dump --control '$T/sim/control.sock' pc1 | grep -q 'GenerateKeyPair: key handle'"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "the kill came before amtprov learnt the handle (intent on record)" \
  test "$(q "select count(*) from pending_ops where kind='amt-key' and payload like '%before%' and payload not like '%handle%'")" = 1
run_until_settled "$T/d3.log"
check "after the restart the device is PROVISIONED" test "$(q "select state from devices")" = PROVISIONED
dump pc1
check "R-PROV-13: no second key: GenerateKeyPair ran once" test "$(audit_count pc1 'GenerateKeyPair: key handle')" = 1
check "R-PROV-13: AMT holds exactly one key" \
  python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["keys"]) == 1' "$T/pc1.dump.json"
check "R-PROV-13: one active certificate, for the adopted key" test "$(q "select count(*) from certificates where status='active'")" = 1
sim_stop
sim_start
check "the certificate pc1 serves carries the adopted key" wait_for 10 served_key_is_amt_key pc1
sim_stop

# --- 3. the firmware refuses the certificate (flash write limit) after generating the key:
# FAILED; after `amtprov device retry` the key AMT holds is used again, the first
# certificate is revoked as superseded (R-REV-02b).
rm -rf "$T/sim"; mkdir -p "$T/sim"
fleet '{"flash_writes": 1}' pc1:12.0.45
sim_start; site auto
check "register the device" register pc1
run_until_settled "$T/d4.log"
check "a refused AddCertificate fails the device" test "$(q "select state from devices")" = FAILED
FIRST=$(q "select serial_hex from certificates where status='active'")
sim_stop; fleet '{}' pc1:12.0.45; sim_start
expect_rc 0 "amtprov device retry" "$AMTPROV" -m "$T/site/site.json" device retry pc1.contoso.com >/dev/null 2>&1
run_until_settled "$T/d5.log"
check "after the retry the device is PROVISIONED" test "$(q "select state from devices")" = PROVISIONED
dump pc1
check "R-PROV-13: the retry used the key AMT already held (GenerateKeyPair once)" test "$(audit_count pc1 'GenerateKeyPair: key handle')" = 1
check "R-REV-02b: the first certificate is revoked, Superseded" \
  test "$(q "select status || ':' || revocation_reason from certificates where serial_hex='$FIRST'")" = "revoked:4"
sim_stop

# --- 4. key_source "amt" where amtprov cannot use it: a clear reason, nothing requested.
rm -rf "$T/sim"; mkdir -p "$T/sim"
fleet '{}' pc3:6.0.30
sim_start; site amt
check "register the device" register pc3
run_until_settled "$T/d6.log"
check "key_source 'amt' on AMT 6.0 fails the device" test "$(q "select state from devices")" = FAILED
check "with the reason naming the manifest field and the firmware" \
  test -n "$(q "select 1 from devices where last_error like '%AMT 6.0.30 cannot generate keys inside AMT (GenerateKeyPair%key_source%'")"
check "and no request went to the CA" test "$(q "select count(*) from certificates")" = 0
sim_stop

check "no sanitizer report" no_sanitizer_reports "$T"/d*.log "$T/amtsim.log"
finish
