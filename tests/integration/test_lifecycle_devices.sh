#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Device operations after provisioning and the revocation rules, checked on the devices
# (amtsim dump), in the site database and on ca-local's CRL:
#   R-REV-03  update re-applies the AMT settings and does NOT revoke the web server cert;
#   R-REV-02d block revokes it Superseded, and a CA outage (ca-local offline) during that
#             revocation keeps it queued (revoke-pending) and retried until it succeeds;
#   R-REV-02a unprovision: full unprovision in AMT, revoked Superseded, secrets cleared;
#   unblock   a blocked device is unprovisioned next (its AMT cannot be reached safely).
# The clock is the test clock: retries become due when the test moves it, not by sleeping.
TEST_NAME=lifecycle_devices
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

make_provisioning_pki
check "amtsim serves three devices" start_fleet pc1 pc2 pc3
write_site
check "they register" register pc1 pc2 pc3
check "amtprovd provisions them" daemon_once
for d in pc1 pc2 pc3; do eval "serial_$d=\$(cert_field $d.contoso.com active serial)"; done
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.dump.json"; }
q() { sqlite3 "$T/site/state/site.db" "$1"; }
audit_count() { python3 -c 'import json,sys; print(sum(sys.argv[2] in e["event"] for e in json.load(open(sys.argv[1]))["audit"]))' "$T/$1.dump.json" "$2"; }

# --- R-REV-03: update
dump pc1; before=$(audit_count pc1 "SOL on")
check "device update is recorded" bash -c "'$AMTPROV' -m '$SITE' device update pc1.contoso.com | grep -q NEED_UPDATE"
check "update of a device in NEED_UPDATE is refused (exit 1)" bash -c "! '$AMTPROV' -m '$SITE' device update pc1.contoso.com 2>/dev/null"
set_clock $(( $(now) + 60 ))
check "amtprovd updates it" daemon_once
check "the updated device is PROVISIONED" bash -c "[ \"\$(state_of pc1.contoso.com)\" = PROVISIONED ]"
dump pc1
check "the second stage really ran again on the device (redirection set once more)" test "$(audit_count pc1 "SOL on")" -gt "$before"
check "R-REV-03: the web server certificate is NOT revoked by an update" \
  bash -c "[ \"\$(cert_field pc1.contoso.com active serial)\" = '$serial_pc1' ]"
check "R-REV-03: its serial is not on the CRL" bash -c "! crl_has '$serial_pc1' ''"
check "status 8110 reports the update" bash -c "'$AMTPROV' -m '$SITE' status --id 8110 --device pc1.contoso.com --since $(now) | grep -q pc1"

# --- R-REV-02d with a CA outage
touch "$T/ca-offline"
check "R-REV-02d: device block" bash -c "'$AMTPROV' -m '$SITE' device block pc2.contoso.com | grep -q BLOCKED"
check "the certificate is queued (revoke-pending) at once" test "$(cert_field pc2.contoso.com revoke-pending serial)" = "$serial_pc2"
check "a pending revoke operation is on record" test "$(q "select count(*) from pending_ops where kind='revoke'")" = 1
check "the revocation task was requested" bash -c "'$AMTPROV' -m '$SITE' task list | grep -q 'revocation-queue.*requested'"
daemon_once
check "CA offline: still revoke-pending after amtprovd tried" test "$(cert_field pc2.contoso.com revoke-pending serial)" = "$serial_pc2"
check "CA offline: not on the CRL" bash -c "! crl_has '$serial_pc2' ''"
check "CA offline: status 8204 (revocation queued)" bash -c "'$AMTPROV' -m '$SITE' status --id 8204 --device pc2.contoso.com | grep -q offline"
check "the failed attempt is counted with its reason" test "$(q "select attempts || ' ' || (last_error like '%offline%') from pending_ops where kind='revoke'")" = "1 1"
set_clock $(( $(now) + 120 ))
daemon_once
check "CA still offline 2 minutes later: still queued, tried again" test "$(q "select attempts from pending_ops where kind='revoke'")" = 2
rm -f "$T/ca-offline"
set_clock $(( $(now) + 3600 ))
check "amtprovd retries when due" daemon_once
check "R-REV-02d: once the CA is back the certificate is revoked, Superseded (DB)" \
  test "$(q "select status || ' ' || revocation_reason from certificates where serial_hex='$serial_pc2'")" = "revoked 4"
check "R-REV-02d: its serial is on the CRL with reason Superseded" crl_has "$serial_pc2" Superseded
check "the queue is empty" test "$(q "select count(*) from pending_ops where kind='revoke'")" = 0
check "the blocked device is never worked on" bash -c "[ \"\$(state_of pc2.contoso.com)\" = BLOCKED ]"

# --- R-REV-02a: unprovision
check "device unprovision" bash -c "'$AMTPROV' -m '$SITE' device unprovision pc3.contoso.com | grep -q NEED_UNPROVISION"
check "amtprovd unprovisions it" daemon_once
check "pc3 is UNPROVISIONED" bash -c "[ \"\$(state_of pc3.contoso.com)\" = UNPROVISIONED ]"
dump pc3
check "R-REV-02a: AMT was fully unprovisioned (amtsim: state pre)" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["provisioning_state"]=="pre", d["provisioning_state"]' "$T/pc3.dump.json"
check "R-REV-02a: its certificate is revoked, Superseded (DB)" \
  test "$(q "select status || ' ' || revocation_reason from certificates where serial_hex='$serial_pc3'")" = "revoked 4"
check "R-REV-02a: its serial is on the CRL with reason Superseded" crl_has "$serial_pc3" Superseded
check "R-REV-02a: its stored secrets are cleared" bash -c "! '$AMTPROV' -m '$SITE' cred list | grep -q 'device/pc3'"
check "the other devices' secrets stay" bash -c "'$AMTPROV' -m '$SITE' cred list | grep -q 'device/pc1.contoso.com/admin'"
check "status 8109 reports the unprovision" bash -c "'$AMTPROV' -m '$SITE' status --id 8109 --device pc3.contoso.com | grep -q 'AMT unprovisioned'"

# --- unblock: the blocked device is unprovisioned next
check "device unblock" bash -c "'$AMTPROV' -m '$SITE' device unblock pc2.contoso.com | grep -q NEED_UNPROVISION"
daemon_once
check "the unblocked device ends UNPROVISIONED, told to unprovision AMT locally" \
  bash -c "[ \"\$(state_of pc2.contoso.com)\" = UNPROVISIONED ] && '$AMTPROV' -m '$SITE' status --id 8109 --device pc2.contoso.com | grep -q MEBx"
check "pc1 was never touched by the others' operations" bash -c "[ \"\$(cert_field pc1.contoso.com active serial)\" = '$serial_pc1' ] && [ \"\$(state_of pc1.contoso.com)\" = PROVISIONED ]"
check "cert list --status revoked shows exactly the two revoked web server certificates" \
  test "$("$AMTPROV" -m "$SITE" --json cert list --status revoked --purpose web-server | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2
# issue 17: after a block and an unprovision revoked two, the revocation task said "1 revoked"
# (the unprovision step revokes its own device's certificates): it now says both counts.
"$AMTPROV" -m "$SITE" task run revocation-queue >/dev/null
daemon_once
check "the revocation task counts the two revoked certificates" \
  bash -c "'$AMTPROV' -m '$SITE' task list | grep -q 'revocation-queue.*this run revoked 0, 0 still queued; 2 certificates revoked in all'"

# --- amtprov device delete (docs/lifecycle.md "Deleting a device")
A="$AMTPROV -m $SITE"
expect_rc 1 "device delete refuses a PROVISIONED device" bash -c "$A device delete pc1.contoso.com 2>'$T/del.err'"
check "... and points to unprovision" grep -q "device unprovision pc1.contoso.com" "$T/del.err"
expect_rc 1 "--force alone never leaves a certificate valid" bash -c "$A device delete --force pc1.contoso.com 2>'$T/del.err'"
check "... it names the serial and --revoke" bash -c "grep -q '$serial_pc1' '$T/del.err' && grep -q -- --revoke '$T/del.err'"
check "the refused device is untouched" bash -c "[ \"\$(state_of pc1.contoso.com)\" = PROVISIONED ]"
expect_rc 0 "device delete of an UNPROVISIONED device" bash -c "$A --json device delete pc3.contoso.com >'$T/del.json'"
check "--json: the record it is kept as, its certificate kept, none queued" \
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["record"].startswith("deleted-") and j["record"].endswith(":pc3.contoso.com") and j["certificates_kept"]==1 and j["revocations_queued"]==0 and j["secrets_removed"], j' "$T/del.json"
tomb=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["record"])' "$T/del.json")
expect_rc 1 "the deleted device is no longer found by its FQDN" bash -c "$A device show pc3.contoso.com 2>/dev/null"
check "device list leaves it out" bash -c "! $A device list | grep -q pc3"
check "device list --state DELETED lists its record" bash -c "$A device list --state deleted | grep -q '$tomb'"
check "its history is kept: audit trail with device.delete, its revoked certificate" \
  bash -c "$A device show '$tomb' >'$T/tomb.txt' && grep -q 'device.delete.*pc3.contoso.com' '$T/tomb.txt' && grep -q '$serial_pc3.*revoked' '$T/tomb.txt'"
check "status 8121 reports the delete" bash -c "$A status --id 8121 --device pc3.contoso.com | grep -q 'deleted by cli'"
# A FAILED device whose admin password amtprov gave AMT (a step after the first stage failed)
# may still hold the site's settings: deleting it would drop the only copy of the password.
q "update devices set state = 'FAILED' where fqdn = 'pc1.contoso.com'"
expect_rc 1 "device delete --revoke refuses a FAILED device that AMT holds the password of" \
  bash -c "$A device delete --revoke pc1.contoso.com 2>'$T/del.err'"
check "... saying so, and that nothing was queued" bash -c "grep -q 'admin password' '$T/del.err' && [ \"\$(cert_field pc1.contoso.com active serial)\" = '$serial_pc1' ]"
check "delete --force --revoke of the PROVISIONED device" bash -c "$A device delete --force --revoke pc1.contoso.com >'$T/del.txt'"
check "... says its certificate is queued for revocation" grep -q "1 certificate queued for revocation" "$T/del.txt"
check "... its certificate is revoke-pending, its secrets are removed" \
  bash -c "[ \"\$(cert_field '$(sed -n 's/.*kept as \([^ ]*\) .*/\1/p' "$T/del.txt")' revoke-pending serial)\" = '$serial_pc1' ] && ! $A cred list | grep -q 'device/pc1'"
check "amtprovd revokes it" daemon_once
check "its serial is on the CRL with reason Cessation Of Operation" crl_has "$serial_pc1" "Cessation Of Operation"
check "the FQDN and UUID are free: pc3 registers again as a new device" register pc3
check "... which is REGISTERED with an empty history of its own" bash -c "[ \"\$(state_of pc3.contoso.com)\" = REGISTERED ] && ! $A device show pc3.contoso.com | grep -q device.delete"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"
finish
