#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# amtprovd as a process: refuses a bad manifest without creating anything; runs the flow's
# first steps (R-PROV-04 directory account through a directory plugin); stops cleanly on
# SIGTERM; on SIGHUP keeps the running configuration when the new manifest is invalid; and,
# killed with SIGKILL at random points, keeps every committed device state (R-PROV-13).
TEST_NAME=amtprovd
. "$(dirname "$0")/lib.sh"

O="$T/out"; E="$T/err"
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
# q_is WANT SQL: the query's answer is WANT (re-run on every poll by wait_for).
q_is() { [ "$(q "$2")" = "$1" ]; }

register() { # register N devices starting at index I
  local i n=$1 start=${2:-0}
  for ((i = start; i < start + n; i++)); do
    printf '{"fqdn":"pc%05d.contoso.com","uuid":"00000000-0000-4000-8000-%012d","amt_version":"11.8.50"}\n' "$i" "$i" >"$T/dev.json"
    "$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/dev.json" >/dev/null 2>>"$T/register.err" || return 1
  done
}

# --- a bad manifest: exit 3, nothing created
make_site '"bogus": true'
expect_rc 3 "amtprovd refuses an invalid manifest (exit 3)" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "the error names the manifest and the JSON path" grep -q "site.json.*/bogus" "$E"
check "nothing was created" test ! -e "$T/site/state"
check "no sanitizer report" no_sanitizer_reports "$E"

# --- a plugin that cannot load: exit 5
make_site '"plugins": {"ad": {"plugin": "bad-abi-major"}}, "amt": {"directory": "ad"}'
expect_rc 5 "amtprovd refuses a foreign-ABI plugin (exit 5)" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "the error names the plugin file" grep -q "bad-abi-major.so" "$E"

# --- the flow's first steps with a directory plugin (R-PROV-04)
make_site '"plugins": {"ad": {"plugin": "fake-directory"}}, "amt": {"directory": "ad", "directory_container": "OU=AMT,DC=contoso,DC=com"}'
"$AMTPROV" -m "$T/site/site.json" db init >/dev/null
check "register 5 devices" register 5
expect_rc 0 "amtprovd --once works until idle" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "no sanitizer report" no_sanitizer_reports "$E"
check "every device passed the directory step and waits for the device check" \
  test "$(q "select count(*) from devices where state='NEED_DEVICE_CHECK'")" = 5
check "R-PROV-04: the audit trail shows the directory step" \
  test "$(q "select count(*) from audit where detail like 'CREATING_DIRECTORY_ACCOUNT -> NEED_DEVICE_CHECK%'")" = 5
check "started and stopped status messages recorded" \
  test "$(q "select count(*) from status_messages where msg_id in (8000,8001)")" = 2
# amtprov device delete and the directory account (docs/lifecycle.md "Deleting a device"):
# pc00002 stands for a device that failed after its account was created.
q "update devices set state = 'FAILED' where fqdn = 'pc00002.contoso.com'"
expect_rc 1 "device delete refuses a device whose directory account was created" \
  "$AMTPROV" -m "$T/site/site.json" device delete pc00002.contoso.com >"$O" 2>"$E"
check "... naming the account and the unprovision that removes it" \
  bash -c "grep -q 'computer account' '$E' && grep -q 'device unprovision pc00002.contoso.com' '$E'"
expect_rc 0 "device delete --force deletes it" "$AMTPROV" -m "$T/site/site.json" device delete --force pc00002.contoso.com >"$O" 2>"$E"
check "... and says the account was left" grep -q "directory computer account .* was left" "$O"
"$AMTPROV" -m "$T/site/site.json" device unprovision pc00001.contoso.com >/dev/null
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "unprovision removes the account (UNPROVISIONED, no transport needed)" \
  test "$(q "select state from devices where fqdn = 'pc00001.contoso.com'")" = UNPROVISIONED
expect_rc 0 "then device delete needs no option" "$AMTPROV" -m "$T/site/site.json" device delete pc00001.contoso.com >"$O" 2>"$E"
check "... and leaves no account behind" bash -c "! grep -q 'was left' '$O'"

# --- a directory that refuses: the device fails with the plugin's reason
make_site '"plugins": {"ad": {"plugin": "fake-directory", "config": {"fail_with": "denied"}}}, "amt": {"directory": "ad"}'
rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
check "register 1 device" register 1
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "a refused directory account fails the device with a reason" \
  test "$(q "select state from devices")" = FAILED
check "the reason is recorded" test -n "$(q "select last_error from devices where last_error like '%directory account%'")"
expect_rc 0 "device retry puts it back to REGISTERED" "$AMTPROV" -m "$T/site/site.json" device retry pc00000.contoso.com >"$O" 2>"$E"

# --- SIGTERM: clean stop; SIGHUP: reload, a bad manifest keeps the old configuration
make_site '"plugins": {"ad": {"plugin": "fake-directory"}}, "amt": {"directory": "ad"}'
rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
start_daemon "$T/daemon.log" -m "$T/site/site.json" --log-level debug --pid-file "$T/amtprovd.pid"
check "amtprovd writes its pid file" wait_for 10 test -s "$T/amtprovd.pid"
cp "$T/site/site.json" "$T/good.json"
echo '{ broken' >"$T/site/site.json"
kill -HUP "$DAEMON_PID"
check "a reload with an invalid manifest is reported (status 8003)" \
  wait_for 10 q_is 1 "select count(*) from status_messages where msg_id=8003"
check "amtprovd keeps running after a failed reload" kill -0 "$DAEMON_PID"
cp "$T/good.json" "$T/site/site.json"
kill -HUP "$DAEMON_PID"
check "a reload with a valid manifest is applied (status 8002)" \
  wait_for 10 q_is 1 "select count(*) from status_messages where msg_id=8002"
check "register 3 devices while amtprovd runs" register 3
check "amtprovd picks up devices registered while it runs" \
  wait_for 15 q_is 3 "select count(*) from devices where state='NEED_DEVICE_CHECK'"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"; rc=$?
check "SIGTERM stops amtprovd with exit 0" test "$rc" -eq 0
check "the pid file is removed" test ! -e "$T/amtprovd.pid"
check "no sanitizer report" no_sanitizer_reports "$T/daemon.log"

# --- SIGKILL at random points keeps every committed state (R-PROV-13)
make_site '"plugins": {"ad": {"plugin": "fake-directory", "config": {"delay_ms": 15}}}, "amt": {"directory": "ad"}, "engine": {"max_in_flight": 16, "ca_workers": 2}'
rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
check "register 120 devices" register 120
consistent=1
for round in 1 2 3 4 5; do
  start_daemon "$T/kill$round.log" -m "$T/site/site.json"
  sleep "0.$((RANDOM % 6 + 2))"
  kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null
  [ "$(q 'pragma integrity_check')" = ok ] || { consistent=0; echo "round $round: integrity check failed"; }
  # Each device's state is the target of its last recorded transition: state and audit
  # are written in one transaction, so a kill never separates them.
  bad=$(q "select count(*) from devices d where d.state != (
             select substr(a.detail, instr(a.detail, ' -> ') + 4,
                    case when instr(a.detail, ':') > 0 then instr(a.detail, ':') - instr(a.detail, ' -> ') - 4
                         else length(a.detail) end)
             from audit a where a.device_id = d.id and a.action = 'state' order by a.id desc limit 1)
           and exists (select 1 from audit a where a.device_id = d.id and a.action = 'state')")
  [ "$bad" = 0 ] || { consistent=0; echo "round $round: $bad devices disagree with their audit trail"; }
  [ "$(q 'select count(*) from devices')" = 120 ] || { consistent=0; echo "round $round: devices lost"; }
done
check "after 5 SIGKILLs: database intact, every state matches its last committed transition, no device lost" test "$consistent" = 1
expect_rc 0 "restarted amtprovd finishes the interrupted work" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$E"
check "every device ends where the flow stops today (NEED_DEVICE_CHECK)" \
  test "$(q "select count(*) from devices where state='NEED_DEVICE_CHECK'")" = 120
check "no device is left in an in-progress state" \
  test "$(q "select count(*) from devices where state like '%ING%' and state not like 'NEED%'")" = 0
check "no sanitizer report" no_sanitizer_reports "$E"

finish
