#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark of several amtprovd hosts on one PostgreSQL site database (issue 16 item 5):
# the same fleet of N simulated devices (amtsim, all good, LATENCY_MS per firmware call) is
# provisioned by one, two and three amtprovd (each with its own host id, each engine taking
# at most MAX_IN_FLIGHT devices at once) sharing one PostgreSQL server that the script
# starts (initdb + pg_ctl from Debian's postgresql package, on a Unix socket in a private
# directory, no TCP port; stopped by the EXIT trap, tests/pg/pg_lib.sh). Prints, per host
# count: wall time, devices per second, the amtprovd hosts' CPU per device and the database
# server's own CPU per device (utime + stime of the postmaster and every backend, read from
# /proc: the live processes' own times plus the postmaster's reaped children's, so backends
# that ended with their host are counted), and the database's commits per device.
#
# Every run starts from the same point: the devices are registered once (agent + device
# add, not measured) into a template database and a copy of amtsim's state directory; each
# run gets CREATE DATABASE ... TEMPLATE and a fresh copy of that state.
#
# All hosts, amtsim and PostgreSQL share this one machine (said plainly: the figures show
# the cost of the leases and of the shared database, not the capacity of three machines).
# The load average before each run is printed: other work on the machine skews the figures.
# Prints figures; not a test.
# Usage: bench/bench_multihost.sh [N] [HOSTS]   (default 300, "1 2 3")
# Environment: AMTPROV_BUILD_DIR (default: ./build or the current build tree), LATENCY_MS
# (default 100: amtsim's latency per firmware call), MAX_IN_FLIGHT (default 32, per host),
# LEASE_SECONDS (default 60, the engine's lease life), AMT_VERSION (default 16.1.25),
# SYNC_COMMIT (default on: PostgreSQL's synchronous_commit; "off" shows how much of a host's
# time is waiting for the database's commits to reach the disk).
set -euo pipefail
n=${1:-300}
hosts_list=${2:-1 2 3}
case "$n" in ''|*[!0-9]*) echo "usage: bench_multihost.sh [N] [\"HOSTS ...\"]" >&2; exit 2;; esac
if [ "$n" -lt 1 ] || [ "$n" -gt 20000 ]; then echo "bench: N must be 1..20000" >&2; exit 2; fi
for h in $hosts_list; do
  case "$h" in [1-9]) ;; *) echo "bench: host counts are 1..9" >&2; exit 2;; esac
done
latency=${LATENCY_MS:-100}
max_in_flight=${MAX_IN_FLIGHT:-32}
lease=${LEASE_SECONDS:-60}
amt_version=${AMT_VERSION:-16.1.25}
sync_commit=${SYNC_COMMIT:-on}
case "$sync_commit" in on|off) ;; *) echo "bench: SYNC_COMMIT is on or off" >&2; exit 2;; esac
for v in "$latency" "$max_in_flight" "$lease"; do
  case "$v" in ''|*[!0-9]*) echo "bench: LATENCY_MS, MAX_IN_FLIGHT, LEASE_SECONDS are numbers" >&2; exit 2;; esac
done
build=${AMTPROV_BUILD_DIR:-}
if [ -z "$build" ]; then
  for b in "$PWD" "$PWD/build" "$(dirname "$0")/../build"; do
    [ -x "$b/tools/amtprovd" ] && build=$(cd "$b" && pwd) && break
  done
fi
amtprov="$build/tools/amtprov"
amtprovd="$build/tools/amtprovd"
amtsim="$build/sim/amtsim"
src=$(cd "$(dirname "$0")/.." && pwd)
for x in "$amtprov" "$amtprovd" "$amtsim" /usr/bin/time; do
  [ -x "$x" ] || { echo "bench: $x missing (build it; set AMTPROV_BUILD_DIR)" >&2; exit 2; }
done
. "$src/tests/pg/pg_lib.sh"

work=$(mktemp -d /tmp/amtprov-bench-multihost.XXXXXX)
chmod 711 "$work"   # the server may run as the postgres user: it must reach its directory
sim_pid=""
declare -a host_pids=()
cleanup() {
  local p
  for p in "${host_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  wait 2>/dev/null || true
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 127.A.B.C: A from the PID (200..224); C in 1..254.
net_a=$(( 200 + $$ % 25 ))

pg_start "$work/pg" >/dev/null || { echo "bench: cannot start PostgreSQL" >&2; exit 1; }
psql_() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
psql_ "$PG_CONNINFO" -c "ALTER SYSTEM SET synchronous_commit = $sync_commit" -c "SELECT pg_reload_conf()" >/dev/null

. "$src/scripts/lab-pki.sh"
pki="$work/pki"
lab_prov_pki "$pki" 2048 sha256 365 "Bench Provisioning Root" || { echo "bench: cannot make the lab PKI" >&2; exit 1; }
root_hash=$LAB_ROOT_HASH

awk -v n="$n" -v a="$net_a" -v lat="$latency" -v ver="$amt_version" -v hash="$root_hash" 'BEGIN {
  printf "{ \"key_pool\": 8, \"keygen_latency_ms\": 50, \"faults\": { \"latency_ms\": %d }, \"devices\": [\n", lat
  for (i = 1; i <= n; i++)
    printf "%s{\"id\":\"pc%05d\",\"address\":\"127.%d.%d.%d\",\"amt_version\":\"%s\",\"provisioning_state\":\"in\",\"host_name\":\"pc%05d\",\"domain_name\":\"contoso.com\",\"dhcp_domain\":\"contoso.com\",\"root_hashes\":[{\"name\":\"Bench root\",\"algo\":\"sha256\",\"hash\":\"%s\"}]}\n", (i > 1 ? "," : ""), i, a, int((i - 1) / 254), (i - 1) % 254 + 1, ver, i, hash
  print "] }"
}' >"$work/fleet.json"

# One manifest per database: the hosts share it, its state directory (credstore-file's key
# and records) and one ca-local instance (its issuance database is SQLite, written under
# transactions by each process), as tests/integration/test_multihost_pg.sh does. No host
# serves ca-local's CRL (they would all bind one address): the transport's CRL check is off.
site() { # site DIR DBNAME
  mkdir -p "$1"
  cat >"$1/site.json" <<JSON
{ "manifest_version": 1,
  "site": { "name": "bench", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "database": { "url": "host=$PG_HOST user=$PG_USER dbname=$2" },
  "plugin_path": ["$build/plugins"],
  "plugins": { "amt": {"plugin": "amt-transport", "config": {"crl_check": false}},
               "lab-ca": {"plugin": "ca-local", "config": {"crl_url": "http://127.$net_a.250.250:8080/lab-ca.crl"}},
               "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true},
  "engine": {"max_in_flight": $max_in_flight, "lease_seconds": $lease} }
JSON
}

start_sim() { # start_sim STATE_DIR
  "$amtsim" serve --fleet "$work/fleet.json" --state-dir "$1" --quiet 2>"$work/amtsim.log" &
  sim_pid=$!
  for _ in $(seq 1200); do [ -S "$1/control.sock" ] && break; sleep 0.05; done
  [ -S "$1/control.sock" ] || { echo "bench: amtsim did not start" >&2; tail -n 3 "$work/amtsim.log" >&2; exit 1; }
}
stop_sim() {
  kill -TERM "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
}

# ---- registration, once: the template database, site state and amtsim state ----
psql_ "$PG_CONNINFO" -c "CREATE DATABASE tmpl" >/dev/null
site "$work/tmpl" tmpl
"$amtprov" -m "$work/tmpl/site.json" db init >/dev/null
# One amtprovd start with no device yet makes the state every run shares: ca-local's CA and
# credstore-file's key (hosts starting at once on an empty state would each make a CA).
"$amtprovd" -m "$work/tmpl/site.json" --once=60 --log-level warning 2>"$work/init.log" ||
  { echo "bench: the first amtprovd start failed:" >&2; tail -n 5 "$work/init.log" >&2; exit 1; }
mkdir -p "$work/sim0"
start_sim "$work/sim0"
t0=$(date +%s%N)
for ((i = 1; i <= n; i++)); do
  id=$(printf 'pc%05d' "$i")
  "$amtsim" agent --state-dir "$work/sim0" --device "$id" >"$work/agent.json"
  "$amtprov" -m "$work/tmpl/site.json" device add --from-json "$work/agent.json" >/dev/null
done
t1=$(date +%s%N)
stop_sim
rm -f "$work/sim0/control.sock"
echo "   (registration of $n devices took $(( (t1 - t0) / 1000000 )) ms, not counted)" >&2

# CPU seconds of the PostgreSQL server so far: the postmaster and its live children, plus
# the children it has reaped (cutime/cstime), from /proc/PID/stat.
pg_cpu() {
  local pm kids
  pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  kids=$(pgrep -P "$pm" | sed 's|.*|/proc/&/stat|' | tr '\n' ' ')
  # shellcheck disable=SC2086  # one path per child
  cat "/proc/$pm/stat" $kids 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" -v pm="$pm" '
    {
      # the command may contain spaces: fields counted after its closing parenthesis
      pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
      ut = f[12]; st = f[13]; cut = f[14]; cst = f[15]
      total += ut + st
      if (pid == pm) total += cut + cst
    }
    END { printf "%.2f", total / hz }'
}
sim_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$sim_pid/stat"
}
commits() { psql_ "$PG_CONNINFO" -c "select xact_commit from pg_stat_database where datname = '$1'"; }

# ---- one run per host count ----
run() {
  local hosts=$1 db="run$1" dir="$work/run$1" h pids=() ms ok cpu_pg0 cpu_pg1 hcpu=0 c0 c1 load s0 s1
  psql_ "$PG_CONNINFO" -c "CREATE DATABASE $db TEMPLATE tmpl" >/dev/null
  site "$dir/site" "$db"
  # the state directory (credstore-file's key and records) as registration left it
  cp -a "$work/tmpl/state" "$dir/site/state"
  cp -a "$work/sim0" "$dir/sim"
  start_sim "$dir/sim"
  load=$(cut -d' ' -f1 /proc/loadavg)
  cpu_pg0=$(pg_cpu)
  s0=$(sim_cpu)
  c0=$(commits "$db")
  t0=$(date +%s%N)
  for ((h = 1; h <= hosts; h++)); do
    AMTPROV_HOST_ID="bench-h$h" /usr/bin/time -f '%U %S' -o "$dir/rusage$h" \
      "$amtprovd" -m "$dir/site/site.json" --once=3000 --log-level "${LOG_LEVEL:-warning}" 2>"$dir/h$h.log" &
    pids+=($!)
  done
  host_pids=("${pids[@]}")
  for p in "${pids[@]}"; do wait "$p" || true; done
  host_pids=()
  t1=$(date +%s%N)
  cpu_pg1=$(pg_cpu)
  s1=$(sim_cpu)
  c1=$(commits "$db")
  stop_sim
  ms=$(( (t1 - t0) / 1000000 ))
  ok=$(psql_ "host=$PG_HOST user=$PG_USER dbname=$db" -c "select count(*) from devices where state = 'PROVISIONED'")
  for ((h = 1; h <= hosts; h++)); do
    hcpu=$(awk -v a="$hcpu" '{ printf "%.2f", a + $1 + $2 }' "$dir/rusage$h")
  done
  awk -v h="$hosts" -v n="$n" -v ok="$ok" -v ms="$ms" -v hc="$hcpu" -v p0="$cpu_pg0" \
      -v p1="$cpu_pg1" -v c="$((c1 - c0))" -v load="$load" -v s0="$s0" -v s1="$s1" 'BEGIN {
    printf "%5d %6d %6d %8.1f %7.2f %11.1f %11.1f %9.1f %11.1f %6.1f\n", h, n, ok, ms / 1000,
      ok * 1000 / ms, hc * 1000 / n, (p1 - p0) * 1000 / n, (s1 - s0) * 1000 / n, c / n, load
  }'
  if [ "$ok" -ne "$n" ]; then
    echo "   ($((n - ok)) not provisioned; first errors of the hosts:)"
    cat "$dir"/h*.log | grep -m 3 -i 'error\|fail' | sed 's/^/   /' || true
  fi
  psql_ "$PG_CONNINFO" -c "DROP DATABASE $db" >/dev/null
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS/run$hosts"; cp "$dir"/h*.log "$KEEP_LOGS/run$hosts/"; fi
  rm -rf "$dir"
}

echo "== several amtprovd on one PostgreSQL ($("$PG_BIN/postgres" --version | sed 's/^postgres (PostgreSQL) //'), Unix socket, fsync on, synchronous_commit $sync_commit)"
echo "== fleet: $n devices, AMT $amt_version, ${latency} ms per firmware call; engine.max_in_flight $max_in_flight per host; $(nproc) CPU(s)"
echo "hosts      N   done   wall_s   dev/s amtprovd_ms postgres_ms amtsim_ms   xacts/dev  load1"
for h in $hosts_list; do
  run "$h"
done
cat <<EOF
   amtprovd_ms = CPU (user+system) of all the hosts together, per device;
   postgres_ms = the database server's own CPU per device (postmaster + backends, /proc);
   amtsim_ms = the simulated fleet's CPU per device (one process playing every device);
   xacts/dev = transactions committed in the run's database per device (pg_stat_database:
     every statement outside an explicit transaction counts, reads included);
   load1 = the machine's 1-minute load average when the run began.
EOF
