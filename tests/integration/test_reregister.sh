#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Re-registration of a known device (docs/states.md), seed 003 with R-PROV-01..03, R-REV-02b:
# a provisioned computer whose AMT is reset locally (amtsim forgets its state: Not
# Provisioned again, same UUID) runs its agent again (new OTP) and registers through the
# HTTPS API; amtprovd provisions it again, revokes the earlier web server certificate
# Superseded (database and ca-local's CRL) and the device serves the new one. Refused or
# deferred, with status messages: a device amtprovd is working on (an -ING state, exit 6 /
# 409 Retry-After), a blocked device (403), an FQDN with another UUID (409) until an
# administrator confirms with 'device add --replace' (system board replaced).
TEST_NAME=reregister
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

make_provisioning_pki
uuid_of() { printf 'aaaaaaaa-0000-4000-8000-0000000000%02d' "$1"; }
# fleet [ID=UUID ...] [hold=ID]: pc1..pc4 at $NET.1..4 with fixed UUIDs (the SMBIOS UUID a
# reset keeps); ID=UUID gives a device another one (a new system board); hold=ID makes that
# device answer a CommitChanges only 10 s after applying it (commit_latency_ms), so amtprovd
# is in COMMITTING for that long, whatever the machine's speed, while the test checks what a
# registration meanwhile does
fleet() {
  python3 - "$T/fleet.json" "$NET" "$ROOT_HASH" "$@" <<'PY'
import json, sys
out, net, root, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
over = dict(a.split("=", 1) for a in args if not a.startswith("hold="))
hold = {a[5:] for a in args if a.startswith("hold=")}
devs = []
for i in range(1, 5):
    d = {"id": f"pc{i}", "address": f"{net}.{i}", "amt_version": "12.0.45",
         "provisioning_state": "in", "host_name": f"pc{i}", "domain_name": "contoso.com",
         "dhcp_domain": "contoso.com", "uuid": over.get(f"pc{i}", "aaaaaaaa-0000-4000-8000-0000000000%02d" % i),
         "root_hashes": [{"name": "lab root", "algo": "sha256", "hash": root}]}
    if d["id"] in hold:
        d["faults"] = {"commit_latency_ms": 10000}
    devs.append(d)
json.dump({"key_pool": 4, "keygen_latency_ms": 5, "devices": devs}, open(out, "w"))
PY
}
AMTSIM_PID=
start_sim() {
  mkdir -p "$T/sim"
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  AMTSIM_PID=$!; PIDS+=("$AMTSIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}
# reset ID...: the devices' AMT is reset locally (MEBx): amtsim drops their state and
# re-creates them from the fleet, Not Provisioned
reset() {
  kill "$AMTSIM_PID"; wait "$AMTSIM_PID" 2>/dev/null
  rm -f "$T/sim/control.sock"
  local id; for id in "$@"; do rm -f "$T/sim/$id.json"; done
  start_sim
}
agent() { "$AMTSIM" agent --state-dir "$T/sim" --device "$1" >"$T/$1.$2.json" 2>>"$T/agent.err"; }
jfield() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
q() { sqlite3 "$T/site/state/site.db" "$1"; }

fleet; check "amtsim serves four devices" start_sim

# --- the registration API on $NET.240 (docs/api.md): each host agent registers with the
# enrollment secret minted for its FQDN (amtprov enroll-secret) under the site registration
# key in the credential store; the devices' addresses are in the manifest's allow-list
API="https://$NET.240:8443"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/pki/api.key" -out "$T/pki/api.pem" \
  -subj "/CN=amtprov api" -days 30 -sha256 -addext "subjectAltName=IP:$NET.240" 2>/dev/null
chmod 600 "$T/pki/api.key"
write_site '"api": {"listen": "'"$NET"'.240:8443", "certificate": "'"$T"'/pki/api.pem",
            "key": "'"$T"'/pki/api.key", "registration_keys": ["api/registration-key"],
            "address_allow": ["'"$NET"'.0/24"]}'
openssl rand -hex 32 >"$T/regkey"; chmod 600 "$T/regkey"
"$AMTPROV" -m "$SITE" cred set api/registration-key --from-file "$T/regkey" >/dev/null
# secret_of FILE: the file holding the enrollment secret of the FQDN in agent report FILE
secret_of() {
  local f; f=$(sed -n 's/.*"fqdn": *"\([^"]*\)".*/\1/p' "$1")   # no python: a step is timed below
  [ -s "$T/$f.secret" ] || { "$AMTPROV" -m "$SITE" enroll-secret --fqdn "$f" >"$T/$f.secret"; chmod 600 "$T/$f.secret"; }
  echo "$T/$f.secret"
}
# register_api FILE: the host agent's registration through the API (amtprov device register)
register_api() {
  "$AMTPROV" --json device register --url "$API" --token-file "$(secret_of "$1")" --cacert "$T/pki/api.pem" \
    --from-json "$1" >"$T/reg.out" 2>"$T/reg.err"
}
# post FILE: the same with curl, for the HTTP code and headers; body in $T/post.json
post() {
  curl -s -D "$T/post.hdr" -o "$T/post.json" -w '%{http_code}' --cacert "$T/pki/api.pem" \
    -H "Authorization: Bearer $(cat "$(secret_of "$1")")" -H 'Content-Type: application/json' \
    --data-binary @"$1" "$API/v1/devices"
}

check "they register" register pc1 pc2 pc3 pc4
check "amtprovd provisions them" daemon_once
check "all four are PROVISIONED" bash -c 'for d in pc1 pc2 pc3 pc4; do [ "$(state_of $d.contoso.com)" = PROVISIONED ] || exit 1; done'
web1=$(cert_field pc1.contoso.com active serial); sha1=$(cert_field pc1.contoso.com active sha256)
web2=$(cert_field pc2.contoso.com active serial)
check "pc1 serves its first web server certificate" test "$(served_sha256 "$NET.1")" = "$sha1"

# --- R-PROV-01: the agent of a provisioned device runs again ('post'): nothing to do
python3 - "$T/pc1.agent.json" "$T/pc1.post.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); a["provisioning_state"] = "post"; json.dump(a, open(sys.argv[2], "w"))
PY
expect_rc 0 "a provisioned device whose agent reports 'post' again: exit 0" \
  "$AMTPROV" -m "$SITE" device add --from-json "$T/pc1.post.json"
check "... and it stays PROVISIONED" test "$(state_of pc1.contoso.com)" = PROVISIONED

# --- R-REV-02b: pc1 and pc3 are reset locally; their agents run again
fleet hold=pc3                   # pc3 holds its commit from now on (faults are read at start)
reset pc1 pc3
check "amtsim: pc1 is Not Provisioned again, same UUID" bash -c \
  "'$AMTSIM' dump --control '$T/sim/control.sock' pc1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"provisioning_state\"]==\"in\" and d[\"uuid\"]==\"$(uuid_of 1)\", d[\"provisioning_state\"]'"
check "pc1's agent makes a new OTP" agent pc1 reset
check "... another than the first" bash -c "[ \"$(jfield "$T/pc1.reset.json" otp_hash 2>/dev/null)\" != \"$(jfield "$T/pc1.agent.json" otp_hash)\" ]"
start_daemon "$T/amtprovd.api.log" -m "$SITE"
up() { curl -s --cacert "$T/pki/api.pem" "$API/v1/health" >/dev/null; }
check "amtprovd serves the API" wait_for 30 up
expect_rc 0 "pc1 re-registers through the API (amtprov device register)" register_api "$T/pc1.reset.json"
check "... re-registered, was PROVISIONED, now REGISTERED" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="re-registered" and d["previous_state"]=="PROVISIONED" and d["state"]=="REGISTERED", d' "$T/reg.out"
check "the database holds the new OTP hash" test "$(q "select otp_hash from devices where fqdn='pc1.contoso.com'")" = "$(jfield "$T/pc1.reset.json" otp_hash)"
check "status 8113 reports the re-registration" bash -c "'$AMTPROV' -m '$SITE' status --id 8113 --device pc1.contoso.com | grep -q 'was PROVISIONED'"
check "the audit trail records it without the OTP hash" bash -c \
  "'$AMTPROV' -m '$SITE' device show pc1.contoso.com | grep -q 'device.reregister' && ! '$AMTPROV' -m '$SITE' device show pc1.contoso.com | grep -q \"$(jfield "$T/pc1.reset.json" otp_hash)\""
provisioned() { [ "$(state_of "$1")" = PROVISIONED ]; }
check "amtprovd provisions pc1 again" wait_for 120 provisioned pc1.contoso.com
web1b=$(cert_field pc1.contoso.com active serial)
check "pc1 has a new web server certificate" bash -c "[ -n '$web1b' ] && [ '$web1b' != '$web1' ]"
check "R-REV-02b: the earlier one is revoked Superseded (cert list --json)" python3 - "$web1" <<PY
import json, subprocess, sys
c = [x for x in json.loads(subprocess.run(["$AMTPROV", "-m", "$SITE", "--json", "cert", "list", "--device", "pc1.contoso.com"], capture_output=True, text=True).stdout) if x["serial"] == sys.argv[1]]
assert len(c) == 1 and c[0]["status"] == "revoked" and c[0]["revocation_reason"] == 4, c
PY
check "R-REV-02b: ... and on ca-local's CRL with reason Superseded" wait_for 30 crl_has "$web1" Superseded
check "the new one is not on the CRL" bash -c "! crl_has '$web1b' ''"
check "pc1 serves the new certificate" bash -c "[ \"\$(served_sha256 $NET.1)\" = \"\$(cert_field pc1.contoso.com active sha256)\" ]"

# --- a device amtprovd is working on: deferred (R-PROV-13: a step is never cut short)
check "pc3's agent makes a new OTP" agent pc3 reset
expect_rc 0 "pc3 re-registers" register_api "$T/pc3.reset.json"
# pc3's CommitChanges is held 10 s: what follows runs while amtprovd waits for its answer
# (state names ending in ING are not all of the -ING states: CHECKING_DEVICE is one too).
in_step() { [ "$(state_of pc3.contoso.com)" = COMMITTING ]; }
check "amtprovd works on pc3 (an -ING state, COMMITTING)" wait_for 60 in_step
code=$(post "$T/pc3.reset.json")
check "registering pc3 again meanwhile is 409" test "$code" = 409
check "... busy, with Retry-After, saying why" bash -c \
  "grep -qi '^Retry-After: [0-9]' '$T/post.hdr' && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"result\"]==\"busy\" and d[\"status\"]==8115 and \"working on it\" in d[\"reason\"], d' '$T/post.json'"
# What the 409 must not do is restart pc3 (back to REGISTERED) or fail it.
undisturbed() { case "$(state_of pc3.contoso.com)" in REGISTERED|FAILED|BLOCKED|"") return 1 ;; esac; }
check "amtprovd still works on pc3 (not restarted, not failed)" undisturbed
expect_rc 6 "amtprov device register exits 6 (try again later)" register_api "$T/pc3.reset.json"
check "status 8115 reports the deferral" bash -c "'$AMTPROV' -m '$SITE' status --id 8115 --device pc3.contoso.com | grep -q 'working on it'"
check "the deferred pc3 is provisioned undisturbed (R-PROV-05: the OTP it registered matched)" \
  wait_for 240 provisioned pc3.contoso.com

# --- a blocked device is refused (R-REV-02d)
check "device block pc4" bash -c "'$AMTPROV' -m '$SITE' device block pc4.contoso.com | grep -q BLOCKED"
python3 - "$T/pc4.agent.json" "$T/pc4.again.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); a["otp_hash"] = "ab" * 32; json.dump(a, open(sys.argv[2], "w"))
PY
check "a blocked device's registration is 403" test "$(post "$T/pc4.again.json")" = 403
check "... saying it is blocked, status 8114" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="blocked" and d["status"]==8114 and "blocked" in d["reason"], d' "$T/post.json"
expect_rc 1 "device add of the blocked device exits 1" "$AMTPROV" -m "$SITE" device add --from-json "$T/pc4.again.json"
check "pc4 stays BLOCKED with its old OTP hash" bash -c \
  "[ \"\$(state_of pc4.contoso.com)\" = BLOCKED ] && [ \"$(q "select otp_hash from devices where fqdn='pc4.contoso.com'")\" = \"$(jfield "$T/pc4.agent.json" otp_hash)\" ]"
check "status 8114 reports the refusal" bash -c "'$AMTPROV' -m '$SITE' status --id 8114 --device pc4.contoso.com | grep -q blocked"

# --- an FQDN with another UUID, and a UUID with another FQDN (possible impersonation)
python3 - "$T/pc1.reset.json" "$T/pc1.renamed.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); a["fqdn"] = "pc9.contoso.com"; json.dump(a, open(sys.argv[2], "w"))
PY
check "pc1's UUID claiming another FQDN (pc9's secret) is 409" test "$(post "$T/pc1.renamed.json")" = 409
check "... naming the field fqdn" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["field"]=="fqdn" and d["result"]=="identity", d' "$T/post.json"
check "pc1's secret cannot register pc9 at all: 403" test "$(curl -s -o "$T/post.json" -w '%{http_code}' --cacert "$T/pki/api.pem" \
  -H "Authorization: Bearer $(cat "$(secret_of "$T/pc1.reset.json")")" -H 'Content-Type: application/json' \
  --data-binary @"$T/pc1.renamed.json" "$API/v1/devices")" = 403
check "pc1 is untouched" test "$(q "select fqdn || ' ' || state from devices where uuid='$(uuid_of 1)'")" = "pc1.contoso.com PROVISIONED"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "no sanitizer report (amtprovd with the API)" no_sanitizer_reports "$T/amtprovd.api.log"

# pc2's system board is replaced: Not Provisioned, another UUID, the same name
fleet pc2=bbbbbbbb-0000-4000-8000-000000000002   # and pc3 commits at normal speed again
reset pc2
check "pc2's agent reports its new UUID" agent pc2 board
check "the new board's registration is refused (exit 1), naming the UUID" bash -c \
  "! '$AMTPROV' -m '$SITE' device add --from-json '$T/pc2.board.json' 2>'$T/e' && grep -q '(uuid)' '$T/e' && grep -q -- '--replace' '$T/e'"
check "status 8114 reports it" bash -c "'$AMTPROV' -m '$SITE' status --id 8114 --device pc2.contoso.com | grep -q 'not bbbbbbbb'"
check "an administrator confirms: device add --replace" bash -c \
  "'$AMTPROV' -m '$SITE' device add --from-json '$T/pc2.board.json' --replace | grep -q 're-registered pc2.contoso.com.*was PROVISIONED'"
check "the record has the new UUID" test "$(q "select uuid from devices where fqdn='pc2.contoso.com'")" = bbbbbbbb-0000-4000-8000-000000000002
check "amtprovd provisions the new board" daemon_once
check "pc2 is PROVISIONED" test "$(state_of pc2.contoso.com)" = PROVISIONED
check "R-REV-02b: the old board's certificate is revoked Superseded (database, CRL)" bash -c \
  "[ \"$(q "select status || ' ' || revocation_reason from certificates where serial_hex='$web2'")\" = 'revoked 4' ] && crl_has '$web2' Superseded"
check "pc3 is left as it is" test "$(state_of pc3.contoso.com)" = PROVISIONED
check "pc1 (provisioned again) is left as it is" test "$(cert_field pc1.contoso.com active serial)" = "$web1b"
check "no secret in amtprovd's logs" bash -c "! grep -q 'PRIVATE KEY' '$T'/amtprovd.*.log"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"
finish
