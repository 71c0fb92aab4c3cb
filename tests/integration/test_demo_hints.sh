#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo as a newcomer runs it (on this build, a private directory and loopback net): it
# provisions its fleet, and every command of its closing "where to look next" list works
# after the demo has ended and stopped its simulator (issue 17: 'amtsim dump' needed the
# simulator the demo had just stopped). Its computers register themselves through
# amtprov-agent (issue 15).
TEST_NAME=demo_hints
. "$(dirname "$0")/lib.sh"

claim_net
AMTPROV_DEMO_BUILD="$AMTPROV_BUILD_DIR" AMTPROV_DEMO_DIR="$T/demo" AMTPROV_DEMO_NET="$NET" \
  bash "$AMTPROV_SOURCE_DIR/scripts/demo.sh" 6 >"$T/demo.out" 2>"$T/demo.err"
rc=$?
check "the demo exits 0" test "$rc" -eq 0
check "the demo provisioned its fleet (3 of 6: three fail on purpose)" \
  grep -q "^3 of 6 devices provisioned" "$T/demo.out"
no_sim_left() { ! pgrep -f -- "amtsim serve --fleet $T/demo/" >/dev/null; }
check "no simulator is left running after the demo" no_sim_left
no_daemon_left() { ! pgrep -f -- "amtprovd -m $T/demo/site.json" >/dev/null; }
check "no amtprovd is left running after the demo" no_daemon_left
check "R-PROV-02: every computer registered itself through amtprov-agent over its MEI (issue 15)" \
  test "$(cat "$T"/demo/hosts/pc*.agent.out 2>/dev/null | grep -c '^registered pc')" -eq 6
check "... and 3 of the 6 agents saw their computer provisioned" grep -q "3 of 6 agents saw" "$T/demo.out"
sed -n '/^Where to look next/,$p' "$T/demo.out" | tail -n +2 | sed 's/ *#.*$//' | grep -v '^ *$' >"$T/hints"
check "the demo prints at least four hints" test "$(wc -l <"$T/hints")" -ge 4
check "one hint shows a failed device" grep -q "device show" "$T/hints"
i=0
while read -r line; do
  i=$((i + 1))
  # 'less' pages for a person; the test reads the file.
  cmd=${line/#less /cat }
  expect_rc 0 "hint $i works after the demo ended: $line" \
    bash -c "$cmd >'$T/hint.out' 2>'$T/hint.err' && [ -s '$T/hint.out' ]"
done <"$T/hints"
check "no sanitizer report" no_sanitizer_reports "$T/demo.err" "$T/demo/amtprovd.log"
finish
