#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end, second stage (R-PROV-11 2-3, R-8021X): amtprovd provisions simulated devices
# with a power policy, the web UI off, a wired EAP-TLS profile and two wireless profiles
# through the radius-8021x plugin and ca-local, the client keys generated inside AMT
# (key_source auto, AMT >= 9, R-PROV-06: GenerateKeyPair, no AddKey). Checked on the devices (amtsim dump): the
# power scheme, the web UI, the 802.1X settings, each profile bound to its own client
# certificate (R-8021X-04) and the credential contexts. Then a real FreeRADIUS on loopback
# accepts the issued client certificate with EAP-TLS (eapol_test), and once provisioning runs
# again with another template (and key_source amtprov: amtprov's key, AddKey), the superseded
# certificate is revoked at ca-local (R-REV-04)
# and FreeRADIUS, given the new CRL, refuses it while it accepts the new one (R-8021X-07).
# A second run with an unchanged manifest changes nothing (R-PROV-13).
TEST_NAME=e2e_8021x
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/radius_lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
radius_tools || { fail "freeradius, eapol_test and sqlite3 are installed"; finish; exit 1; }

pki="$T/pki"
make_prov_pki "$pki"
# The RADIUS server's own CA and certificate (radius.contoso.com): AMT trusts this root.
radius_pki "$pki"

mkdir -p "$T/sim"
cat >"$T/fleet.json" <<JSON
{ "key_pool": 4, "keygen_latency_ms": 20,
  "devices": [
    { "id": "pc1", "address": "$NET.1", "amt_version": "12.0.45", "provisioning_state": "in",
      "host_name": "pc1", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "pc2", "address": "$NET.2", "amt_version": "16.1.25", "provisioning_state": "in",
      "host_name": "pc2", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] }
  ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

# $1: the wired profile's template ("" for the CA's default); $2: key_source (default auto).
write_manifest() {
  local tmpl=${1:+, \"template\": \"$1\"} ks=${2:-auto}
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "e2e-8021x", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"},
    "dot1x": {"plugin": "radius-8021x", "config": {"pxe_timeout": 60}}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer", "key_source": "$ks"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "power_policy": "on-in-s0-s3-s4-5", "web_ui": false,
          "serial_over_lan": true, "ide_redirection": false, "ping": true},
  "ieee8021x": {
    "plugin": "dot1x",
    "wired": {"name": "lan", "eap": "eap-tls", "server_ca": "$pki/radius-ca.pem",
              "server_name": "radius.contoso.com",
              "client_certificate": {"ca": "lab-ca"$tmpl}},
    "wireless": [
      {"name": "corp", "ssid": "corp", "priority": 1, "security": "wpa2-enterprise", "eap": "eap-tls",
       "server_ca": "$pki/radius-ca.pem", "client_certificate": {"ca": "lab-ca"}},
      {"name": "guest", "ssid": "guest", "priority": 2, "security": "wpa2-enterprise",
       "eap": "peap-mschapv2", "username": "amt", "password": "wifi/guest"}
    ]
  }
}
JSON
}
write_manifest ""
M="$T/site/site.json"
"$AMTPROV" -m "$M" db init >/dev/null
printf 'Guest-PEAP-pw1' | "$AMTPROV" -m "$M" cred set wifi/guest --stdin >/dev/null
for id in pc1 pc2; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$M" device add --from-json "$T/$id.agent.json" >/dev/null
done

expect_rc 0 "amtprovd provisions the fleet" "$AMTPROVD" -m "$M" --once=120 2>"$T/amtprovd.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
"$AMTPROV" -m "$M" --json device list >"$T/devices.json"
check "every device is PROVISIONED" \
  python3 -c 'import json,sys; s=[x["state"] for x in json.load(open(sys.argv[1]))]; print(s) if set(s)!={"PROVISIONED"} else None; assert s==["PROVISIONED"]*2' "$T/devices.json"
grep -E "FAILED|802.1X|error" "$T/amtprovd.log" | head -5 >&2

dump() { for id in pc1 pc2; do "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.$1.json"; done; }
dump run1
"$AMTPROV" -m "$M" --json cert list --purpose 8021x-client >"$T/certs1.json"

check "R-PROV-11 (2): power policy = the device's scheme ON in S0, ME Wake in S3, S4-5" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["power_scheme"]=="SCHEME 2" for f in sys.argv[1:])' "$T"/pc*.run1.json
check "R-PROV-11 (2): the web UI is off" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["web_ui_enabled"] is False for f in sys.argv[1:])' "$T"/pc*.run1.json
check "R-8021X-01/02: two client certificates per device (wired + corp; PEAP guest needs none), clientAuth, active" \
  python3 - "$T/certs1.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 4, c
assert all(x["status"] == "active" for x in c)
assert sorted(x["profile"] for x in c) == ["corp", "corp", "lan", "lan"], c
PY
check "R-8021X-04: each profile is bound to its own certificate, the one amtprov recorded" \
  python3 - "$T/certs1.json" "$T"/pc*.run1.json <<'PY'
import base64, hashlib, json, sys
recorded = {c["sha256"].upper(): c["profile"] for c in json.load(open(sys.argv[1]))}
for f in sys.argv[2:]:
    d = json.load(open(f))
    certs = {c["handle"]: c for c in d["certificates"]}
    def profile_of(h):
        return recorded.get(hashlib.sha256(base64.b64decode(certs[h]["der"])).hexdigest().upper())
    x = d["ieee8021x"]
    assert x["enabled"] and x["protocol"] == 0 and x["ips_enabled"] == 2, x
    assert x["pxe_timeout"] == 60 and x["server_cert_name"] == "radius.contoso.com", x
    assert profile_of(x["client_cert_handle"]) == "lan", (f, x)
    assert certs[x["root_cert_handle"]]["trusted_root"], x
    w = {p["name"]: p for p in d["wifi_profiles"]}
    assert sorted(w) == ["corp", "guest"], w
    assert w["corp"]["auth_method"] == 7 and w["corp"]["ieee8021x_protocol"] == 0, w
    assert profile_of(w["corp"]["client_cert_handle"]) == "corp", (f, w)
    assert w["corp"]["client_cert_handle"] != x["client_cert_handle"]
    assert w["guest"]["client_cert_handle"] == 0 and w["guest"]["ieee8021x_protocol"] == 2, w
    ctx = {(c["type"], c["cert_handle"], c["providing"]) for c in d["credential_contexts"]}
    assert ("802.1X", x["client_cert_handle"], "Intel(r) AMT: 8021X Settings") in ctx, ctx
    assert ("WiFi", w["corp"]["client_cert_handle"], "Intel(r) AMT:IEEE 802.1x Settings corp") in ctx, ctx
    assert not any(t == "WiFi" and h == x["client_cert_handle"] for t, h, _ in ctx), ctx
PY
check "R-PROV-11 (3): the device audit shows the wireless radio on and the profiles added" \
  python3 -c 'import json,sys; a=[e["event"] for e in json.load(open(sys.argv[1]))["audit"]]; assert any("RequestStateChange(32769)" in e for e in a) and sum("AddWiFiSettings" in e for e in a)==2, a[-20:]' "$T/pc1.run1.json"
check "R-PROV-06: AMT >= 9 generates the client keys (GenerateKeyPair + GeneratePKCS10RequestEx for the web server and each client certificate), no AddKey" \
  python3 - "$T"/pc*.run1.json <<'PY'
import json, sys
for f in sys.argv[1:]:
    a = [e["event"] for e in json.load(open(f))["audit"]]
    assert sum(e.startswith("GenerateKeyPair: key handle") for e in a) == 3, (f, a)
    assert sum(e.startswith("GeneratePKCS10RequestEx") for e in a) == 3, (f, a)
    assert not any(e.startswith("AddKey") for e in a), (f, a)
PY
# amtsim writes its state file (with the key PEMs) once a second.
amt_keys_bound() {
  python3 - "$T" <<'PY'
import base64, json, subprocess, sys
t = sys.argv[1]
def run(args, data):
    return subprocess.run(args, input=data, capture_output=True).stdout
for dev in ("pc1", "pc2"):
    d = json.load(open(f"{t}/{dev}.run1.json"))
    state = json.load(open(f"{t}/sim/{dev}.json"))
    generated = {int(e["event"].rsplit(" ", 1)[1]) for e in d["audit"]
                 if e["event"].startswith("GenerateKeyPair: key handle")}
    pubs = {run(["openssl", "pkey", "-pubout"], k["pem"].encode()): k["handle"] for k in state["keys"]}
    certs = {c["handle"]: c for c in d["certificates"]}
    bound = [d["ieee8021x"]["client_cert_handle"]] + [p["client_cert_handle"] for p in d["wifi_profiles"] if p["client_cert_handle"]]
    assert len(bound) == 2, bound
    for h in bound:
        pem = run(["openssl", "x509", "-inform", "DER"], base64.b64decode(certs[h]["der"]))
        pub = run(["openssl", "x509", "-pubkey", "-noout"], pem)
        assert pub in pubs and pubs[pub] in generated, (dev, h, "its key is not one AMT generated")
PY
}
check "R-PROV-06: each bound client certificate's public key is a key AMT generated" wait_for 5 amt_keys_bound
check "no 802.1X request left in flight" \
  test "$(sqlite3 "$T/site/state/site.db" "select count(*) from pending_ops where kind like '8021x%'" 2>/dev/null)" = 0

# R-PROV-13: the second stage again, manifest unchanged: nothing new, nothing left over.
sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "update devices set state='NEED_SECOND_STAGE'"
expect_rc 0 "amtprovd runs the second stage again" "$AMTPROVD" -m "$M" --once=120 2>"$T/amtprovd2.log"
dump run2
"$AMTPROV" -m "$M" --json cert list --purpose 8021x-client >"$T/certs2.json"
check "R-PROV-13: a re-run reuses the client certificates (none issued, none superseded)" \
  cmp -s "$T/certs1.json" "$T/certs2.json"
check "R-PROV-13: a re-run leaves the same profiles, bindings and no stale certificate" \
  python3 - "$T/pc1.run1.json" "$T/pc1.run2.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
key = lambda d: (d["ieee8021x"]["client_cert_handle"], sorted((p["name"], p["client_cert_handle"]) for p in d["wifi_profiles"]), len(d["credential_contexts"]))
assert key(a) == key(b), (key(a), key(b))
assert len(a["certificates"]) == len(b["certificates"]), (len(a["certificates"]), len(b["certificates"]))
PY

# ---- FreeRADIUS: EAP-TLS with the issued certificate (R-8021X-07) ----
LABCA="$T/site/state/plugins/lab-ca"
radius_config "$T/radius" "$pki"
rad=$RAD
cat "$LABCA/root.pem" "$LABCA/issuing.pem" >"$rad/clients-ca.pem"
# ca-local's current CRL next to its CA certificates, for FreeRADIUS
radius_crl() { radius_cadir "$LABCA/root.pem" "$LABCA/issuing.pem" "$LABCA/crl.pem"; }
# client_pair DEVICE HANDLE OUT [RUN]: the certificate and the key AMT holds for it
client_pair() { client_pair_of "$T/sim/$1.json" "$T/$1.run${4:-1}.json" "$2" "$3"; }

WIRED1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ieee8021x"]["client_cert_handle"])' "$T/pc1.run1.json")
check "the wired client certificate's key is in AMT" wait_for 5 client_pair pc1 "$WIRED1" "$rad/wired1"
radius_crl
check "FreeRADIUS starts on $NET.200:$RADIUS_PORT" radius_start
check "R-8021X-07: FreeRADIUS accepts the issued client certificate (EAP-TLS)" eap_tls wired1 "$rad/wired1" pc1.contoso.com
radius_stop

# R-REV-04: provisioning again with another template supersedes the wired certificate; with
# key_source "amtprov" its new key is made by amtprov and added (the path for old firmware).
write_manifest "AMT8021XClient" amtprov
sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "update devices set state='NEED_SECOND_STAGE'"
expect_rc 0 "amtprovd runs the second stage with the new template" "$AMTPROVD" -m "$M" --once=120 2>"$T/amtprovd3.log"
dump run3
"$AMTPROV" -m "$M" --json cert list --purpose 8021x-client >"$T/certs3.json"
check "R-REV-04: the superseded wired certificates are revoked (reason 4), new ones active" \
  python3 - "$T/certs3.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
lan = [x for x in c if x["profile"] == "lan"]
assert sorted(x["status"] for x in lan) == ["active", "active", "revoked", "revoked"], lan
assert all(x["revocation_reason"] == 4 for x in lan if x["status"] == "revoked"), lan
assert all(x["template"] == "AMT8021XClient" for x in lan if x["status"] == "active"), lan
assert [x["status"] for x in c if x["profile"] == "corp"] == ["active", "active"], c
PY
check "the old certificate is gone from AMT, the new one is bound" python3 - "$T/pc1.run1.json" "$T/pc1.run3.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
old, new = a["ieee8021x"]["client_cert_handle"], b["ieee8021x"]["client_cert_handle"]
assert old != new and new
assert old not in [c["handle"] for c in b["certificates"]]
PY
check "key_source amtprov: the new wired keys were added (AddKey), no key generated in AMT" \
  python3 - "$T"/pc*.run1.json "$T"/pc*.run3.json <<'PY'
import json, sys
def count(f, what):
    return sum(e["event"].startswith(what) for e in json.load(open(f))["audit"])
n = len(sys.argv[1:]) // 2
for a, b in zip(sys.argv[1:1 + n], sys.argv[1 + n:]):
    assert count(b, "AddKey: key handle") == 1, b
    assert count(b, "GenerateKeyPair") == count(a, "GenerateKeyPair"), (a, b)
PY
check "key_source amtprov: the wired key is in the credential store, corp's stays in AMT only" \
  bash -c "'$AMTPROV' -m '$M' cred list >'$T/creds3.txt' && grep -q 'device/pc1.contoso.com/8021x-lan-key' '$T/creds3.txt' && ! grep -q '8021x-corp-key' '$T/creds3.txt'"
WIRED3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ieee8021x"]["client_cert_handle"])' "$T/pc1.run3.json")
# amtsim writes its state file once a second: wait for the new key to be there.
check "the new wired certificate's key is in AMT" wait_for 5 client_pair pc1 "$WIRED3" "$rad/wired3" 3
radius_crl
check "ca-local's CRL lists the revoked serial" bash -c "openssl crl -in '$LABCA/crl.pem' -noout -text | grep -qi \"\$(openssl x509 -in '$rad/wired1.pem' -noout -serial | cut -d= -f2)\""
check "FreeRADIUS restarts with the new CRL" radius_start
refused() { ! eap_tls "$@"; }
check "R-8021X-07: FreeRADIUS refuses the revoked certificate" refused wired1-again "$rad/wired1" pc1.contoso.com
check "R-8021X-07: ... because it is revoked (FreeRADIUS: certificate revoked; eapol_test: FAILURE)" \
  bash -c "grep -q 'certificate revoked' '$rad/fr.log' && tail -1 '$rad/et-wired1-again.log' | grep -q FAILURE"
check "R-8021X-07: the new certificate is accepted" eap_tls wired3 "$rad/wired3" pc1.contoso.com
radius_stop
check "no secret in amtprovd's logs" bash -c "! grep -q 'PRIVATE KEY\|Guest-PEAP-pw1' '$T'/amtprovd*.log"
check "no sanitizer report (amtprovd re-runs)" no_sanitizer_reports "$T/amtprovd2.log" "$T/amtprovd3.log"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
