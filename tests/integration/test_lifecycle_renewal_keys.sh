#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renewal and where its key comes from (R-WS-03, R-REV-02c, R-PROV-06, R-PROV-13), on a test
# clock, checked on amtsim's own state:
#  1. key_source "auto": AMT 12 and 16 renew with a key generated inside AMT (GenerateKeyPair
#     + GeneratePKCS10RequestEx over the managed session, no AddKey), and serve a certificate
#     for that key; AMT 6.0 (legacy SOAP, no GenerateKeyPair before 6.2) renews through
#     SetTLSKeyAndCertificate with a key made by amtprov (AMT 6.2-8.x renew with a key made
#     inside AMT, its certificate over WS-Man: test_e2e_legacy.sh provisions them so). The superseded certificate and its key pair are deleted from AMT's store.
#  2. key_source "amtprov": a second renewal adds amtprov's key (AddKey); after two renewals
#     AMT holds only the current web server certificate and key.
#  3. amtprovd SIGKILLed while AMT generates the renewal key: the restart adopts that key
#     (exactly one new key), installs and commits. pc2's renewal, cut short by the kill inside
#     its prune (superseded certificate deleted, its key pair not yet), leaves no key pair
#     behind: the restart knows that key by the certificate's record and deletes it.
#  4. AMT refuses the commit of a renewal: the device stays PROVISIONED and serves its current
#     certificate; the next evaluation installs the recorded certificate without a new
#     request or key.
TEST_NAME=lifecycle_renewal_keys
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
SIM_PID=""
# fleet [ID:KEYGEN_MS:COMMIT_FAIL]... : pc1 AMT 12, pc2 AMT 16.1, pc3 AMT 6.0 (legacy SOAP);
# FAULTS='{"ID": {...}}' adds amtsim faults (docs/amtsim.md) to a device's.
fleet() {
  local ms1=5 ms2=5 ms3=5 cf1=0 cf2=0 cf3=0 spec id ms cf
  for spec in "$@"; do
    IFS=: read -r id ms cf <<<"$spec"
    eval "ms${id#pc}=$ms; cf${id#pc}=${cf:-0}"
  done
  python3 - "$NET" "$ROOT_HASH" "${FAULTS:-}" "$ms1:$cf1" "$ms2:$cf2" "$ms3:$cf3" >"$T/fleet.json" <<'PY'
import json, sys
net, root = sys.argv[1], sys.argv[2]
extra = json.loads(sys.argv[3] or "{}")
devs = []
for n, (ver, spec) in enumerate(zip(["12.0.45", "16.1.25", "6.0.30"], sys.argv[4:]), 1):
    ms, cf = (int(x) for x in spec.split(":"))
    devs.append({"id": "pc%d" % n, "address": "%s.%d" % (net, n), "amt_version": ver,
                 "provisioning_state": "in", "host_name": "pc%d" % n, "domain_name": "contoso.com",
                 "dhcp_domain": "contoso.com", "tls_modern_override": True,
                 "keygen_latency_ms": ms, "faults": dict({"commit_fail": cf}, **extra.get("pc%d" % n, {})),
                 "root_hashes": [{"name": "lab root", "algo": "sha256", "hash": root}]})
print(json.dumps({"key_pool": 4, "keygen_latency_ms": 5, "devices": devs}))
PY
}
sim_start() {
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}
sim_stop() { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; rm -f "$T/sim/control.sock"; }
key_source() { # rewrites the site's key_source
  python3 - "$SITE" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["certificates"]["web_server"]["key_source"] = sys.argv[2]
json.dump(s, open(sys.argv[1], "w"), indent=1)
PY
}
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.dump.json"; }
audit_count() { # DEVICE TEXT (from the last dump)
  python3 -c 'import json,sys; print(sum(sys.argv[2] in e["event"] for e in json.load(open(sys.argv[1]))["audit"]))' \
    "$T/$1.dump.json" "$2"
}
fqdn() { echo "$1.contoso.com"; }
# renew_all: moves the clock to 42 days before the latest active web server certificate
# expires and asks for the evaluation; one amtprovd run renews.
due_clock() {
  local last
  last=$(q "select max(not_after) from certificates where status='active' and purpose=1")
  set_clock $((last - 42 * 86400))
}
# store_holds_only_current DEVICE: of the device's web server certificates on record, AMT
# holds only the active one, and exactly one key pair, the one that certificate carries.
store_holds_only_current() {
  local id=$1
  python3 - "$T/$id.dump.json" "$T/site/state/site.db" "$(fqdn "$id")" <<'PY'
import base64, hashlib, json, sqlite3, subprocess, sys
d = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
rows = db.execute("select c.sha256, c.status from certificates c join devices v on v.id = c.device_id "
                  "where v.fqdn = ? and c.purpose = 1", (sys.argv[3],)).fetchall()
mine = {sha.upper(): st for sha, st in rows}
held = [hashlib.sha256(base64.b64decode(c["der"])).hexdigest().upper() for c in d["certificates"]]
held_mine = [h for h in held if h in mine]
assert held_mine and all(mine[h] == "active" for h in held_mine), (held_mine, mine)
assert len(held_mine) == 1, "more than one web server certificate in AMT: %r" % held_mine
assert len(d["keys"]) == 1, "AMT holds %d keys" % len(d["keys"])
PY
}
# served_key_is AMT|STORE DEVICE: the certificate the device serves carries the key AMT
# generated last (read from amtsim's state file, which holds the PEM), or amtprov's stored key.
served_pub() {
  local n=${1#pc}
  openssl s_client -connect "$NET.$n:16993" </dev/null 2>/dev/null | openssl x509 -noout -pubkey 2>/dev/null
}
cat >"$T/amt_key.py" <<'PY'
import json, re, subprocess, sys
state = json.load(open(sys.argv[1]))
gen = [int(m.group(1)) for e in state["audit"]
       for m in [re.search(r"GenerateKeyPair: key handle (\d+)", e["event"])] if m]
key = [k for k in state["keys"] if gen and k["handle"] == gen[-1]]
pub = subprocess.run(["openssl", "pkey", "-pubout"], input=key[0]["pem"].encode(),
                     capture_output=True, check=True).stdout if key else b"none"
sys.exit(0 if pub == open(sys.argv[2], "rb").read() else 1)
PY
served_key_is_amt() { # amtsim saves its state file within a second of a change
  served_pub "$1" >"$T/$1.served.pub" && test -s "$T/$1.served.pub" &&
    wait_for 5 python3 "$T/amt_key.py" "$T/sim/$1.json" "$T/$1.served.pub"
}
# deleted DEVICE KIND: how many "KIND handle N deleted" events the last dump has
deleted() {
  python3 -c 'import json,re,sys; print(sum(bool(re.match(sys.argv[2] + r" handle \d+ deleted$", e["event"])) for e in json.load(open(sys.argv[1]))["audit"]))' \
    "$T/$1.dump.json" "$2"
}
served_sha() { served_sha256 "$NET.${1#pc}"; }
active_sha() { cert_field "$(fqdn "$1")" active sha256; }
n_certs_of() { q "select count(*) from certificates c join devices v on v.id=c.device_id where v.fqdn='$(fqdn "$1")' and c.purpose=1"; }

make_provisioning_pki
mkdir -p "$T/sim"
fleet
check "amtsim serves AMT 12, 16.1 and 6.0" sim_start
write_site '"maintenance": {"evaluate_certificates": {"interval_days": 7, "renew_within_days": 42}},
  "engine": {"retry": {"base_seconds": 1, "max_seconds": 2, "max_attempts": 5}}'
check "the devices register" register pc1 pc2 pc3
check "amtprovd provisions them" daemon_once
check "all three are PROVISIONED" test "$(q "select group_concat(state) from devices")" = "PROVISIONED,PROVISIONED,PROVISIONED"
for id in pc1 pc2 pc3; do eval "first_$id=\$(cert_field $(fqdn $id) active serial)"; done

# --- 1. key_source auto: AMT's key on AMT >= 9, amtprov's through legacy SOAP on AMT 6.0.
due_clock
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "round 1: amtprovd renews every device" daemon_once
check "round 1: all PROVISIONED again" test "$(q "select group_concat(state) from devices")" = "PROVISIONED,PROVISIONED,PROVISIONED"
for id in pc1 pc2; do
  dump $id
  check "R-PROV-06: $id's renewal key was generated inside AMT (GenerateKeyPair twice in all)" test "$(audit_count $id 'GenerateKeyPair: key handle')" = 2
  check "R-PROV-06: AMT signed $id's renewal request (GeneratePKCS10RequestEx twice in all)" test "$(audit_count $id 'GeneratePKCS10RequestEx: key handle')" = 2
  check "R-PROV-06: no key was added to $id (no AddKey)" test "$(audit_count $id 'AddKey')" = 0
  check "R-WS-03: $id serves its new certificate" bash -c "[ \"\$(served_sha256 $NET.${id#pc})\" = '$(active_sha $id)' ]"
  check "R-PROV-06: the certificate $id serves carries the key AMT generated at renewal" served_key_is_amt $id
  check "R-REV-02c: $id's first certificate is revoked Superseded, on the CRL" crl_has "$(eval echo \$first_$id)" Superseded
  check "$id: AMT's store holds only the current web server certificate and its key" store_holds_only_current $id
  check "$id: the superseded certificate and its key pair were deleted, once each" \
    test "$(deleted $id certificate):$(deleted $id key)" = "1:1"
done
check "no deletion was refused or left out (no 8301)" test "$(q "select count(*) from status_messages where msg_id=8301")" = 0
dump pc3
check "AMT 6.0 renews through legacy SOAP (SetTLSKeyAndCertificate twice in all)" \
  test "$(audit_count pc3 'legacy SOAP SetTLSKeyAndCertificate: StatusCode 0')" = 2
check "AMT 6.0 gets no key generated inside AMT" test "$(audit_count pc3 'GenerateKeyPair')" = 0
check "R-WS-03: AMT 6.0 serves its new certificate" bash -c "[ \"\$(served_sha256 $NET.3)\" = '$(active_sha pc3)' ]"
check "R-REV-02c: AMT 6.0's first certificate is revoked Superseded, on the CRL" crl_has "$first_pc3" Superseded
check "AMT 6.0: AMT's store holds only the current web server certificate and its key" store_holds_only_current pc3
"$AMTPROV" -m "$SITE" cred list >"$T/creds1.txt" 2>&1
check "no web server key stored for the AMT-key devices" \
  bash -c "! grep -q 'device/pc1.contoso.com/web-key' '$T/creds1.txt' && ! grep -q 'device/pc2.contoso.com/web-key' '$T/creds1.txt'"
check "AMT 6.0's renewal key is stored" grep -q 'device/pc3.contoso.com/web-key' "$T/creds1.txt"
check "no amt-key record is left after the renewal commits" test "$(q "select count(*) from pending_ops where kind in ('amt-key','ca-submit')")" = 0
check "status 8205 says the key was generated inside AMT" \
  bash -c "'$AMTPROV' -m '$SITE' status --id 8205 --device pc1.contoso.com | grep -q 'generated inside AMT'"

# --- 2. key_source amtprov: a second renewal adds amtprov's key; AMT's old key goes.
key_source amtprov
due_clock
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "round 2 (key_source amtprov): amtprovd renews every device" daemon_once
check "round 2: all PROVISIONED again" test "$(q "select group_concat(state) from devices")" = "PROVISIONED,PROVISIONED,PROVISIONED"
for id in pc1 pc2 pc3; do
  dump $id
  check "R-WS-03: $id serves its second renewed certificate" bash -c "[ \"\$(served_sha256 $NET.${id#pc})\" = '$(active_sha $id)' ]"
  check "after two renewals $id's AMT store holds only the current web server certificate and key" store_holds_only_current $id
  check "$id has three web server certificates on record, one active" \
    test "$(n_certs_of $id):$(cert_field "$(fqdn $id)" active serial | wc -w)" = "3:1"
done
check "key_source amtprov: the key was added to pc1 (AddKey once), none generated" \
  test "$(audit_count pc1 'AddKey: key handle'):$(audit_count pc1 'GenerateKeyPair: key handle')" = "1:2"
check "AMT 6.0 renewed a second time through legacy SOAP" \
  test "$(audit_count pc3 'legacy SOAP SetTLSKeyAndCertificate: StatusCode 0')" = 3

# --- 3. SIGKILL while AMT generates the renewal key (its answer is 12 s late: the kill must
# land inside that window even when a loaded machine makes the dump polling slow). pc2, which
# renews beside pc1, is then inside its prune: AMT has deleted its superseded certificate but
# amtprovd still waits for that answer (amtsim drips it) and has not asked for the key pair.
# The certificate's InstanceID is in pc2's renewal twice: the TLS context leaves it, then it
# is deleted.
key_source auto
old_cert=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tls_remote"]["cert_handle"])' "$T/pc2.dump.json")
old_key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"][0]["handle"])' "$T/pc2.dump.json")
sim_stop
FAULTS="{\"pc2\": {\"hostile\": \"slow_drip\", \"hostile_nth\": 2,
  \"hostile_match\": \"Intel(r) AMT Certificate: Handle: $old_cert<\"}}" fleet pc1:12000
sim_start
dump pc1; gen_before=$(audit_count pc1 'GenerateKeyPair: key handle')
due_clock
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
start_daemon "$T/amtprovd.kill.log" -m "$SITE"
check "AMT starts generating pc1's renewal key" wait_for 40 bash -c \
  "'$AMTSIM' dump --control '$T/sim/control.sock' pc1 | python3 -c 'import json,sys; sys.exit(sum(\"GenerateKeyPair: key handle\" in e[\"event\"] for e in json.load(sys.stdin)[\"audit\"]) <= $gen_before)'"
check "AMT deletes pc2's superseded certificate (its answer held back)" wait_for 40 bash -c \
  "'$AMTSIM' dump --control '$T/sim/control.sock' pc2 | grep -q '\"certificate handle $old_cert deleted\"'"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
dump pc2
check "the kill came between pc2's certificate deletion and its key pair's" \
  test "$(audit_count pc2 "certificate handle $old_cert deleted"):$(audit_count pc2 "key handle $old_key deleted")" = 1:0
check "the kill came before amtprov learnt the handle (intent on record)" python3 - "$T/site/state/site.db" <<'PY'
import json, sqlite3, sys
rows = [json.loads(p) for (p,) in sqlite3.connect(sys.argv[1]).execute(
    "select p.payload from pending_ops p join devices d on d.id = p.device_id "
    "where p.kind = 'amt-key' and d.fqdn = 'pc1.contoso.com'")]
assert len(rows) == 1 and "before" in rows[0] and "handle" not in rows[0], rows
assert len(rows[0]["before"]) >= 1, "the renewal's record names the key AMT held already"
PY
check "the database is intact after SIGKILL" test "$(q "pragma integrity_check")" = ok
for _ in 1 2 3; do
  daemon_once
  [ "$(q "select count(*) from devices where state='PROVISIONED'")" = 3 ] && break
  sleep 2.2
done
check "R-PROV-13: after the restart every device is PROVISIONED" test "$(q "select group_concat(state) from devices")" = "PROVISIONED,PROVISIONED,PROVISIONED"
dump pc1
check "R-PROV-13: exactly one new key: GenerateKeyPair ran once more for pc1" \
  test "$(audit_count pc1 'GenerateKeyPair: key handle')" = $((gen_before + 1))
check "R-PROV-13: pc1 serves the certificate for the key AMT generated before the kill" served_key_is_amt pc1
check "R-PROV-13: pc1 has one active web server certificate, AMT holds it and one key" store_holds_only_current pc1
check "R-WS-03: pc1 serves its active certificate" bash -c "[ \"\$(served_sha256 $NET.1)\" = '$(active_sha pc1)' ]"
dump pc2
check "R-REV-02c: the restart deletes pc2's key pair whose certificate had gone already" \
  test "$(audit_count pc2 "key handle $old_key deleted")" = 1
check "R-REV-02c: pc2 holds only its current certificate and key after the restart" \
  store_holds_only_current pc2
check "no amt-key record left" test "$(q "select count(*) from pending_ops where kind='amt-key'")" = 0

# --- 4. AMT refuses pc2's renewal commit: PROVISIONED with its current certificate; the next
# evaluation installs the recorded one, no new request, no new key.
sim_stop; fleet pc2:5:2057; sim_start
due_clock
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "round 4: amtprovd runs the renewals" daemon_once
check "a refused renewal commit leaves pc2 PROVISIONED" test "$(q "select state from devices where fqdn='pc2.contoso.com'")" = PROVISIONED
check "it is reported (8301) as not finished" \
  bash -c "'$AMTPROV' -m '$SITE' status --id 8301 --device pc2.contoso.com | grep -q 'renewal not finished'"
check "pc2 has two active web server certificates (the new one not installed)" \
  test "$(cert_field pc2.contoso.com active serial | wc -w)" = 2
newest=$(q "select sha256 from certificates c join devices v on v.id=c.device_id where v.fqdn='pc2.contoso.com' and c.status='active' order by c.id desc limit 1")
check "pc2 still serves a certificate amtprov recorded as active" \
  bash -c "cert_field pc2.contoso.com active sha256 | grep -q \"\$(served_sha256 $NET.2)\""
dump pc2; gen2=$(audit_count pc2 'GenerateKeyPair: key handle'); n2=$(n_certs_of pc2)
sim_stop; fleet; sim_start
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "the next evaluation finishes the interrupted renewal" daemon_once
check "pc2 is PROVISIONED" test "$(q "select state from devices where fqdn='pc2.contoso.com'")" = PROVISIONED
check "R-WS-03: pc2 serves the certificate recorded by the interrupted renewal" \
  bash -c "[ \"\$(served_sha256 $NET.2)\" = '$newest' ]"
dump pc2
check "no new request and no new key for it" \
  test "$(n_certs_of pc2):$(audit_count pc2 'GenerateKeyPair: key handle')" = "$n2:$gen2"
check "R-REV-02c: pc2 has one active certificate; AMT holds it and one key" store_holds_only_current pc2
check "the renewal's amt-key record is dropped at its commit" test "$(q "select count(*) from pending_ops where kind='amt-key'")" = 0
check "no sanitizer report" no_sanitizer_reports "$T"/amtprovd.*.log "$T/amtsim.log"
finish
