#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end (seed 003, R-PROV-01..13): simulated AMT devices registered by their agents are
# provisioned by amtprovd through the real plugins (amt-transport, ca-local, credstore-file)
# and the results are checked on the devices themselves through amtsim's state dump: time
# and host name set, the web server certificate installed and TLS on, a new admin password
# (kept encrypted, R-PROV-12), MEBx password and a Digest user account set, state
# post-provisioning; and no secret the test knows (OTPs, admin, MEBx and Digest passwords,
# provisioning and web server keys) appears in amtprovd's log or unencrypted in the
# credential store, raw, base64 or hex.
TEST_NAME=e2e_provision
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
# A loopback /24 of our own (claim_net, lib.sh).
claim_net

pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH (lib.sh)

# Three devices: two current firmware versions and one CSME 16 device.
check "amtsim serves the fleet" start_fleet_sim 4 20 "$(fleet_dev pc1 "$NET.1" 11.8.50)" \
  "$(fleet_dev pc2 "$NET.2" 12.0.45)" "$(fleet_dev pc3 "$NET.3")"
make_lab_site e2e '"mebx_password": "site/mebx"' '"mebx_password_policy": "always",
          "user_accounts": [{"name": "helpdesk", "kerberos": false, "password": "site/helpdesk",
                             "realms": ["redirection", "hardware-asset"]}]'
# Secrets the test knows, as "label<TAB>value" lines for secret_scan.py (0600).
SECRETS="$T/secrets.tsv"
install -m 600 /dev/null "$SECRETS"
printf 'M3bx-Str0ng!Pw' | "$AMTPROV" -m "$T/site/site.json" cred set site/mebx --stdin
printf 'D1gest-Helpdesk-Pw9' | "$AMTPROV" -m "$T/site/site.json" cred set site/helpdesk --stdin
printf 'mebx\tM3bx-Str0ng!Pw\ndigest helpdesk\tD1gest-Helpdesk-Pw9\n' >>"$SECRETS"
python3 -c 'import sys; print("provisioning key\t" + open(sys.argv[1]).read().replace("\n", "\\n"))' "$pki/prov.key" >>"$SECRETS"
run_agents pc1 pc2 pc3
# The OTP each agent set, from the simulator's own state (amtprov only ever sees its hash
# from the agent, and the OTP itself from the device).
check "the agents' OTPs are known to the test" python3 - "$SECRETS" "$T/sim" <<'PY'
import json, sys
with open(sys.argv[1], "a") as out:
    for id in ("pc1", "pc2", "pc3"):
        otp = json.load(open("%s/%s.json" % (sys.argv[2], id)))["otp"]
        assert len(otp) >= 8, id
        out.write("OTP %s\t%s\n" % (id, otp))
PY
check "R-PROV-02/03: every device registers as its agent reports it" bash -c "
  for id in pc1 pc2 pc3; do '$AMTPROV' -m '$T/site/site.json' device add --from-json '$T/'\$id.agent.json >/dev/null || exit 1; done"

expect_rc 0 "amtprovd provisions the fleet" "$AMTPROVD" -m "$T/site/site.json" -l debug --once=120 2>"$T/amtprovd.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
"$AMTPROV" -m "$T/site/site.json" --json device list >"$T/devices.json"
check "every device is PROVISIONED" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=[x["state"] for x in d]; print(s) if set(s)!={"PROVISIONED"} else None; assert set(s)=={"PROVISIONED"} and len(s)==3' "$T/devices.json"

q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
check "R-PROV-10: each first provisioning says 8103 once and never 8110 DEVICE_UPDATED (issue 17)" \
  test "$(q "select count(*) from status_messages where msg_id=8103")/$(q "select count(*) from status_messages where msg_id=8110")" = 3/0
"$AMTPROV" -m "$T/site/site.json" report >"$T/report.txt"
"$AMTPROV" -m "$T/site/site.json" cert list >"$T/certs.all.txt"
"$AMTPROV" -m "$T/site/site.json" --json cert list >"$T/certs.all.json"
check "R-WS-01: report and cert list show each serial whole, as --json does (issue 17)" python3 - "$T/certs.all.json" "$T/report.txt" "$T/certs.all.txt" <<'PY'
import json, sys
serials = [c["serial"] for c in json.load(open(sys.argv[1]))]
report, listing = open(sys.argv[2]).read(), open(sys.argv[3]).read()
assert len(serials) == 3 and all(len(s) >= 32 for s in serials), serials
for s in serials:
    assert s in report and s in listing, (s, report, listing)
PY
"$AMTPROV" -m "$T/site/site.json" --json device show pc1.contoso.com >"$T/pc1.show.json"
check "--json times are ISO 8601 UTC, as the text output; 'never' is null (issue 17)" python3 - "$T/pc1.show.json" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
assert iso.match(d["state_since"]) and iso.match(d["created_at"]) and d["next_attempt_at"] is None, d
assert d["audit"] and all(iso.match(a["at"]) for a in d["audit"]), d["audit"]
assert d["certificates"] and all(iso.match(c["not_after"]) and c["revoked_at"] is None for c in d["certificates"]), d
PY
check "TOOK counts from the start of provisioning (the device left REGISTERED), not from registration (issue 17)" python3 - "$T/report.txt" "$T/site/state/site.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[2])
for fqdn, since, created in db.execute("select fqdn, state_since, created_at from devices"):
    start = db.execute("select max(at) from audit where device_id=(select id from devices where fqdn=?) and action='state' and detail like 'REGISTERED -> %'", (fqdn,)).fetchone()[0]
    line = [l for l in open(sys.argv[1]) if l.startswith(fqdn)][0]
    assert (" %ds " % (since - start)) in line, (line, since, start, created)
PY
for id in pc1 pc2 pc3; do "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.dump.json"; done
# Issue 13 (R-PROV-10, R-PROV-11): each request costs 100-500 ms of firmware time on real AMT.
# Counted by amtsim, answered requests (its 401 challenges apart) for one device of this fleet
# (AMT 11.8/12/16, key generated in AMT, MEBx password, one Digest account): 25. Phase 1
# (device check, key and request, first stage, commit): Get of AMT_SetupAndConfigurationService
# (state and OTP from one answer), Enumerate+Pull of the root hashes and of the key pairs,
# GenerateKeyPair, Get of the new key, GeneratePKCS10RequestEx, GetLow+SetHighAccuracyTimeSynch,
# Get of AMT_GeneralSettings (host name already as recorded: no Put; its DigestRealm serves
# SetAdminAclEntryEx), AddCertificate, Create of the TLS credential context, Get+Put of the TLS
# settings, SetAdminAclEntryEx, SetMEBxPassword, CommitChanges = 18. Phase 2: Get of
# AMT_GeneralSettings (realm), EnumerateUserAclEntries, AddUserAclEntryEx, RequestStateChange
# and Get+Put of AMT_RedirectionService, Get of AMT_GeneralSettings (ping on already: no Put)
# = 7. A change that adds a request on purpose updates this count and docs/benchmarks.md.
check "issue 13 (R-PROV-10/11): each device answered exactly 25 requests and 2 Digest challenges" \
  python3 -c 'import json,sys
r = {f: json.load(open(f))["runtime"] for f in sys.argv[1:]}
got = {f: (x["requests"] - x["challenges"], x["challenges"]) for f, x in r.items()}
assert len(got) == 3 and all(v == (25, 2) for v in got.values()), got' "$T"/pc*.dump.json
check "R-PROV-10 (6): every device is post-provisioning" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["provisioning_state"]=="post" for f in sys.argv[1:])' "$T"/pc*.dump.json
audit_has() { # device, text: the device's own audit shows the step happened
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert any(sys.argv[2] in e["event"] for e in a), sys.argv[2]' "$T/$1.dump.json" "$2"
}
for id in pc1 pc2 pc3; do
  check "R-PROV-07: $id accepted the provisioning certificate (CN vs DNS suffix)" audit_has "$id" "client certificate accepted"
  check "R-PROV-10 (1): $id's time was set" audit_has "$id" "SetHighAccuracyTimeSynch"
  check "R-PROV-10 (3): $id stores the key and certificate" audit_has "$id" "AddCertificate: handle"
  check "R-PROV-10 (4): $id got a new admin password" audit_has "$id" "SetAdminAclEntryEx"
  check "R-PROV-10 (6): $id committed" audit_has "$id" "CommitChanges: provisioned"
  check "R-PROV-11 (2): $id's redirection is as the manifest says (SOL on, IDER off)" audit_has "$id" "SOL on, IDER off"
done
check "R-PROV-10 (3): TLS is on with the installed certificate" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["tls_remote"]["enabled"] and json.load(open(f))["tls_remote"]["cert_handle"] for f in sys.argv[1:])' "$T"/pc*.dump.json
check "R-PROV-10 (2): host name and domain match the device record" \
  python3 -c 'import json,sys; d=[json.load(open(f)) for f in sys.argv[1:]]; assert sorted(x["host_name"]+"."+x["domain_name"] for x in d)==["pc1.contoso.com","pc2.contoso.com","pc3.contoso.com"]' "$T"/pc*.dump.json
"$AMTPROV" -m "$T/site/site.json" --json cert list --purpose web-server >"$T/certs.json"
check "R-WS-01: one active web server certificate per device is recorded" \
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert len(c)==3 and all(x["status"]=="active" for x in c)' "$T/certs.json"
check "R-PROV-13: the certificate AMT serves is the one amtprov recorded" python3 - "$T/certs.json" "$T"/pc*.dump.json <<'PY'
import base64, hashlib, json, sys
recorded = {c["sha256"].upper() for c in json.load(open(sys.argv[1]))}
for f in sys.argv[2:]:
    d = json.load(open(f))
    handle = d["tls_remote"]["cert_handle"]
    cert = [c for c in d["certificates"] if c.get("handle") == handle][0]
    der = base64.b64decode(cert["der"]) if "der" in cert else None
    if der is None:
        pem = cert["pem"]
        der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))
    assert hashlib.sha256(der).hexdigest().upper() in recorded, f
PY
for id in pc1 pc2 pc3; do
  check "R-PROV-10 (5): $id got the MEBx password" audit_has "$id" "SetMEBxPassword"
  check "R-PROV-11 (1): $id got the Digest account" audit_has "$id" "AddUserAclEntryEx"
done
# Every secret amtprov holds: the admin passwords it generated (read back with the store's
# key), the web server keys it sent to AMT (from the simulator's state).
/usr/bin/python3 "$(dirname "$0")/cred_read.py" "$T/site/state/plugins/creds" - >"$T/creds.tsv"
check "R-PROV-12: one admin password per device is in the store" \
  test "$(grep -c '^device/pc[123].contoso.com/admin	' "$T/creds.tsv")" = 3
grep '^device/.*/admin	' "$T/creds.tsv" >>"$SECRETS"
# amtsim writes a device's state file up to a second after the change: wait until each
# holds the key AMT was given before reading them.
sim_has_keys() {
  python3 -c 'import json,sys; assert all(json.load(open(f)).get("keys") for f in sys.argv[1:])' \
    "$T"/sim/pc1.json "$T"/sim/pc2.json "$T"/sim/pc3.json
}
check "R-PROV-10 (3): amtsim recorded the key each device was given" wait_for 10 sim_has_keys
python3 - "$SECRETS" "$T/sim" <<'PY'
import json, sys
with open(sys.argv[1], "a") as out:
    for id in ("pc1", "pc2", "pc3"):
        for k in json.load(open("%s/%s.json" % (sys.argv[2], id))).get("keys", []):
            out.write("web server key %s/%s\t%s\n" % (id, k["handle"], k["pem"].replace("\n", "\\n")))
PY
check "the test knows 3 OTPs, 3 admin passwords, MEBx and Digest passwords, 4+ keys" \
  python3 -c 'import sys; l=[x.split("\t")[0] for x in open(sys.argv[1])]; k=lambda p: sum(x.startswith(p) for x in l); assert k("OTP")==3 and k("device/")==3 and k("mebx")==1 and k("digest")==1 and k("provisioning key")==1 and k("web server key")>=3, l' "$SECRETS"
store_files=("$T"/site/state/plugins/creds/*)
check "R-PROV-12: the credential store files are 0600" \
  bash -c 'for f in "$@"; do test "$(stat -c %a "$f")" = 600 || exit 1; done' _ "${store_files[@]}"
check "R-PROV-12: no secret is in the credential store unencrypted (raw, base64, hex)" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "${store_files[@]}"
check "no secret in amtprovd's log (raw, base64, hex)" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$T/amtprovd.log"

# ---- issue 17 item 7: an administrator's way in (docs/operations.md "Credentials") ----
# R-ACC-02: the admin password is shown only on an explicit, audited --reveal.
"$AMTPROV" -m "$T/site/site.json" device credentials pc1.contoso.com >"$T/cred.plain" 2>&1
check "R-ACC-02: 'device credentials' without --reveal names the account and record, no secret" \
  bash -c "grep -q '^user *admin' '$T/cred.plain' && grep -q 'device/pc1.contoso.com/admin' '$T/cred.plain' && python3 '$(dirname "$0")/secret_scan.py' '$SECRETS' -- '$T/cred.plain'"
check "R-ACC-02: ... and records no reveal" \
  test "$(q "select count(*) from audit where action='credentials.reveal'")" = 0
expect_rc 2 "R-ACC-02: 'device credentials' needs a device" "$AMTPROV" -m "$T/site/site.json" device credentials
expect_rc 1 "R-ACC-02: --reveal of an unknown device fails and reveals nothing" \
  "$AMTPROV" -m "$T/site/site.json" device credentials nosuch.contoso.com --reveal
"$AMTPROV" -m "$T/site/site.json" --json device credentials pc1.contoso.com --reveal >"$T/cred.json" 2>"$T/cred.err"
PW=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$T/cred.json")
check "R-PROV-12/R-ACC-02: --reveal prints the admin password amtprov stored for pc1" \
  test "$(grep '^device/pc1.contoso.com/admin	' "$T/creds.tsv" | cut -f2)" = "$PW"
check "R-ACC-02: ... and the site's MEBx password" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["user"]=="admin" and d["mebx_password"]=="M3bx-Str0ng!Pw", d' "$T/cred.json"
check "R-ACC-02: the reveal is in pc1's audit trail, naming who asked" \
  test -n "$(q "select 1 from audit a join devices d on d.id=a.device_id where d.fqdn='pc1.contoso.com' and a.action='credentials.reveal' and a.actor like 'cli:%'")"
check "R-ACC-02: status 8120 CREDENTIALS_REVEALED names pc1" \
  test "$(q "select count(*) from status_messages where msg_id=8120 and device='pc1.contoso.com'")" = 1
check "R-ACC-02: the secret is in neither the site database nor the CLI's stderr" \
  python3 "$(dirname "$0")/secret_scan.py" "$SECRETS" -- "$T/site/state/site.db" "$T/cred.err"
# The revealed password opens the device: a WS-Man Get with real curl --digest over TLS,
# the device's web server certificate checked against the site CA (R-WS-01, R-ACC-01).
CA_DIR="$T/site/state/plugins/lab-ca"
cat "$CA_DIR/root.pem" "$CA_DIR/issuing.pem" >"$T/site-ca.pem"
MSG='<?xml version="1.0" encoding="utf-8"?><Envelope xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>1</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo></Header><Body></Body></Envelope>'
printf '%s' "$MSG" >"$T/get.xml"
printf 'admin:%s' "$PW" >"$T/curl.user"; chmod 600 "$T/curl.user"
check "R-ACC-01/R-WS-01: curl --digest with the revealed password gets pc1's AMT_GeneralSettings over TLS" \
  bash -c "curl -sS --max-time 20 --cacert '$T/site-ca.pem' --resolve pc1.contoso.com:16993:$NET.1 \
    --digest -u \"\$(cat '$T/curl.user')\" -H 'Content-Type: application/soap+xml;charset=UTF-8' \
    --data-binary @'$T/get.xml' -o '$T/ws.out' -w '%{http_code}' https://pc1.contoso.com:16993/wsman | grep -qx 200 &&
    grep -q '<h:HostName>pc1</h:HostName>' '$T/ws.out'"
check "R-ACC-01: a wrong password is refused (401): the answer came from the credential" \
  bash -c "curl -sS --max-time 20 --cacert '$T/site-ca.pem' --resolve pc1.contoso.com:16993:$NET.1 \
    --digest -u 'admin:Wrong-Pw-123' --data-binary @'$T/get.xml' -o /dev/null -w '%{http_code}' \
    https://pc1.contoso.com:16993/wsman | grep -qx 401"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
