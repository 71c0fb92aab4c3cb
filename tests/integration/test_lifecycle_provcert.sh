#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The provisioning-certificate check (R-PC-06/07/08) on a test clock, day by day:
# 7210 (warning) once a day from 40 days left down to 15, 7211 (error) once a day below
# 15; nothing at 41; nothing after the manifest names a replacement with more than 40 days
# (R-PC-07); a provisioning certificate recorded as revoked stops provisioning with status
# 8207 until a valid one is configured (R-PC-08).
TEST_NAME=lifecycle_provcert
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

make_provisioning_pki 60
NA=$(not_after_epoch "$T/pki/prov.pem")
check "amtsim serves a device" start_fleet pc1
write_site

# messages_at: the IDs (7210/7211/8207) stored at exactly the current clock
messages_at() {
  "$AMTPROV" -m "$SITE" --json status --since "$(now)" 2>/dev/null | python3 -c '
import json, sys, time
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(sys.argv[1])))  # --json times are ISO 8601
print(" ".join(str(m["msg_id"]) for m in json.load(sys.stdin) if m["at"] == now and m["msg_id"] in (7210, 7211, 8207)))' "$(now)"
}

declare -A want=([42]="" [41]="" [40]=7210 [39]=7210 [30]=7210 [17]=7210 [16]=7210 [15]=7210 [14]=7211 [13]=7211 [1]=7211)
ok=1; seen=""
for D in 42 41 40 39 38 37 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12; do
  set_clock $((NA - D * 86400))
  daemon_once || { ok=0; echo "amtprovd failed on day $D" >&2; break; }
  got=$(messages_at)
  exp=${want[$D]-}
  if [ -z "${want[$D]+x}" ]; then exp=$([ "$D" -lt 15 ] && echo 7211 || { [ "$D" -le 40 ] && echo 7210; } || true); fi
  seen="$seen $D:${got:-none}"
  [ "$got" = "$exp" ] || { ok=0; echo "day $D: got '$got', want '$exp'" >&2; }
done
echo "# days left:message $seen"
check "R-PC-06: 7210 exactly at 40..15 days, 7211 below 15, nothing at 42 and 41, once a day" test "$ok" = 1

count() { "$AMTPROV" -m "$SITE" --json status "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
check "status by ID and time window: 26 x 7210, one per day from 40 to 15 days" \
  test "$(count --id 7210 --since $((NA - 40 * 86400)) --until $((NA - 15 * 86400 + 1)))" = 26
check "status by severity: the 7211 errors of days 14, 13, 12" \
  test "$(count --severity error --id 7211 --since $((NA - 14 * 86400)))" = 3
check "status --until excludes its second" test "$(count --id 7210 --until $((NA - 40 * 86400)))" = 0

# Once a day: an on-demand run later the same day sends nothing new.
set_clock $((NA - 12 * 86400 + 3600))
"$AMTPROV" -m "$SITE" task run provisioning-certificate >/dev/null
daemon_once
check "R-PC-06: a second run the same day repeats nothing" test -z "$(messages_at)"
check "task list shows the check with its days left" bash -c "'$AMTPROV' -m '$SITE' task list | grep -q 'provisioning-certificate.*11 days left (7211)'"

# R-PC-07: installing a new certificate is not enough; the manifest must name it.
issue_prov 100 "$T/pki/new.pem"
set_clock $((NA - 11 * 86400))
daemon_once
check "R-PC-07: a certificate not named in the manifest changes nothing (7211 again)" test "$(messages_at)" = 7211
sed -i "s#$T/pki/chain.pem#$T/pki/new.pem#" "$SITE"
for D in 10 9; do
  set_clock $((NA - D * 86400))
  daemon_once
  check "R-PC-06: after the replacement (100 days) no message on day $D" test -z "$(messages_at)"
done

# R-PC-08: the configured certificate is known to be revoked: provisioning stops. (The
# clock stays where it is: time only moves forward, as the CA expects.)
check "amtprov cert revoked records it" bash -c "'$AMTPROV' -m '$SITE' cert revoked --cert '$T/pki/new.pem' >/dev/null"
check "pc1 registers" register pc1
daemon_once
check "R-PC-08: status 8207 says provisioning is stopped" bash -c "'$AMTPROV' -m '$SITE' status --id 8207 | grep -q 'stopped'"
check "R-PC-08: the device is not provisioned with a revoked certificate" bash -c "[ \"\$(state_of pc1.contoso.com)\" = NEED_DEVICE_CHECK ]"
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json"
check "R-PC-08: the device never saw it (still in provisioning state 'in')" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["provisioning_state"]=="in"' "$T/pc1.dump.json"
issue_prov 200 "$T/pki/valid.pem"
sed -i "s#$T/pki/new.pem#$T/pki/valid.pem#" "$SITE"
daemon_once
check "R-PC-08: with a valid certificate configured, provisioning resumes" bash -c "[ \"\$(state_of pc1.contoso.com)\" = PROVISIONED ]"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"
finish
