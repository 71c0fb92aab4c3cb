#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs dependencies, then builds and runs every test twice: a normal build with
# warnings as errors, and an AddressSanitizer + UndefinedBehaviorSanitizer build that fails
# on any sanitizer report, then runs every libFuzzer harness (tests/fuzz) briefly on its
# committed corpus. The sanitizer build and the fuzz harnesses compile at the lowest CPU
# priority while the suite before them runs. Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/install-deps.sh all

# LeakSanitizer's stop-the-world tracer sometimes crashes at a process exit under load
# ("Tracer caught signal 11" + "LeakSanitizer has encountered a fatal error"), before any
# leak check ran (google/sanitizers#1353). That is the tool failing, not our code. When the
# failed tests' log carries that signature and no sanitizer report at all, the failed tests
# run once more; anything else (a leak, an ASan/UBSan report, a second failure) stays red.
only_lsan_tracer_crash() {
  local log=$1/Testing/Temporary/LastTest.log
  grep -q "Tracer caught signal 11" "$log" &&
    grep -q "LeakSanitizer has encountered a fatal error" "$log" &&
    ! grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer" "$log"
}

configure() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DAMTPROV_WERROR=ON -DAMTPROV_BUILD_TESTS=ON "$@" >/dev/null
}

# The next build compiles while a test suite runs, at the lowest CPU priority: the integration
# tests mostly wait (on daemons, simulated firmware, their polls), so the compiler takes the
# idle CPU and next to nothing from the tests. ahead BUILD-LOG CMD... starts it (in its own
# process group, stopped with the script); ahead_wait waits for it and fails with its log if
# it failed.
AHEAD_PID=""
AHEAD_LOG=""
trap '[ -z "$AHEAD_PID" ] || kill -- "-$AHEAD_PID" 2>/dev/null' EXIT
ahead() {
  AHEAD_LOG=$1; shift
  setsid nice -n 19 "$@" >"$AHEAD_LOG" 2>&1 &
  AHEAD_PID=$!
}
ahead_wait() {
  local rc=0
  [ -n "$AHEAD_PID" ] || return 0
  wait "$AHEAD_PID" || rc=$?
  AHEAD_PID=""
  if [ "$rc" -ne 0 ]; then
    cat "$AHEAD_LOG"
    echo "== build failed (exit $rc): $AHEAD_LOG" >&2
    return 1
  fi
  tail -3 "$AHEAD_LOG"
}

# run_suite DIR: runs the tests of the build in DIR.
run_suite() {
  local dir=$1
  if ctest --test-dir "$dir" --output-on-failure -j"$jobs"; then
    return 0
  fi
  if [ -n "${LSAN_OPTIONS:-}" ] && only_lsan_tracer_crash "$dir"; then
    echo "== LeakSanitizer's tracer crashed at a process exit (no sanitizer report): re-running the failed tests once"
    ctest --test-dir "$dir" --output-on-failure --rerun-failed
    return
  fi
  return 1
}

echo "== normal build =="
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
if [ "${1:-}" != "--no-sanitize" ]; then
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DAMTPROV_SANITIZE=ON
  echo "== the AddressSanitizer build compiles meanwhile (nice 19, log build-asan/ahead.log) =="
  ahead "$root/build-asan/ahead.log" cmake --build build-asan -j"$jobs"
fi
run_suite build
# CI artifacts the tests leave (test_status_page: the status page as headless Chromium
# rendered the test fleet).
for f in "$root"/build/test-artifacts/*; do
  [ -e "$f" ] && echo "== artifact: $f"
done

if [ "${1:-}" != "--no-sanitize" ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
  # halt_on_error/abort_on_error: any report fails the test that triggered it.
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
  export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
  ahead_wait
  cmake --build build-asan -j"$jobs"
  echo "== the fuzz harnesses compile meanwhile (nice 19, log build-asan/fuzz-build.log) =="
  ahead "$root/build-asan/fuzz-build.log" env FUZZ_BUILD_ONLY=1 bash scripts/fuzz.sh
  run_suite build-asan
  ahead_wait

  # Every harness for a short fixed time, two at a time (about 3 minutes on 2 cores with the
  # clang build; 15 s each keeps CI under its 30 minutes now that two test runs take 20);
  # any finding fails. scripts/fuzz.sh SECONDS runs them longer.
  echo "== fuzzing (libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-15}s per harness) =="
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
else
  echo "== fuzzing skipped (--no-sanitize): the harnesses are sanitizer builds =="
fi
echo "all tests passed"
