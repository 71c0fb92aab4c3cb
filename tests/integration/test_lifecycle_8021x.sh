#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 802.1X client certificates after provisioning, with real certificates from ca-local bound
# in amtsim (a wired EAP-TLS profile "lan" and a wireless one "corp"). Each case checks
# ca-local's CRL, the site database (amtprov cert list --json) and what the device holds
# (amtsim dump):
#   R-REV-04 (02d)         block revokes the web server and the client certificates;
#   R-REV-04 (02a)         unprovision revokes them all and clears their keys;
#   R-REV-04 (02b)         provisioning that finds earlier client certificates of the device
#                          (its AMT was reset locally, provisioning retried) replaces and
#                          revokes them;
#   R-REV-04 + R-8021X-05  update with 802.1X templates configured: new client certificates,
#                          installed and bound per profile, the old ones revoked Superseded;
#   R-REV-03               ... while the web server certificate is NOT revoked;
#   R-8021X-06, R-WS-04    evaluate-certificates renews client certificates at 42 days left
#                          (not at 43): new key and certificate in AMT, the profiles re-bound
#                          through SET_8021X, the old serials on the CRL; not over wireless;
#                          the old certificates and their keys leave AMT's store (it holds the
#                          current client certificates' keys and the web server's, no other),
#                          named by handle in status 8205 and the audit trail;
#   R-PROV-13              ... even when amtprovd is killed between a certificate's deletion
#                          and its key pair's: the next run deletes the key (by the record).
# The clock is the test clock (AMTPROV_TEST_CLOCK_FILE): no sleeping.
TEST_NAME=lifecycle_8021x
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

make_provisioning_pki
check "amtsim serves five devices" start_fleet pc1 pc2 pc3 pc4 pc5
AMTSIM_PID=${PIDS[-1]}
LAB_CA_CONFIG='"client_validity_days": 60'
EXTRA_PLUGINS='"dot1x": {"plugin": "radius-8021x"}'
write_site '"maintenance": {"evaluate_certificates": {"interval_days": 7, "renew_within_days": 42}},
  "ieee8021x": {
    "plugin": "dot1x",
    "wired": {"name": "lan", "eap": "eap-tls", "server_ca": "'"$T"'/pki/root.pem",
              "server_name": "radius.contoso.com", "client_certificate": {"ca": "lab-ca"}},
    "wireless": [{"name": "corp", "ssid": "corp", "priority": 1, "security": "wpa2-enterprise",
                  "eap": "eap-tls", "server_ca": "'"$T"'/pki/root.pem",
                  "client_certificate": {"ca": "lab-ca"}}]}'
check "they register" register pc1 pc2 pc3 pc4 pc5
check "amtprovd provisions them" daemon_once
check "all five are PROVISIONED" bash -c 'for d in pc1 pc2 pc3 pc4 pc5; do [ "$(state_of $d.contoso.com)" = PROVISIONED ] || exit 1; done'

q() { sqlite3 "$T/site/state/site.db" "$1"; }
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.$2.json"; }
certs() { "$AMTPROV" -m "$SITE" --json cert list --device "$1.contoso.com" >"$T/$1.certs.$2.json"; }
# client SNAPSHOT PROFILE STATUS FIELD: FIELD of the client certificates of PROFILE in STATUS
client() {
  python3 -c 'import json,sys; print(" ".join(str(c[sys.argv[4]]) for c in json.load(open(sys.argv[1])) if c["purpose"]=="8021x-client" and c["profile"]==sys.argv[2] and c["status"]==sys.argv[3]))' "$@"
}
# web SNAPSHOT STATUS: serials of the web server certificates in STATUS
web() { python3 -c 'import json,sys; print(" ".join(c["serial"] for c in json.load(open(sys.argv[1])) if c["purpose"]=="web-server" and c["status"]==sys.argv[2]))' "$@"; }
not_after_max() { python3 -c 'import calendar,json,sys,time; print(max(calendar.timegm(time.strptime(c["not_after"], "%Y-%m-%dT%H:%M:%SZ")) for c in json.load(open(sys.argv[1])) if c["purpose"]=="8021x-client" and c["status"]=="active"))' "$1"; }
# bound DUMP CERTS: the device binds "lan" and "corp" to exactly the active client
# certificates the database records for them, and holds none of the others
bound() {
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, json, sys
d, certs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
active = {c["profile"]: c["sha256"].upper() for c in certs if c["purpose"] == "8021x-client" and c["status"] == "active"}
others = {c["sha256"].upper() for c in certs if c["purpose"] == "8021x-client" and c["status"] != "active"}
held = {c["handle"]: hashlib.sha256(base64.b64decode(c["der"])).hexdigest().upper() for c in d["certificates"] if c.get("der")}
assert sorted(active) == ["corp", "lan"], active
assert held.get(d["ieee8021x"]["client_cert_handle"]) == active["lan"], "lan is not bound to its active certificate"
w = {p["name"]: p for p in d["wifi_profiles"]}
assert held.get(w["corp"]["client_cert_handle"]) == active["corp"], "corp is not bound to its active certificate"
assert not others & set(held.values()), "the device still holds a replaced client certificate"
PY
}
# replaced OLD NEW: both profiles have an active client certificate in snapshot NEW, another
# than the one active in snapshot OLD
replaced() {
  python3 - "$1" "$2" <<'PY'
import json, sys
old, new = (json.load(open(f)) for f in sys.argv[1:])
active = lambda certs, p: [c["serial"] for c in certs if c["purpose"] == "8021x-client" and c["profile"] == p and c["status"] == "active"]
for p in ("lan", "corp"):
    assert len(active(new, p)) == 1 and active(new, p) != active(old, p), (p, active(old, p), active(new, p))
PY
}
all_bound() { local d; for d in "$@"; do bound "$T/$d.run1.json" "$T/$d.certs.run1.json" || return 1; done; }
# revoked_on_crl SNAPSHOT SERIAL...: each is revoked, reason 4, in the database and on the
# CRL with reason Superseded
revoked_on_crl() {
  local snap=$1 s; shift
  for s in "$@"; do
    python3 -c 'import json,sys; c=[x for x in json.load(open(sys.argv[1])) if x["serial"]==sys.argv[2]]; assert len(c)==1 and c[0]["status"]=="revoked" and c[0]["revocation_reason"]==4, c' "$snap" "$s" || return 1
    crl_has "$s" Superseded || { echo "serial $s is not on the CRL as Superseded" >&2; return 1; }
  done
}
for d in pc1 pc2 pc3 pc4 pc5; do certs $d run1; dump $d run1; done
check "R-8021X-04: each device binds lan and corp to its own active client certificate" all_bound pc1 pc2 pc3 pc4 pc5

# ---- R-REV-04 with R-REV-02d: block
lan_b=$(client "$T/pc2.certs.run1.json" lan active serial); corp_b=$(client "$T/pc2.certs.run1.json" corp active serial)
web_b=$(web "$T/pc2.certs.run1.json" active)
check "device block pc2" bash -c "'$AMTPROV' -m '$SITE' device block pc2.contoso.com | grep -q BLOCKED"
check "its three certificates are queued at once" test "$(q "select count(*) from pending_ops where kind='revoke'")" = 3
check "amtprovd runs the revocation task" daemon_once
certs pc2 blk
check "R-REV-04 (block): client and web server certificates revoked Superseded (database, CRL)" \
  revoked_on_crl "$T/pc2.certs.blk.json" "$lan_b" "$corp_b" "$web_b"

# ---- R-REV-04 with R-REV-02a: unprovision
lan_u=$(client "$T/pc3.certs.run1.json" lan active serial); corp_u=$(client "$T/pc3.certs.run1.json" corp active serial)
web_u=$(web "$T/pc3.certs.run1.json" active)
check "device unprovision pc3" bash -c "'$AMTPROV' -m '$SITE' device unprovision pc3.contoso.com | grep -q NEED_UNPROVISION"
check "amtprovd unprovisions it" daemon_once
certs pc3 unp; dump pc3 unp
check "pc3 is UNPROVISIONED, its AMT fully unprovisioned (amtsim: pre)" bash -c \
  "[ \"\$(state_of pc3.contoso.com)\" = UNPROVISIONED ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))[\"provisioning_state\"]==\"pre\"' '$T/pc3.unp.json'"
check "R-REV-04 (unprovision): client and web server certificates revoked Superseded (database, CRL)" \
  revoked_on_crl "$T/pc3.certs.unp.json" "$lan_u" "$corp_u" "$web_u"
check "R-REV-04 (unprovision): AMT holds none of its client certificates" python3 - "$T/pc3.unp.json" "$T/pc3.certs.unp.json" <<'PY'
import base64, hashlib, json, sys
d, certs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
held = {hashlib.sha256(base64.b64decode(c["der"])).hexdigest().upper() for c in d["certificates"] if c.get("der")}
assert not held & {c["sha256"].upper() for c in certs if c["purpose"] == "8021x-client"}
PY
check "its 802.1X client keys are cleared with its other secrets" bash -c "! '$AMTPROV' -m '$SITE' cred list | grep -q 'device/pc3'"
# (pc4's 802.1X keys are inside AMT, R-PROV-06: its admin password stands for its secrets.)
check "another device keeps its secrets" bash -c "'$AMTPROV' -m '$SITE' cred list | grep -q 'device/pc4.contoso.com/'"

# ---- R-REV-04 with R-REV-02b: provisioning finds earlier client certificates
# pc4's AMT is reset locally (amtsim forgets the device: its state file goes; the fleet keeps
# its UUID, as the SMBIOS UUID survives a reset) and its agent runs again (new OTP): the
# known device re-registers (docs/states.md) and provisioning starts over from REGISTERED.
lan_p=$(client "$T/pc4.certs.run1.json" lan active serial); corp_p=$(client "$T/pc4.certs.run1.json" corp active serial)
web_p=$(web "$T/pc4.certs.run1.json" active)
# The restart also arms pc5 for the renewal below: AMT answers the deletion of its "lan"
# certificate one byte per second, so amtprovd can be killed after AMT deleted it and before
# amtprovd asked for the key pair (R-PROV-13).
# key_of DUMP CERT_HANDLE: the handle of the key pair certificate CERT_HANDLE carries
key_of() {
  python3 - "$@" <<'PY'
import base64, json, subprocess, sys
d, h = json.load(open(sys.argv[1])), int(sys.argv[2])
der = base64.b64decode([c["der"] for c in d["certificates"] if c["handle"] == h][0])
pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=der, capture_output=True).stdout.decode()
print(*[k["handle"] for k in d["keys"] if "".join(k["public_pem"].split()) == "".join(pub.split())])
PY
}
lan5_cert=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ieee8021x"]["client_cert_handle"])' "$T/pc5.run1.json")
lan5_key=$(key_of "$T/pc5.run1.json" "$lan5_cert")
check "amtsim dump tells pc5's lan key pair by its public half" test -n "$lan5_key"
kill "$AMTSIM_PID"; wait "$AMTSIM_PID" 2>/dev/null
rm -f "$T/sim/pc4.json" "$T/sim/control.sock"
python3 - "$T/fleet.json" "$T/pc4.agent.json" "Intel(r) AMT Certificate: Handle: $lan5_cert<" <<'PY'
import json, sys
fleet, agent = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for d in fleet["devices"]:
    if d["id"] == "pc4":
        d["uuid"] = agent["uuid"]
    if d["id"] == "pc5":
        d["faults"] = {"hostile": "slow_drip", "hostile_drip_ms": 1000, "hostile_match": sys.argv[3]}
json.dump(fleet, open(sys.argv[1], "w"))
PY
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
AMTSIM_PID=$!; PIDS+=("$AMTSIM_PID")
check "amtsim restarts with pc4 reset" wait_for 20 test -S "$T/sim/control.sock"
cp "$T/pc4.agent.json" "$T/pc4.agent1.json"
reregistered() {
  register pc4 && "$AMTPROV" -m "$SITE" device show pc4.contoso.com | grep -q 'PROVISIONED -> REGISTERED: re-registered'
}
new_otp() {
  [ "$(q "select otp_hash from devices where fqdn='pc4.contoso.com'")" = \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["otp_hash"])' "$T/pc4.agent.json")" ] &&
    ! cmp -s "$T/pc4.agent.json" "$T/pc4.agent1.json"
}
check "pc4's agent registers again: re-registered from PROVISIONED" reregistered
check "... with its new OTP hash" new_otp
set_clock $(( $(now) + 3600 ))
check "amtprovd provisions pc4 again" daemon_once
check "pc4 is PROVISIONED" test "$(state_of pc4.contoso.com)" = PROVISIONED
certs pc4 again; dump pc4 again
lan_p2=$(client "$T/pc4.certs.again.json" lan active serial); corp_p2=$(client "$T/pc4.certs.again.json" corp active serial)
check "R-REV-04: provisioning did not reuse the earlier client certificates" \
  replaced "$T/pc4.certs.run1.json" "$T/pc4.certs.again.json"
check "R-REV-04 (provisioning finds earlier ones): revoked Superseded (database, CRL), as the earlier web server certificate (R-REV-02b)" \
  revoked_on_crl "$T/pc4.certs.again.json" "$lan_p" "$corp_p" "$web_p"
check "R-8021X-04: the re-provisioned device binds its new certificates" bound "$T/pc4.again.json" "$T/pc4.certs.again.json"

# ---- R-REV-04 + R-8021X-05 + R-REV-03: update with 802.1X templates configured (wired)
lan1=$(client "$T/pc1.certs.run1.json" lan active serial); corp1=$(client "$T/pc1.certs.run1.json" corp active serial)
web1=$(web "$T/pc1.certs.run1.json" active)
set_clock $(( $(now) + 3600 ))
check "device update pc1" bash -c "'$AMTPROV' -m '$SITE' device update pc1.contoso.com | grep -q NEED_UPDATE"
check "the update request marks the client certificates it replaces" \
  test "$(q "select count(*) from pending_ops where kind='8021x-update'")" = 1
check "amtprovd updates pc1" daemon_once
check "pc1 is PROVISIONED after the update" test "$(state_of pc1.contoso.com)" = PROVISIONED
certs pc1 upd; dump pc1 upd
lan2=$(client "$T/pc1.certs.upd.json" lan active serial); corp2=$(client "$T/pc1.certs.upd.json" corp active serial)
check "R-8021X-05: the updated device has new client certificates for lan and corp" \
  replaced "$T/pc1.certs.run1.json" "$T/pc1.certs.upd.json"
check "R-REV-04: the old ones are revoked, reason Superseded, in the database and on ca-local's CRL" \
  revoked_on_crl "$T/pc1.certs.upd.json" "$lan1" "$corp1"
check "R-REV-04: the new ones are not on the CRL" bash -c "! crl_has '$lan2' '' && ! crl_has '$corp2' ''"
check "R-8021X-04: AMT binds each profile to its new certificate and no longer holds the old ones" \
  bound "$T/pc1.upd.json" "$T/pc1.certs.upd.json"
check "R-REV-03: the web server certificate is the same one, active" test "$(web "$T/pc1.certs.upd.json" active)" = "$web1"
check "R-REV-03: it is not on the CRL" bash -c "! crl_has '$web1' ''"
check "R-REV-03: amtsim still serves it" bash -c "[ \"\$(served_sha256 $NET.1)\" = \"\$(cert_field pc1.contoso.com active sha256)\" ]"
check "the update revoked pc1's two old client certificates and nothing else" \
  test "$(q "select count(*) from certificates where status='revoked' and revoked_at >= $(now)")" = 2
check "the update's mark is gone, no request or revocation left in flight" \
  test "$(q "select count(*) from pending_ops where kind like '8021x%' or kind='revoke'")" = 0

# ---- R-8021X-06, R-WS-04: renewal of client certificates on the test clock
# pc5 holds the client certificates of the first run (60 days); pc4's are an hour younger,
# pc1's two hours. pc2 (blocked) and pc3 (unprovisioned) are not PROVISIONED.
na5=$(not_after_max "$T/pc5.certs.run1.json"); na4=$(not_after_max "$T/pc4.certs.again.json")
lan5=$(client "$T/pc5.certs.run1.json" lan active serial); corp5=$(client "$T/pc5.certs.run1.json" corp active serial)
web5=$(web "$T/pc5.certs.run1.json" active)
set_clock $(( na5 - 43 * 86400 ))
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "R-8021X-06: the task runs at 43 days" daemon_once
certs pc5 d43
check "R-8021X-06: at 43 days pc5's client certificates are left alone" \
  test "$(client "$T/pc5.certs.d43.json" lan active serial) $(client "$T/pc5.certs.d43.json" corp active serial)" = "$lan5 $corp5"
check "... and nothing was due on any device" bash -c "'$AMTPROV' -m '$SITE' --json task list | grep -q ' 0 due for renewal'"
check "issue 17: the task counts every certificate it checked, 802.1X ones too (3 devices x 3)" \
  bash -c "'$AMTPROV' -m '$SITE' --json task list | grep -q '9 certificates of 3 devices checked'"
set_clock $(( na5 - 42 * 86400 ))
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
start_daemon "$T/amtprovd.kill.log" -m "$SITE" --once=120
check "R-PROV-13: amtprovd renews pc5 until AMT deletes its old lan certificate (answer held back)" \
  wait_for 60 bash -c "'$AMTSIM' dump --control '$T/sim/control.sock' pc5 | grep -q '\"certificate handle $lan5_cert deleted\"'"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
dump pc5 kill
deleted() { python3 -c 'import json,sys; print(sum(e["event"] == sys.argv[2] for e in json.load(open(sys.argv[1]))["audit"]))' "$@"; }
check "... and is killed before it asks for that certificate's key pair" \
  test "$(deleted "$T/pc5.kill.json" "certificate handle $lan5_cert deleted"):$(deleted "$T/pc5.kill.json" "key handle $lan5_key deleted")" = 1:0
check "R-8021X-06: amtprovd runs again and finishes the renewal" daemon_once
check "pc5 is PROVISIONED again" test "$(state_of pc5.contoso.com)" = PROVISIONED
certs pc5 d42; dump pc5 d42
lan6=$(client "$T/pc5.certs.d42.json" lan active serial); corp6=$(client "$T/pc5.certs.d42.json" corp active serial)
check "R-8021X-06: pc5 has new client certificates for lan and corp" \
  replaced "$T/pc5.certs.run1.json" "$T/pc5.certs.d42.json"
check "R-8021X-06: the old serials are revoked Superseded (database) and on ca-local's CRL" \
  revoked_on_crl "$T/pc5.certs.d42.json" "$lan5" "$corp5"
check "R-8021X-06: the new serials are not on the CRL" bash -c "! crl_has '$lan6' '' && ! crl_has '$corp6' ''"
check "R-8021X-06: amtsim binds each profile (SET_8021X) to its renewed certificate, the old ones gone" \
  bound "$T/pc5.d42.json" "$T/pc5.certs.d42.json"
check "R-8021X-06: the renewed wired certificate has a new key" python3 - "$T/pc5.run1.json" "$T/pc5.d42.json" <<'PY'
import base64, json, subprocess, sys
def pub(d, h):
    der = base64.b64decode([c["der"] for c in d["certificates"] if c["handle"] == h][0])
    return subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=der, capture_output=True).stdout
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert pub(a, a["ieee8021x"]["client_cert_handle"]) != pub(b, b["ieee8021x"]["client_cert_handle"])
PY
# R-PROV-06: key_source auto on AMT >= 9: the renewal's keys are generated inside AMT too.
# amtsim writes its state file (with the key PEMs) once a second.
renewed_keys_in_amt() {
  python3 - "$T/pc5.d42.json" "$T/sim/pc5.json" <<'PY'
import base64, json, subprocess, sys
d, state = (json.load(open(f)) for f in sys.argv[1:])
run = lambda args, data: subprocess.run(args, input=data, capture_output=True).stdout
audit = [e["event"] for e in d["audit"]]
assert not any(e.startswith("AddKey") for e in audit), audit
generated = {int(e.rsplit(" ", 1)[1]) for e in audit if e.startswith("GenerateKeyPair: key handle")}
pubs = {run(["openssl", "pkey", "-pubout"], k["pem"].encode()): k["handle"] for k in state["keys"]}
certs = {c["handle"]: c for c in d["certificates"]}
bound = [d["ieee8021x"]["client_cert_handle"]] + [p["client_cert_handle"] for p in d["wifi_profiles"]]
assert len(bound) == 2, bound
for h in bound:
    pem = run(["openssl", "x509", "-inform", "DER"], base64.b64decode(certs[h]["der"]))
    pub = run(["openssl", "x509", "-pubkey", "-noout"], pem)
    assert pubs.get(pub) in generated, (h, "not a key AMT generated")
PY
}
check "R-8021X-06 with R-PROV-06: the renewed client certificates' keys were generated inside AMT (no AddKey)" \
  wait_for 5 renewed_keys_in_amt
# only_current_keys OLD NEW: AMT (live, NEW) holds exactly the keys of the bound client
# certificates and of the web server certificate; the keys of the ones bound in OLD are gone,
# and the audit trail names each of their handles as deleted.
only_current_keys() {
  "$AMTPROV" -m "$SITE" --json device show pc5.contoso.com >"$T/pc5.show.json" &&
  python3 - "$1" "$2" "$T/pc5.show.json" <<'PY'
import base64, json, subprocess, sys
old, new, show = (json.load(open(f)) for f in sys.argv[1:])
norm = lambda pem: "".join(pem.split())
def pub(d, h):
    der = base64.b64decode([c["der"] for c in d["certificates"] if c["handle"] == h][0])
    return norm(subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=der,
                               capture_output=True, check=True).stdout.decode())
bound = lambda d: [d["ieee8021x"]["client_cert_handle"]] + [p["client_cert_handle"] for p in d["wifi_profiles"]]
want = {pub(new, h) for h in bound(new) + [new["tls_remote"]["cert_handle"]]}
held = [norm(k["public_pem"]) for k in new["keys"]]
assert len(want) == 3 and sorted(held) == sorted(want), ("AMT holds other keys", len(held), len(want))
old_keys = [k["handle"] for k in old["keys"] if norm(k["public_pem"]) in {pub(old, h) for h in bound(old)}]
assert len(old_keys) == 2, old_keys
pruned = ", ".join(a["detail"] for a in show["audit"] if a["action"] == "amt.store-pruned")
for h in old_keys:
    assert "Intel(r) AMT Key: Handle: %d," % h in pruned + ",", ("not audited", h, pruned)
PY
}
check "R-8021X-06, R-REV-04, R-PROV-13: AMT holds the renewed client certificates' keys and the web server's, the old keys are deleted (audited by handle)" \
  only_current_keys "$T/pc5.run1.json" "$T/pc5.d42.json"
check "R-PROV-13: the key pair of the certificate deleted before the kill is deleted once, after it" \
  test "$(deleted "$T/pc5.d42.json" "key handle $lan5_key deleted")" = 1
check "status 8205 names the deleted key pairs" bash -c "'$AMTPROV' -m '$SITE' status --id 8205 --device pc5.contoso.com | grep -q 'key pairs Intel(r) AMT Key: Handle: '"
check "the web server certificate (82 days left) is not renewed with them" \
  test "$(web "$T/pc5.certs.d42.json" active)" = "$web5"
check "status 8205 reports the client renewal" bash -c "'$AMTPROV' -m '$SITE' status --id 8205 --device pc5.contoso.com | grep -q '802.1X client'"
check "pc4 (42 days and an hour left) is not renewed yet" \
  test "$(q "select count(*) from certificates c join devices d on d.id = c.device_id where d.fqdn = 'pc4.contoso.com' and c.status = 'active' and c.purpose = 2")" = 2
# pc4 is now reached over wireless only: an hour later its certificates are due, not renewed.
q "update devices set wireless_capable = 1, wired_ip = '' where fqdn = 'pc4.contoso.com'"
set_clock $(( na4 - 42 * 86400 ))
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "the task runs again an hour later" daemon_once
certs pc4 d42
check "R-WS-04: pc4 over wireless keeps its client certificates" \
  test "$(client "$T/pc4.certs.d42.json" lan active serial) $(client "$T/pc4.certs.d42.json" corp active serial)" = "$lan_p2 $corp_p2"
check "R-WS-04: status 8206 reports it" bash -c "'$AMTPROV' -m '$SITE' status --id 8206 --device pc4.contoso.com | grep -q 'R-8021X-06'"
certs pc1 end
check "pc1's client certificates (an hour younger still) are not renewed" \
  test "$(client "$T/pc1.certs.end.json" lan active serial) $(client "$T/pc1.certs.end.json" corp active serial)" = "$lan2 $corp2"
check "no secret in amtprovd's logs" bash -c "! grep -q 'PRIVATE KEY' '$T'/amtprovd.*.log"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"
finish
