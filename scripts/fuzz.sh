#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer harnesses (tests/fuzz, clang, ASan+UBSan) in build-fuzz and runs each
# for SECONDS (default 60) on a copy of its committed corpus, FUZZ_JOBS (default 2) at a time.
# Fails on any finding (crash, sanitizer report, leak, timeout, out-of-memory) and prints
# where the reproducer is. docs/fuzzing.md says how to reproduce and how to add seeds.
# Usage: scripts/fuzz.sh [SECONDS] [harness...]      (harness: fuzz_manifest, ...)
# FUZZ_BUILD_ONLY=1: only build (tests/fuzz/make_corpus.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] [harness...]" >&2; exit 2 ;; esac
build=${AMTPROV_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}
all=(fuzz_transport_wsman fuzz_transport_soap fuzz_api_request fuzz_manifest fuzz_credstore_file
     fuzz_scep_reply fuzz_mscert_reply fuzz_amt_signed fuzz_sim_http fuzz_sim_wsman fuzz_sim_soap fuzz_sim_pac)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
# -O1: sanitizers and coverage stay precise while the harnesses run several times faster than
# at -O0.
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DAMTPROV_FUZZ=ON -DAMTPROV_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target fuzzers >/dev/null
[ -z "${FUZZ_BUILD_ONLY:-}" ] || exit 0

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
findings=$build/fuzz-findings
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One harness: its corpus copied (the committed one never grows here), its findings kept in
# $findings/NAME/ for reproduction.
run_one() {
  local h=$1 bin=$build/tests/fuzz/$1 corpus=$work/$1 art=$findings/$1 dict=()
  if [ ! -x "$bin" ]; then
    echo "fuzz: no harness $h" >"$work/$h.log"
    return 1
  fi
  mkdir -p "$corpus" "$art"
  if [ -d "$root/tests/fuzz/corpus/$h" ]; then
    cp -R "$root/tests/fuzz/corpus/$h/." "$corpus/"
  fi
  case "$h" in
    fuzz_transport_*|fuzz_sim_wsman|fuzz_sim_soap) dict=(-dict="$root/tests/fuzz/dict/xml.dict") ;;
    fuzz_sim_http) dict=(-dict="$root/tests/fuzz/dict/http.dict") ;;
    fuzz_manifest|fuzz_api_request) dict=(-dict="$root/tests/fuzz/dict/json.dict") ;;
  esac
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
    -artifact_prefix="$art/" -print_final_stats=1 >"$work/$h.log" 2>&1
}

declare -A name_of=()
failed=()
status_of() {
  local h=$1 rc=$2 art=$findings/$1
  if [ "$rc" -eq 0 ] && [ -z "$(ls -A "$art" 2>/dev/null)" ]; then
    printf '== %-22s ok   (%s)\n' "$h" \
      "$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$h.log" | grep -o '[0-9]*$') runs"
    return
  fi
  failed+=("$h")
  printf '== %-22s FAILED (exit %s)\n' "$h" "$rc"
  if ! grep -E "ERROR: |SUMMARY: |runtime error|Test unit written to" "$work/$h.log" \
      | head -20 | sed 's/^/   /' | grep .; then
    tail -5 "$work/$h.log" | sed 's/^/   /'
  fi
  mkdir -p "$art"
  cp "$work/$h.log" "$art/$h.log"
  echo "   log: $art/$h.log"
  for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* "$art"/slow-unit-*; do
    if [ -e "$f" ]; then echo "   reproduce: $build/tests/fuzz/$h $f"; fi
  done
}

echo "fuzz: ${#harnesses[@]} harness(es), ${secs}s each, $jobs at a time, findings in $findings"
rm -rf "$findings"
queue=("${harnesses[@]}")
while [ ${#queue[@]} -gt 0 ] || [ ${#name_of[@]} -gt 0 ]; do
  while [ ${#queue[@]} -gt 0 ] && [ ${#name_of[@]} -lt "$jobs" ]; do
    run_one "${queue[0]}" &
    name_of[$!]=${queue[0]}
    queue=("${queue[@]:1}")
  done
  rc=0
  wait -n -p done_pid || rc=$?
  h=${name_of[$done_pid]}
  unset "name_of[$done_pid]"
  status_of "$h" "$rc"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (docs/fuzzing.md: reproducing a finding)" >&2
  exit 1
fi
echo "fuzz: no findings"
