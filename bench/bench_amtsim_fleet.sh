#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark of amtsim's fleet mode (issue 4 item 6): starts a fleet of N simulated devices,
# each on its own 127.A.B.C address, and prints how long the fleet took to come up, how long
# one WS-Man Get (AMT_GeneralSettings, HTTPS + Digest) on EVERY device took, how many
# answered, amtsim's peak RSS and its open file descriptors. Prints figures; not a test.
# Usage: bench/bench_amtsim_fleet.sh [DEVICES] [CONCURRENCY]   (default 10000 500)
# Environment: AMTPROV_BUILD_DIR (default ./build-bench, else ./build), AMT_VERSION (16.1.25).
set -euo pipefail
n=${1:-10000}
conc=${2:-500}
case "$n$conc" in ''|*[!0-9]*) echo "usage: bench_amtsim_fleet.sh [DEVICES] [CONCURRENCY]" >&2; exit 2;; esac
if [ "$n" -lt 1 ] || [ "$n" -gt 60000 ]; then echo "bench: DEVICES must be 1..60000" >&2; exit 2; fi
build=${AMTPROV_BUILD_DIR:-}
if [ -z "$build" ]; then
  for b in "$PWD" "$PWD/build" "$(dirname "$0")/../build"; do
    [ -x "$b/sim/amtsim" ] && build=$b && break
  done
fi
amtsim="$build/sim/amtsim"
getall="$build/bench/wsman_get_all"
for x in "$amtsim" "$getall"; do
  [ -x "$x" ] || { echo "bench: $x not built (set AMTPROV_BUILD_DIR)" >&2; exit 2; }
done
# CSME 16.1 and later serve TLS only: one listening socket per device. Older firmware also
# listens on 16992, which doubles the descriptors (see docs/benchmarks.md).
version=${AMT_VERSION:-16.1.25}

work=$(mktemp -d /tmp/amtprov-bench-fleet.XXXXXX)
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 127.A.B.C: A from the PID (200..224: no test uses them) so parallel runs do not collide; C in 1..254 (no .0, no .255).
net_a=$(( 200 + $$ % 25 ))
awk -v n="$n" -v a="$net_a" -v ver="$version" 'BEGIN {
  printf "{ \"key_pool\": 8, \"defaults\": { \"amt_version\": \"%s\" }, \"devices\": [\n", ver
  for (i = 0; i < n; i++) {
    addr = sprintf("127.%d.%d.%d", a, int(i / 254), i % 254 + 1)
    printf "%s{\"id\":\"d%05d\",\"address\":\"%s\",\"provisioning_state\":\"post\",\"control_mode\":\"acm\",\"admin_password\":\"P@ssw0rd1\"}\n", (i ? "," : ""), i, addr
    print addr >"/dev/stderr"
  }
  print "] }"
}' >"$work/fleet.json" 2>"$work/addresses"

stats() {
  python3 "$(dirname "$0")/sim_ctl.py" "$work/sim/control.sock" devices
}

echo "== amtsim fleet: $n devices (AMT $version) on 127.$net_a.0.0/16, Get concurrency $conc"
t0=$(date +%s%N)
"$amtsim" serve --fleet "$work/fleet.json" --state-dir "$work/sim" --quiet 2>"$work/amtsim.log" &
sim_pid=$!
up=""
for _ in $(seq 1800); do
  if [ -S "$work/sim/control.sock" ] && [ "$(stats 2>/dev/null)" = "$n" ]; then up=1; break; fi
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.05
done
t1=$(date +%s%N)
if [ -z "$up" ]; then
  echo "bench: amtsim did not come up:" >&2; tail -n 5 "$work/amtsim.log" >&2; exit 1
fi
start_ms=$(( (t1 - t0) / 1000000 ))
get=$("$getall" -c "$conc" "$work/addresses" || true)
t2=$(date +%s%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$sim_pid/status")
fds=$(ls "/proc/$sim_pid/fd" | wc -l)
limit=$(awk '/Max open files/ {print $4}' "/proc/$sim_pid/limits")
cpu=$(awk '{printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$sim_pid/stat")
answered=$(sed -n 's/.*get_all_answered=\([0-9]*\).*/\1/p' <<<"$get")
get_s=$(sed -n 's/.*get_all_seconds=\([0-9.]*\).*/\1/p' <<<"$get")
printf 'devices                 %d\n' "$n"
printf 'start (to control ok)   %d.%03d s\n' $((start_ms / 1000)) $((start_ms % 1000))
printf 'Get answered            %s of %d in %s s\n' "${answered:-0}" "$n" "${get_s:-?}"
printf 'start + Get on all      %d.%03d s\n' $(( (t2 - t0) / 1000000000 )) $(( (t2 - t0) / 1000000 % 1000 ))
printf 'amtsim peak RSS         %d MiB (%d KiB per device)\n' $((hwm / 1024)) $((hwm / n))
printf 'amtsim open fds         %d (limit %s)\n' "$fds" "$limit"
printf 'amtsim CPU so far       %s s\n' "$cpu"
[ "${answered:-0}" = "$n" ]
