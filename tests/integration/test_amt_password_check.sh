#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# R-PROV-10 (5), R-PROV-11 (1), R-ACC-02: a password the site sets on AMT
# (credentials.mebx_password, a Digest user account's password) that AMT's strong-password
# rule refuses is caught before any device is touched: by 'amtprov manifest check' (exit 3),
# by amtprovd at start (exit 3, nothing created) and at reload (the running configuration
# stays), and by 'amtprov cred set' (exit 1, nothing stored). Each names the manifest field
# and the record; the password itself appears in no output, log or file. With strong
# passwords all of them pass. The real credstore-file plugin holds the records.
TEST_NAME=amt_password_check
. "$(dirname "$0")/lib.sh"

export AMTPROV_PLUGIN_PATH="$AMTPROV_BUILD_DIR/plugins"   # where credstore-file is built
O="$T/out"; E="$T/err"
WEAK='Weak_Passw0rd'      # '_' is its only symbol: AMT does not count it (INVALID_PASSWORD)
WEAK2='qwertz12'          # no upper-case letter, no symbol
STRONG='Str0ng!Mebx-Pw'
HELPDESK='D1gest-Helpdesk-Pw9'
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
# names NAME FILE: FILE names the MEBx field and its record, and the clause AMT refuses.
names_mebx() {
  grep -q "/credentials/mebx_password: .*'site/mebx'.*no symbol ('_' and space do not count)" "$1"
}

# The records are written while the manifest does not use them yet (the store-only
# manifest), as an administrator may have done before the site's manifest named them.
make_site '"plugins": {"creds": {"plugin": "credstore-file"}}, "credentials": {"store": "creds"}'
mv "$T/site/site.json" "$T/site/store-only.json"
printf '%s' "$WEAK" | "$AMTPROV" -m "$T/site/store-only.json" cred set site/mebx --stdin >/dev/null
printf '%s' "$HELPDESK" | "$AMTPROV" -m "$T/site/store-only.json" cred set site/helpdesk --stdin >/dev/null
make_site '"plugins": {"creds": {"plugin": "credstore-file"}},
  "credentials": {"store": "creds", "mebx_password": "site/mebx",
                  "provisioning_accounts": [{"user": "admin"}]},
  "amt": {"mebx_password_policy": "always",
          "user_accounts": [{"name": "helpdesk", "kerberos": false, "password": "site/helpdesk",
                             "realms": ["redirection"]}]}'
M="$T/site/site.json"

# --- manifest check
expect_rc 3 "R-PROV-10: manifest check refuses a MEBx password AMT would refuse (exit 3)" \
  run_cli "$O" "$E" -m "$M" manifest check
check "R-PROV-10: ... naming the field, the record and the clause" names_mebx "$E"
check "R-PROV-11: a strong Digest account password is not reported" \
  bash -c "! grep -q /amt/user_accounts '$E'"
check "a refused manifest check does not say valid" bash -c "! grep -q valid '$O'"
expect_rc 3 "manifest check --json: exit 3" run_cli "$O" "$E" --json -m "$M" manifest check
check "... {\"valid\": false} on stdout" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"valid": False}' "$O"

# --- amtprovd start: refused before anything is created (the database included)
expect_rc 3 "R-PROV-10: amtprovd does not start with it (exit 3)" \
  "$AMTPROVD" -m "$M" --once 2>"$T/start.log"
check "R-PROV-10: the log names the field, the record and the clause" names_mebx "$T/start.log"
check "nothing was created (no site database)" test ! -e "$T/site/state/site.db"
check "no sanitizer report" no_sanitizer_reports "$T/start.log"

# --- amtprov cred set: refused, nothing stored
printf '%s\n' "$WEAK" >"$T/weak.in"
expect_rc 1 "R-PROV-10: cred set refuses a MEBx password AMT would refuse (exit 1)" \
  run_cli "$O" "$E" -m "$M" cred set site/mebx --stdin <"$T/weak.in"
check "... naming the field and the record" \
  grep -q "/credentials/mebx_password: credential 'site/mebx' .*nothing stored" "$E"
check "... and printing nothing on stdout" test ! -s "$O"
printf '%s' "$WEAK2" >"$T/weak.in"
expect_rc 1 "R-PROV-11: cred set refuses a weak Digest account password (exit 1)" \
  run_cli "$O" "$E" -m "$M" cred set site/helpdesk --stdin <"$T/weak.in"
check "... naming /amt/user_accounts/0/password and both broken clauses" \
  grep -q "/amt/user_accounts/0/password: credential 'site/helpdesk' .*no upper-case letter, no symbol" "$E"
rm -f "$T/weak.in"
run_cli "$O" "$E" -m "$M" manifest check
check "R-PROV-11: the refused value was not stored (the account's password still passes)" \
  bash -c "! grep -q /amt/user_accounts '$E'"

# --- strong passwords: everything passes
expect_rc 0 "cred set stores a strong MEBx password" \
  bash -c "printf '%s' '$STRONG' | '$AMTPROV' -m '$M' cred set site/mebx --stdin >'$O' 2>'$E'"
expect_rc 0 "R-PROV-10: manifest check passes with strong passwords" \
  run_cli "$O" "$E" -m "$M" manifest check
check "... and says valid" grep -q "valid" "$O"
expect_rc 0 "R-PROV-10: amtprovd starts with strong passwords" \
  "$AMTPROVD" -m "$M" --once 2>"$T/once.log"

# --- reload: a password weakened behind amtprovd's back keeps the running configuration
start_daemon "$T/daemon.log" -m "$M"
check "amtprovd serves" wait_for 10 grep -q "serving" "$T/daemon.log"
printf '%s' "$WEAK" | "$AMTPROV" -m "$T/site/store-only.json" cred set site/mebx --stdin >/dev/null
kill -HUP "$DAEMON_PID"
check "R-PROV-10: the reload is refused, naming the field" \
  wait_for 10 grep -q "reload failed, keeping the running configuration: .*(first at /credentials/mebx_password)" "$T/daemon.log"
check "... and the log names the record and the clause" names_mebx "$T/daemon.log"
check "amtprovd still runs" kill -0 "$DAEMON_PID"
check "status 8003 (reload failed) is recorded" \
  wait_for 5 test "$(q "select count(*) from status_messages where msg_id = 8003")" = 1
kill -TERM "$DAEMON_PID"
expect_rc 0 "amtprovd stops cleanly" wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$T/daemon.log" "$T/once.log"

# --- R-ACC-02: no weak password in any output, log, database or file of the test
check "R-ACC-02: the refused passwords appear nowhere under the test directory" \
  bash -c "! grep -r -a -F -e '$WEAK' -e '$WEAK2' '$T'"
finish
