#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark of provisioning (issue 5 item 6): for each N, a fleet of N simulated devices
# (amtsim, all good) is registered and provisioned through amtprovd with the real plugins
# (amt-transport, ca-local, credstore-file) exactly as scripts/demo.sh does, once without
# and once with injected firmware latency per call. Prints wall time, devices per second,
# amtprovd's own CPU seconds per device (getrusage of amtprovd alone via /usr/bin/time:
# amtsim runs in a separate process), amtprovd's peak RSS, and beside them the crypto floor
# measured in the same run (bench/crypto_floor.c) and the ratio CPU per device / floor.
# Prints figures; not a test.
# First, a separate section counts fsyncs per device and those on the event-loop thread
# (strace; FSYNC_N devices, default 100, 0 skips it).
# Usage: bench/bench_provision.sh [SIZES] [LATENCIES_MS]   (default "100 1000" "0 100")
# Environment: AMTPROV_BUILD_DIR (default: the current directory if it is a build tree,
# else ./build), AMT_VERSIONS (default "11.8.50 12.0.45 16.1.25 15.0.30", used round robin),
# KEY_SOURCE (the manifest's web_server key_source, default "auto": AMT >= 9 generates the
# key; "amtprov": amtprovd makes an RSA key per device). The floor printed is the one of the
# key source in use (AMT_VERSIONS below 9.0 make key_source auto use amtprov's key).
# CA_KEY (default rsa:3072, ca-local's default; or rsa:BITS, ec:CURVE): the embedded CA's key,
# set in the site and charged in the floor. AMTSIM: another amtsim binary (e.g. this tree's,
# to count an older amtprovd's handshakes). Besides amtprovd's figures it prints, counted by
# amtsim (control socket "stats", before and after the run): TLS handshakes (full and
# resumed), HTTP requests and 401 challenges per device, and amtsim's own CPU during the run.
# MAX_IN_FLIGHT (default 256, the engine's default): the site's engine.max_in_flight (issue 13
# item 4: 10000 with N=10000 puts every device in flight at once); the peak RSS column then
# divides by it (rss_KiB/inflight). MAX_STARTING (default: the engine's, 256): the site's
# engine.max_starting, the ramp (devices the scan started in a flow at once). The column
# peak_fds is the most descriptors amtprovd held (sampled every 0.2 s: about one TLS
# connection per device in a flow or parked, plus ~25). PERF_DATA=PREFIX: amtprovd runs under perf record (call
# graphs by DWARF unwinding, 499 Hz) into PREFIX-N-LAT; its CPU column then includes perf's.
# CALLGRIND=PREFIX: amtprovd runs under valgrind's callgrind into PREFIX-N-LAT and the
# instructions it executed are printed: a count the machine's load does not move (this VM
# has no hardware counters for perf stat); run two sizes and divide the difference by the
# difference of N for the instructions per device (start-up cancels). Its CPU columns are
# then valgrind's (~50x slower).
set -euo pipefail
sizes=${1:-100 1000}
latencies=${2:-0 100}
# SIZES "-" runs the fsync section alone.
[ "$sizes" = - ] && sizes=""
for s in $sizes $latencies; do
  case "$s" in ''|*[!0-9]*) echo "usage: bench_provision.sh [\"N ...\"] [\"MS ...\"]" >&2; exit 2;; esac
done
for s in $sizes; do
  if [ "$s" -lt 1 ] || [ "$s" -gt 20000 ]; then echo "bench: N must be 1..20000" >&2; exit 2; fi
done
build=${AMTPROV_BUILD_DIR:-}
if [ -z "$build" ]; then
  for b in "$PWD" "$PWD/build" "$(dirname "$0")/../build"; do
    [ -x "$b/tools/amtprovd" ] && build=$(cd "$b" && pwd) && break
  done
fi
amtprov="$build/tools/amtprov"
amtprovd="$build/tools/amtprovd"
amtsim=${AMTSIM:-$build/sim/amtsim}
here=$(cd "$(dirname "$0")" && pwd)
floor="$build/bench/crypto_floor"
for x in "$amtprov" "$amtprovd" "$amtsim" "$floor" /usr/bin/time; do
  [ -x "$x" ] || { echo "bench: $x missing (build it; set AMTPROV_BUILD_DIR)" >&2; exit 2; }
done
read -r -a versions <<<"${AMT_VERSIONS:-11.8.50 12.0.45 16.1.25 15.0.30}"
key_source=${KEY_SOURCE:-auto}
max_in_flight=${MAX_IN_FLIGHT:-256}
case "$max_in_flight" in ''|*[!0-9]*) echo "bench: MAX_IN_FLIGHT is a number" >&2; exit 2;; esac
max_starting=${MAX_STARTING:-}
case "$max_starting" in *[!0-9]*) echo "bench: MAX_STARTING is a number" >&2; exit 2;; esac
engine_extra=""
[ -n "$max_starting" ] && engine_extra=", \"max_starting\": $max_starting"
ca_key=${CA_KEY:-rsa:3072}
case "$ca_key" in
  rsa:2048|rsa:3072|rsa:4096) ca_cfg="\"key_type\": \"rsa\", \"key_bits\": ${ca_key#rsa:}";;
  ec:*) ca_cfg="\"key_type\": \"ec\", \"curve\": \"${ca_key#ec:}\"";;
  *) echo "bench: CA_KEY is rsa:2048|3072|4096 or ec:CURVE" >&2; exit 2;;
esac
case "$key_source" in auto|amtprov) ;; *) echo "bench: KEY_SOURCE must be auto or amtprov" >&2; exit 2;; esac
amt_keys=1
[ "$key_source" = amtprov ] && amt_keys=0
for v in "${versions[@]}"; do [ "${v%%.*}" -lt 9 ] && amt_keys=0; done

work=$(mktemp -d /tmp/amtprov-bench-prov.XXXXXX)
chmod 700 "$work"
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 127.A.B.C: A from the PID (225..249: no test uses them); C in 1..254.
net_a=$(( 225 + $$ % 25 ))

echo "== crypto floor (this machine, one core)"
"$floor" 0.5 "$ca_key" >"$work/floor.txt"
sed 's/^/   /' "$work/floor.txt"
if [ "$amt_keys" = 1 ]; then
  floor_ms=$(sed -n 's/^floor_ms_amt_key=//p' "$work/floor.txt")
  floor_what="key generated inside AMT: 2 handshakes (2 ECDHE, 2 verifies, 1 client sign), 1 $ca_key CA sign, 1 verify"
else
  floor_ms=$(sed -n 's/^floor_ms=//p' "$work/floor.txt")
  floor_what="key made by amtprov: 2 handshakes (2 ECDHE, 2 verifies, 1 client sign), 1 $ca_key CA sign, 1 RSA-2048 keygen and sign"
fi

. "$here/../scripts/lab-pki.sh"
pki="$work/pki"
lab_prov_pki "$pki" 2048 sha256 365 "Bench Provisioning Root" || { echo "bench: cannot make the lab PKI" >&2; exit 1; }
root_hash=$LAB_ROOT_HASH

# The most descriptors amtprovd (the child of /usr/bin/time, or of perf) held, sampled every
# 0.2 s until it exits (0: it was not found within 10 s).
fds_peak() {
  local t=$1 p="" q k peak=0
  for _ in $(seq 500); do
    p=$(pgrep -P "$t" | head -1 || true)
    [ -n "$p" ] && [ -z "${PERF_DATA:-}" ] && break
    [ -n "$p" ] && q=$(pgrep -P "$p" | head -1 || true) && [ -n "$q" ] && p=$q && break
    sleep 0.02
  done
  while [ -n "$p" ] && [ -d "/proc/$p/fd" ]; do
    k=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
    [ "$k" -gt "$peak" ] && peak=$k
    sleep 0.2
  done
  echo "$peak"
}

# amtsim's counters (one JSON line from its control socket) and its CPU seconds so far.
sim_stats() {
  python3 "$here/sim_ctl.py" "$1"
}
sim_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# One run: N devices, LAT ms per call. Prints one result line. MODE "fsync" runs amtprovd
# under strace instead, for the fsync section (its CPU figures would be strace's).
run() {
  local n=$1 lat=$2 mode=${3:-time} dir="$work/run-$1-$2" i id t0 t1 ms ok rss user sys cpu_ms fds
  mkdir -p "$dir/sim" "$dir/site"
  awk -v n="$n" -v a="$net_a" -v lat="$lat" -v vers="${versions[*]}" -v hash="$root_hash" 'BEGIN {
    nv = split(vers, v, " ")
    printf "{ \"key_pool\": 8, \"keygen_latency_ms\": 50, \"faults\": { \"latency_ms\": %d }, \"devices\": [\n", lat
    for (i = 1; i <= n; i++)
      printf "%s{\"id\":\"pc%05d\",\"address\":\"127.%d.%d.%d\",\"amt_version\":\"%s\",\"provisioning_state\":\"in\",\"host_name\":\"pc%05d\",\"domain_name\":\"contoso.com\",\"dhcp_domain\":\"contoso.com\",\"root_hashes\":[{\"name\":\"Bench root\",\"algo\":\"sha256\",\"hash\":\"%s\"}]}\n", (i > 1 ? "," : ""), i, a, int((i - 1) / 254), (i - 1) % 254 + 1, v[(i - 1) % nv + 1], i, hash
    print "] }"
  }' >"$dir/fleet.json"
  "$amtsim" serve --fleet "$dir/fleet.json" --state-dir "$dir/sim" --quiet 2>"$dir/amtsim.log" &
  sim_pid=$!
  for _ in $(seq 1200); do [ -S "$dir/sim/control.sock" ] && break; sleep 0.05; done
  [ -S "$dir/sim/control.sock" ] || { echo "bench: amtsim did not start" >&2; tail -n 3 "$dir/amtsim.log" >&2; return 1; }
  cat >"$dir/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "bench", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$build/plugins"],
  "plugins": {
    "amt":    { "plugin": "amt-transport" },
    "lab-ca": { "plugin": "ca-local", "config": { "crl_listen": "127.$net_a.250.250:8080", $ca_cfg } },
    "creds":  { "plugin": "credstore-file" }
  },
  "credentials": { "store": "creds" },
  "certificates": { "web_server": { "ca": "lab-ca", "template": "AMTWebServer", "key_source": "$key_source" } },
  "provisioning_certificate": { "certificate": "$pki/chain.pem", "key": "$pki/prov.key" },
  "amt": { "transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true },
  "engine": { "max_in_flight": $max_in_flight$engine_extra }
}
JSON
  "$amtprov" -m "$dir/site/site.json" db init >/dev/null
  # The site's first start makes ca-local's root and issuing keys (two RSA-3072 key
  # generations, 0.5-3 s of CPU, random): once per site, not per device nor per run. Done
  # here with no device registered, so the measured run only loads them (before this, that
  # start-up cost was charged to the N devices: ~7 ms per device at N=300).
  /usr/bin/time -f '%U %S' -o "$dir/rusage0" \
    "$amtprovd" -m "$dir/site/site.json" --once=3000 --log-level warning 2>"$dir/amtprovd0.log" || true
  echo "   (N=$n latency $lat ms: the site's first start, no device: $(awk '{ printf "%.2f", $1 + $2 }' "$dir/rusage0") s CPU, not counted)" >&2
  # Registration is the agents' work, not amtprovd's: outside the measurement.
  t0=$(date +%s%N)
  for ((i = 1; i <= n; i++)); do
    id=$(printf 'pc%05d' "$i")
    "$amtsim" agent --state-dir "$dir/sim" --device "$id" >"$dir/agent.json"
    "$amtprov" -m "$dir/site/site.json" device add --from-json "$dir/agent.json" >/dev/null
  done
  t1=$(date +%s%N)
  echo "   (N=$n latency $lat ms: registration took $(( (t1 - t0) / 1000000 )) ms, not counted)" >&2
  if [ "$mode" = fsync ]; then
    fsync_run "$n" "$dir"
    return
  fi
  sim_stats "$dir/sim/control.sock" >"$dir/stats0"
  sim_cpu0=$(sim_cpu "$sim_pid")
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S %M' -o "$dir/rusage" ${PERF_DATA:+perf record -q -F 499 --call-graph dwarf,16384 -o "$PERF_DATA-$n-$lat"} \
    ${CALLGRIND:+valgrind -q --tool=callgrind --callgrind-out-file="$CALLGRIND-$n-$lat"} \
    "$amtprovd" -m "$dir/site/site.json" --once=3000 --log-level warning 2>"$dir/amtprovd.log" &
  local run_pid=$! fds_pid
  fds_peak "$run_pid" >"$dir/fds" &
  fds_pid=$!
  wait "$run_pid" || true
  wait "$fds_pid" || true
  t1=$(date +%s%N)
  sim_stats "$dir/sim/control.sock" >"$dir/stats1"
  sim_cpu1=$(sim_cpu "$sim_pid")
  ms=$(( (t1 - t0) / 1000000 ))
  ok=$("$amtprov" -m "$dir/site/site.json" device list --state PROVISIONED | grep -c contoso || true)
  kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  read -r user sys rss <"$dir/rusage"
  fds=$(cat "$dir/fds" 2>/dev/null || echo 0)
  cpu_ms=$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { printf "%.1f", (u + s) * 1000 / n }')
  awk -v n="$n" -v lat="$lat" -v ok="$ok" -v ms="$ms" -v cpu="$cpu_ms" -v u="$user" -v s="$sys" \
      -v rss="$rss" -v f="$floor_ms" -v mif="$max_in_flight" -v fds="$fds" 'BEGIN {
    inflight = n < mif ? n : mif
    printf "%6d %6d %6d %8.1f %7.1f %8.1f %11.4f %9.2f %8.1f %8.1f %10.1f %9d\n", n, lat, ok,
      ms / 1000, ok * 1000 / ms, u + s, cpu / 1000, f, cpu / f, rss / 1024, rss / inflight, fds
  }'
  # ---- network counters (issue 13 item 1: handshakes, requests, 401s; counted by amtsim) ----
  python3 - "$dir/stats0" "$dir/stats1" "$n" "$lat" "$sim_cpu0" "$sim_cpu1" >>"$work/net.txt" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
n, lat, c0, c1 = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
d = {k: b.get(k, 0) - a.get(k, 0) for k in ("handshakes", "resumed", "requests", "challenges")}
print("%6d %6d %7.2f %8.2f %8.2f %8.2f %10.1f" % (n, lat, d["handshakes"] / n, d["resumed"] / n,
      d["requests"] / n, d["challenges"] / n, c1 - c0))
PY
  # ---- end of network counters ----
  if [ -n "${CALLGRIND:-}" ]; then
    echo "   (N=$n latency $lat ms: amtprovd executed $(sed -n 's/^summary: //p' "$CALLGRIND-$n-$lat") instructions, callgrind)"
  fi
  if [ "$ok" -ne "$n" ]; then
    echo "   ($((n - ok)) not provisioned; first errors of amtprovd:)"
    grep -m 3 -i 'error\|fail' "$dir/amtprovd.log" | sed 's/^/   /' || true
  fi
  rm -rf "$dir"
}

# ---- fsyncs (issue 13 items 2, 5): counted with strace, not estimated ----
# amtprovd --once under strace -f: every fsync/fdatasync of any thread, and those of the
# main thread (the event loop runs on amtprovd's main thread, whose tid is its pid: the
# pid of the traced execve).
fsync_run() {
  local n=$1 dir=$2 ok main total loop
  strace -f -qq -y -o "$dir/strace" -e trace=execve,fsync,fdatasync,sync_file_range,msync \
    "$amtprovd" -m "$dir/site/site.json" --once=3000 --log-level warning 2>"$dir/amtprovd.log" || true
  ok=$("$amtprov" -m "$dir/site/site.json" device list --state PROVISIONED | grep -c contoso || true)
  kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  main=$(awk '$2 ~ /^execve\(/ && $NF == "0" { print $1; exit }' "$dir/strace")
  total=$(grep -cE '^[0-9]+ +(fsync|fdatasync|sync_file_range|msync)\(' "$dir/strace" || true)
  loop=$(grep -cE "^$main +(fsync|fdatasync|sync_file_range|msync)\\(" "$dir/strace" || true)
  awk -v n="$n" -v ok="$ok" -v t="$total" -v l="$loop" 'BEGIN {
    printf "%6d %6d %8d %8.2f %8d %9.2f\n", n, ok, t, t / n, l, l / n }'
  # Per file (strace -y names each descriptor's file) and thread: loop or other.
  awk -v main="$main" -v n="$n" '$2 ~ /^(fsync|fdatasync|sync_file_range|msync)\(/ {
      f = $2; sub(/^[a-z_]+\([0-9]+</, "", f); sub(/>.*/, "", f); sub(/.*\//, "", f)
      sub(/^[0-9a-f]+\.[a-z]+$/, "<record file>", f)
      k = f (($1 == main) ? " (loop)" : " (other threads)"); c[k]++ }
    END { for (k in c) printf "         %8.2f per device  %s\n", c[k] / n, k }' "$dir/strace" | sort -k 4
  [ -n "${KEEP_STRACE:-}" ] && cp "$dir/strace" "$KEEP_STRACE"
  rm -rf "$dir"
}

if [ "${FSYNC_N:-100}" != 0 ]; then
  command -v strace >/dev/null || { echo "bench: strace missing (FSYNC_N=0 skips this section)" >&2; exit 2; }
  echo "== fsyncs per device (strace -f; latency 0; FSYNC_N=${FSYNC_N:-100}, 0 skips)"
  echo "     N   done   fsyncs  per_dev  on_loop  loop_per_dev"
  run "${FSYNC_N:-100}" 0 fsync
  echo "   fsyncs = fsync + fdatasync + sync_file_range + msync calls of every amtprovd thread;"
  echo "   on_loop = those of the event-loop (main) thread."
fi

echo "== provisioning through amtprovd (amt-transport, ca-local, credstore-file)"
echo "== provisioning: key_source $key_source; floor = $floor_what"
echo "== engine.max_in_flight $max_in_flight, engine.max_starting ${max_starting:-(default)}"
echo "     N lat_ms   done  wall_s   dev/s    cpu_s  cpu_s/dev  floor_ms  x_floor  rss_MiB rss_KiB/inflight peak_fds"
for n in $sizes; do
  for lat in $latencies; do
    run "$n" "$lat"
  done
done
cat <<EOF
   cpu = amtprovd's own user+system CPU (all its threads), per device registered;
   x_floor = cpu per device / crypto floor of one device ($floor_ms ms, measured above).
   Registration (agent + device add) is not measured.
EOF
echo "== network per device, counted by amtsim during amtprovd's run (same runs)"
echo "     N lat_ms  hs/dev  resumed  req/dev  401/dev  sim_cpu_s"
cat "$work/net.txt" 2>/dev/null || true
echo "   hs = full TLS handshakes; resumed = abbreviated ones; 401 = Digest challenges sent;"
echo "   sim_cpu_s = amtsim's own CPU during amtprovd's run"
