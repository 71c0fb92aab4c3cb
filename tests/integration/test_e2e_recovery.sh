#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Failure and recovery end to end, with amtsim, ca-local, credstore-file and amt-transport:
#  - a commit the firmware refuses leaves the device FAILED with the AMT reason; after the
#    cause is gone, `amtprov device retry` provisions it, and the certificate of the failed
#    attempt is revoked with reason Superseded and appears on ca-local's CRL (R-REV-02b);
#  - a first stage interrupted after its AMT writes re-runs, adopting what AMT holds;
#  - a first stage re-run with a new certificate replaces the TLS credential context that
#    is bound to the superseded one;
#  - amtprovd SIGKILLed in the middle of provisioning a fleet, then restarted, finishes every
#    device, and every certificate the CA issued is known to amtprov or reported (R-PROV-13);
#  - amtprovd SIGKILLed after the firmware committed but before CommitChanges was answered:
#    the re-run commit finds AMT post-provisioning, serving the site's certificate, and
#    finishes the device; the admin password in the store is the one AMT accepts (R-PROV-13).
TEST_NAME=e2e_recovery
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/recovery_lib.sh"

# --- 1. the firmware refuses a flash write mid-first-stage; retry after the cause is gone
# (R-REV-02b). The first flash write (AddKey) passes, the second (AddCertificate) fails.
mkdir -p "$T/sim"; fleet 1 '{"flash_writes": 1}'; sim_start; site
check "register the device" register 1
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d1.log"
check "a flash write the firmware refuses fails the device" test "$(q "select state from devices")" = FAILED
check "with the AMT return value as the reason" \
  test -n "$(q "select 1 from devices where last_error like '%FLASH_WRITE_LIMIT%' or last_error like '%38%'")"
FIRST=$(q "select serial_hex from certificates where status='active'")
check "the failed attempt's certificate is on record" test -n "$FIRST"
sim_stop; fleet 1 '{}'; sim_start
expect_rc 0 "amtprov device retry" "$AMTPROV" -m "$T/site/site.json" device retry pc1.contoso.com >/dev/null 2>&1
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d2.log"
check "after the retry the device is PROVISIONED" test "$(q "select state from devices")" = PROVISIONED
check "R-REV-02b: the earlier certificate is revoked, reason Superseded (4)" \
  test "$(q "select status || ':' || revocation_reason from certificates where serial_hex='$FIRST'")" = "revoked:4"
check "R-REV-02b: exactly one certificate is active" test "$(q "select count(*) from certificates where status='active'")" = 1
openssl crl -in "$T/site/state/plugins/lab-ca/crl.pem" -noout -text >"$T/crl1.txt" 2>&1
check "R-REV-02b: the CA's CRL lists the earlier serial as superseded" \
  python3 -c '
import re, sys
text = open(sys.argv[1]).read()
want = sys.argv[2].lstrip("0").upper()
for block in text.split("Serial Number:")[1:]:
    serial = block.split()[0].replace(":", "").lstrip("0").upper()
    if serial == want:
        assert "Superseded" in block.split("Serial Number:")[0], block
        sys.exit(0)
sys.exit("serial %s not on the CRL" % want)' "$T/crl1.txt" "$FIRST"
check "status 8203 (certificate revoked) recorded" test "$(q "select count(*) from status_messages where msg_id=8203")" = 1
check "no revocation left pending" test "$(q "select count(*) from pending_ops where kind='revoke'")" = 0
sim_stop

# --- 2. a crash after the first stage's AMT writes (key, certificate, TLS context), before
# the state moved on: the re-run adopts what AMT holds and still turns TLS on (R-PROV-13).
rm -rf "$T/sim"; mkdir -p "$T/sim"; fleet 1 '{"commit_fail": 2057}'; sim_start; site
check "register the device" register 1
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d6.log"
check "the first stage completed, the commit was refused" \
  test -n "$(q "select 1 from audit where detail like 'CONFIGURING_FIRST_STAGE -> NEED_COMMIT%'")"
# What a SIGKILL during the first stage leaves: the step recorded as in progress.
q "update devices set state='CONFIGURING_FIRST_STAGE', last_error='', last_error_code=0"
sim_stop; fleet 1 '{}'
# ... and the crash came between creating the TLS context and enabling TLS in the settings.
python3 - "$T/sim/pc1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("credential_contexts") or d.get("tls_remote_pending") is not None, "state layout"
d["tls_pending"] = False
if isinstance(d.get("tls_remote_pending"), dict):
    d["tls_remote_pending"]["enabled"] = False
if isinstance(d.get("tls_remote"), dict):
    d["tls_remote"]["enabled"] = False
json.dump(d, open(sys.argv[1], "w"))
PY
sim_start
for _ in 1 2 3; do
  "$AMTPROVD" -m "$T/site/site.json" --once=60 2>>"$T/d7.log"
  [ "$(q "select state from devices")" = PROVISIONED ] && break
  sleep 2.2
done
check "the re-run first stage adopts AMT's key, certificate and TLS context: PROVISIONED" \
  test "$(q "select state from devices")" = PROVISIONED
check "the same certificate is used (no second one issued)" test "$(q "select count(*) from certificates")" = 1
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json"
check "TLS is on in the device after the re-run" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["tls_remote"]["enabled"]' "$T/pc1.dump.json"
sim_stop

# --- 2b. the commit is refused after the first stage created the TLS credential context for
# its certificate; after `device retry` the CA issues a new certificate (R-REV-02b) and the
# re-run first stage finds the context bound to the superseded one: it is replaced
# (ENABLE_TLS replace), so the device serves the new certificate, never the revoked one, and
# the superseded certificate is deleted from AMT's store (the key AMT generated stays: the new
# certificate is for it too).
rm -rf "$T/sim"; mkdir -p "$T/sim"; fleet 1 '{"commit_fail": 2057}'; sim_start; site
check "register the device" register 1
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>"$T/d8.log"
check "a refused commit fails the device after its TLS context was created" \
  test "$(q "select state from devices")" = FAILED
FIRST=$(q "select serial_hex from certificates where status='active'")
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump1.json"
check "AMT holds a TLS credential context for the first certificate" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [c for c in d["credential_contexts"] if c.get("type") == "TLS"], d["credential_contexts"]' "$T/pc1.dump1.json"
sim_stop; fleet 1 '{}'; sim_start
expect_rc 0 "amtprov device retry" "$AMTPROV" -m "$T/site/site.json" device retry pc1.contoso.com >/dev/null 2>&1
for _ in 1 2 3; do
  "$AMTPROVD" -m "$T/site/site.json" --once=60 2>>"$T/d9.log"
  [ "$(q "select state from devices")" = PROVISIONED ] && break
  sleep 2.2
done
check "the retry provisions the device although a TLS context existed" test "$(q "select state from devices")" = PROVISIONED
SECOND=$(q "select serial_hex from certificates where status='active'")
check "a new certificate was issued, the first one revoked Superseded (R-REV-02b)" \
  test -n "$SECOND" -a "$SECOND" != "$FIRST" -a "$(q "select status || ':' || revocation_reason from certificates where serial_hex='$FIRST'")" = "revoked:4"
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump2.json"
python3 - "$T/site/state/site.db" >"$T/second.sha" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select sha256 from certificates where status='active'").fetchone()[0])
PY
check "one TLS credential context, bound to the new certificate; the old one was removed" \
  python3 - "$T/pc1.dump2.json" "$(cat "$T/second.sha")" <<'PY'
import base64, hashlib, json, sys
d = json.load(open(sys.argv[1]))
tls = [c for c in d["credential_contexts"] if c.get("type") == "TLS"]
assert len(tls) == 1, tls
bound = [c for c in d["certificates"] if c["handle"] == tls[0]["cert_handle"]][0]
assert hashlib.sha256(base64.b64decode(bound["der"])).hexdigest().upper() == sys.argv[2].upper()
assert d["tls_remote"]["enabled"] and d["tls_remote"]["cert_handle"] == tls[0]["cert_handle"]
assert sum("TLS credential context removed" in e["event"] for e in d["audit"]) == 1
PY
check "the superseded certificate left AMT's store; the key both certificates carry stays" \
  python3 - "$T/pc1.dump2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["certificates"]) == 1 and len(d["keys"]) == 1, (d["certificates"], d["keys"])
assert sum(e["event"].startswith("certificate handle") and e["event"].endswith("deleted") for e in d["audit"]) == 1
PY
served=$(openssl s_client -connect "$NET.1:16993" </dev/null 2>/dev/null | openssl x509 -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
check "the device serves the new certificate" test "${served^^}" = "$(tr a-f A-F <"$T/second.sha")"
sim_stop

# --- 3. amtprovd killed with SIGKILL mid-flow, restarted (R-PROV-13)
rm -rf "$T/sim"; mkdir -p "$T/sim"; fleet 6 '{"latency_ms": 120}'; sim_start; site
check "register 6 devices" register 6
start_daemon "$T/d3.log" -m "$T/site/site.json"
# Once the devices' flows have begun (start-up takes long on a loaded machine), 0.5 s more:
# each needs dozens of answers 120 ms apart, so none can be done by then.
working() { [ "$(q "select count(*) from devices where state <> 'REGISTERED'")" -gt 0 ]; }
wait_for 60 working
sleep 0.5
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
check "the kill came mid-flow (not every device was done)" \
  test "$(q "select count(*) from devices where state='PROVISIONED'")" -lt 6
check "the database is intact after SIGKILL" test "$(q "pragma integrity_check")" = ok
# --once stops when nothing is due now; a step that met a passing error retries after a
# short backoff, so run it until the fleet settles, as the daemon would simply keep going.
for _ in 1 2 3 4; do
  "$AMTPROVD" -m "$T/site/site.json" --once=120 2>>"$T/d4.log"
  [ "$(q "select count(*) from devices where state in ('PROVISIONED','FAILED')")" = 6 ] && break
  sleep 2.2
done
check "a restarted amtprovd finishes the work" test "$(q "select count(*) from devices where state in ('PROVISIONED','FAILED')")" = 6
check "every device is PROVISIONED" test "$(q "select count(*) from devices where state='PROVISIONED'")" = 6
check "one active web server certificate per device" \
  test "$(q "select count(distinct device_id) || '/' || count(*) from certificates where status='active'")" = "6/6"
# Every certificate the CA issued is known to amtprov, or was reported as possibly untracked.
issued=$(qca "select count(*) from certificates")
known=$(q "select count(*) from certificates")
reported=$(q "select count(*) from status_messages where msg_id=8210")
check "R-PROV-13: every certificate the CA issued is recorded or reported ($issued issued, $known recorded, $reported reported)" \
  test "$issued" -le $((known + reported))
sim_stop

# --- 4. SIGKILL after the firmware committed, before amtprovd heard the answer (R-PROV-13).
# commit_latency_ms: CommitChanges is applied at once (AMT is post-provisioning and serves the
# installed certificate to new connections) but answered 8 s later; amtprovd dies in between,
# with the device recorded as COMMITTING. The restart rewinds it to NEED_COMMIT, and the commit
# re-run cannot reach AMT in provisioning mode (the self-signed certificate is gone): it must
# recognise the commit over a session verified against the site CA and its CRL.
sim_state() { "$AMTSIM" dump --control "$T/sim/control.sock" pc1 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["provisioning_state"])'; }
committed_unheard() { [ "$(sim_state)" = post ] && [ "$(q "select state from devices")" = COMMITTING ]; }
kill_after_commit() { # LOG: a fresh device and site, amtprovd killed once AMT committed
  rm -rf "$T/sim"; mkdir -p "$T/sim"; fleet 1 '{"commit_latency_ms": 8000}'; sim_start; site
  check "register the device" register 1
  start_daemon "$1" -m "$T/site/site.json"
  check "the firmware committed while amtprovd waits for the answer" wait_for 90 committed_unheard
  kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
  check "killed with the device still COMMITTING" test "$(q "select state from devices")" = COMMITTING
  check "the device is post-provisioning already" test "$(sim_state)" = post
}

# 4a. The device presents a certificate that does not verify against the recorded chain (here
# the recorded chain is replaced by another CA's root): the commit re-run fails closed, with
# both reasons, and never trusts the device.
kill_after_commit "$T/d12.log"
q "update certificate_data set chain_pem = '$(cat "$pki/root.pem")'"
"$AMTPROVD" -m "$T/site/site.json" --once=60 2>>"$T/d13.log"
check "R-PROV-13: a device the site CA does not vouch for fails closed: FAILED" \
  test "$(q "select state from devices")" = FAILED
check "with a reason that names both refusals ($(q "select last_error from devices"))" \
  test -n "$(q "select 1 from devices where last_error like '%self-signed%' and last_error like '%not trusted either%'")"
check "no completed commit reported (8103)" test "$(q "select count(*) from status_messages where msg_id=8103")" = 0
sim_stop

# 4b. The device serves the certificate the site's CA issued: the commit is recognised.
kill_after_commit "$T/d10.log"
for _ in 1 2 3; do
  "$AMTPROVD" -m "$T/site/site.json" --once=60 2>>"$T/d11.log"
  [ "$(q "select state from devices")" = PROVISIONED ] && break
  sleep 2.2
done
check "R-PROV-13: the re-run commit finds the firmware committed: PROVISIONED ($(q "select state || ' ' || last_error from devices"))" \
  test "$(q "select state from devices")" = PROVISIONED
check "the commit was reported as done (8103) once" \
  test "$(q "select count(*) from status_messages where msg_id=8103")" = 1
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump4.json"
check "CommitChanges ran once in the firmware (not repeated)" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sum(e["event"].startswith("CommitChanges: provisioned") for e in d["audit"]) == 1, d["audit"]' "$T/pc1.dump4.json"
check "the second stage ran after the restart (serial-over-LAN on, as the manifest says)" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["sol_enabled"] is True' "$T/pc1.dump4.json"
"$AMTPROV" -m "$T/site/site.json" --json cred list >"$T/creds4.json"
check "one admin password record, no pending one left" \
  python3 -c 'import json,sys; n=json.dumps(json.load(open(sys.argv[1]))); assert "device/pc1.contoso.com/admin" in n and ".pending" not in n, n' "$T/creds4.json"
check "nothing untracked: one active certificate, every issued one recorded, no pending operation" \
  test "$(q "select count(*) from certificates where status='active'")/$(qca "select count(*) from certificates")/$(q "select count(*) from certificates")/$(q "select count(*) from pending_ops")" = "1/1/1/0"
# The admin password in the store, read with the store's key (cred_read.py), into a 0600
# file.
install -m 600 /dev/null "$T/admin.pw"
/usr/bin/python3 "$(dirname "$0")/cred_read.py" "$T/site/state/plugins/creds" device/pc1.contoso.com/admin >"$T/admin.pw"
check "the admin password record can be read" test -s "$T/admin.pw"
wsman_get() { # PASSWORD FILE: WS-Man Get of AMT_GeneralSettings, as admin with Digest
  curl -sS --max-time 10 --cacert "$T/site-ca.pem" \
    --resolve "pc1.contoso.com:16993:$NET.1" --digest -u "admin:$1" \
    -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary @"$T/get4.xml" \
    -o "$2" -w '%{http_code}' https://pc1.contoso.com:16993/wsman
}
# The device serves its leaf alone: trust the site CA's root and issuing CA, nothing else.
cat "$T/site/state/plugins/lab-ca/root.pem" "$T/site/state/plugins/lab-ca/issuing.pem" >"$T/site-ca.pem"
cat >"$T/get4.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>uuid:1</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo></Header><Body/></Envelope>
XML
digest_with_stored() { [ "$(wsman_get "$(cat "$T/admin.pw")" "$T/get4.out")" = 200 ] && grep -q AMT_GeneralSettings "$T/get4.out"; }
digest_refused() { [ "$(wsman_get "not-the-password" "$T/get4.bad")" = 401 ]; }
check "R-PROV-13: curl --digest with the stored admin password works (over the site CA's TLS)" digest_with_stored
check "a wrong password is refused (the check above can fail)" digest_refused
sim_stop # writes the device's state file, which holds the admin Digest HA1
check "R-PROV-13: the firmware's admin password is the stored one (Digest HA1)" \
  python3 - "$T/sim/pc1.json" "$T/admin.pw" <<'PY'
import hashlib, json, sys
d = json.load(open(sys.argv[1])); pw = open(sys.argv[2]).read()
assert d["admin_ha1"] == hashlib.md5(f'{d["admin_user"]}:{d["realm"]}:{pw}'.encode()).hexdigest()
PY
rm -f "$T/admin.pw"
check "no sanitizer report" no_sanitizer_reports "$T/d1.log" "$T/d2.log" "$T/d4.log" "$T/d6.log" "$T/d7.log" "$T/d8.log" "$T/d9.log" "$T/d10.log" "$T/d11.log" "$T/d12.log" "$T/d13.log" "$T/amtsim.log"
finish
