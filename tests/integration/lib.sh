# SPDX-License-Identifier: Apache-2.0
# Shared helpers for integration tests: a private temp dir, processes that are always
# stopped (even when a test fails), sanitizer-report detection, and a closing
# "N passed, N failed" line. Source it; set TEST_NAME first.
set -uo pipefail

: "${AMTPROV_BUILD_DIR:?set AMTPROV_BUILD_DIR to the build tree}"
: "${AMTPROV_SOURCE_DIR:?set AMTPROV_SOURCE_DIR to the source tree}"
AMTPROV="$AMTPROV_BUILD_DIR/tools/amtprov"
AMTPROVD="$AMTPROV_BUILD_DIR/tools/amtprovd"
TEST_PLUGINS="$AMTPROV_BUILD_DIR/tests/plugins"

T=$(mktemp -d "${TMPDIR:-/tmp}/amtprov-it-${TEST_NAME:-test}-XXXXXX")
chmod 700 "$T"
# python3 is the system's (Debian's, whose modules scripts/install-deps.sh installs), also for
# child processes: a version manager's shim first in PATH (pyenv) takes some 0.3 s per start
# instead of 0.03, and the tests start python3 hundreds of times.
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ]; then
  mkdir -p "$T/bin" && ln -s /usr/bin/python3 "$T/bin/python3" && PATH="$T/bin:$PATH"
fi
PIDS=()
CLAIMED_NETS=()
PASSED=0
FAILED=0

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  for p in "${CLAIMED_NETS[@]:-}"; do
    [ -n "$p" ] && rm -rf "$p"
  done
  # LeakSanitizer's own tracer crash at a process exit (google/sanitizers#1353) lands in a
  # log under $T; copy it into the test's output, where scripts/test.sh looks for it.
  grep -rs -h -A1 "Tracer caught signal 11" "$T" 2>/dev/null | sed 's/^/lsan-tracer: /'
  if { [ "$FAILED" -gt 0 ] && [ -n "${KEEP_ON_FAILURE:-}" ]; } || [ -n "${KEEP_TEMP:-}" ]; then
    echo "kept $T for inspection" >&2
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT

# claim_net: sets NET to a loopback /24 (127.A.B) that no other test running on this
# machine holds. Claims are directories made atomically under $NET_CLAIM_DIR, each with its
# owner's PID; a claim whose owner is gone (a test killed with SIGKILL) is taken over. The
# claim is released by cleanup. Call it in the test's own shell, not in $(...).
NET_CLAIM_DIR="${TMPDIR:-/tmp}/amtprov-test-nets"
claim_net() {
  local i n a b d owner
  mkdir -p "$NET_CLAIM_DIR"
  for ((i = 0; i < 37500; i++)); do
    n=$(( ($$ * 131 + i) % 37500 ))        # 127.100-249.0-249: 150 x 250 nets
    a=$((100 + n / 250)); b=$((n % 250))
    d="$NET_CLAIM_DIR/127.$a.$b"
    if ! mkdir "$d" 2>/dev/null; then
      owner=$(cat "$d/owner" 2>/dev/null)
      if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null && rm -rf "$d" && mkdir "$d" 2>/dev/null; then
        :
      else
        continue
      fi
    fi
    echo $$ >"$d/owner"
    CLAIMED_NETS+=("$d")
    NET="127.$a.$b"
    return 0
  done
  echo "claim_net: no free loopback /24 under $NET_CLAIM_DIR" >&2
  exit 1
}

pass() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# check NAME CMD...: runs CMD, passes when it exits 0.
check() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# Any AddressSanitizer/UBSan/LSan report in a log file fails the test.
no_sanitizer_reports() {
  local f
  for f in "$@"; do
    if grep -Eq "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" "$f" 2>/dev/null; then
      echo "sanitizer report in $f:" >&2
      cat "$f" >&2
      return 1
    fi
  done
  return 0
}

# run_cli OUT ERR ARGS...: runs amtprov, stores stdout/stderr paths, returns its exit code.
run_cli() {
  local out=$1 err=$2; shift 2
  "$AMTPROV" "$@" >"$out" 2>"$err"
  local rc=$?
  no_sanitizer_reports "$err" || rc=99
  return $rc
}

# expect_rc WANT NAME CMD...: passes when CMD exits with WANT.
expect_rc() {
  local want=$1 name=$2; shift 2
  "$@"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$name"; else fail "$name (exit $rc, want $want)"; fi
}

# start_daemon LOG ARGS...: starts amtprovd in the background; sets DAEMON_PID.
start_daemon() {
  local log=$1; shift
  "$AMTPROVD" "$@" 2>"$log" &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
  local limit=$1; shift
  local i=0
  while ! "$@" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -ge $((limit * 10)) ] && return 1
    sleep 0.1
  done
  return 0
}

finish() {
  echo "${TEST_NAME}: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# A minimal valid site in $T/site (manifest $T/site/site.json), optional JSON to merge.
make_site() {
  local extra=${1:-}
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "it", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$TEST_PLUGINS"]${extra:+,
  $extra}
}
JSON
}

# make_prov_pki DIR [BITS] [DIGEST]: the lab provisioning PKI (scripts/lab-pki.sh) in DIR, its
# leaf valid 200 days; sets ROOT_HASH, the root's SHA-256 that simulated devices must hold.
. "$AMTPROV_SOURCE_DIR/scripts/lab-pki.sh"
make_prov_pki() {
  lab_prov_pki "$1" "${2:-2048}" "${3:-sha256}" 200 || return 1
  ROOT_HASH=$LAB_ROOT_HASH
}

# make_api_cert DIR IP: a self-signed server certificate for amtprovd's API at IP
# (DIR/api.pem, DIR/api.key 0600), which clients then trust with --cacert DIR/api.pem.
make_api_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/api.key" -out "$1/api.pem" \
    -subj "/CN=amtprov api" -days 30 -sha256 -addext "subjectAltName=IP:$2" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  chmod 600 "$1/api.key"
}

# fleet_dev ID ADDR [AMT_VERSION]: an amtsim fleet entry for the pre-provisioned device
# ID.contoso.com (AMT 16.1.25 unless given, DHCP domain contoso.com) that trusts
# make_prov_pki's root ($ROOT_HASH).
fleet_dev() {
  printf '{ "id": "%s", "address": "%s", "amt_version": "%s", "provisioning_state": "in",
    "host_name": "%s", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
    "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "%s" } ] }' \
    "$1" "$2" "${3:-16.1.25}" "$1" "$ROOT_HASH"
}

# start_fleet_sim KEY_POOL KEYGEN_MS ENTRY...: $T/fleet.json with these fleet entries
# (fleet_dev), served by amtsim with its state in $T/sim (log $T/amtsim.log; stopped by the
# trap); returns once its control socket is up.
start_fleet_sim() {
  local pool=$1 ms=$2 devs
  shift 2
  devs=$(printf '%s,\n' "$@")
  mkdir -p "$T/sim"
  printf '{ "key_pool": %s, "keygen_latency_ms": %s,\n  "devices": [\n%s ] }\n' \
    "$pool" "$ms" "${devs%,}" >"$T/fleet.json"
  "$AMTPROV_BUILD_DIR/sim/amtsim" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet \
    2>"$T/amtsim.log" &
  PIDS+=("$!")
  wait_for 20 test -S "$T/sim/control.sock"
}

# make_lab_site NAME [CREDENTIALS_MEMBERS [AMT_MEMBERS]]: $T/site/site.json, a site that
# provisions through the real plugins: amt-transport, ca-local "lab-ca" (web server
# certificates, CRL served on $NET.250:8080) and credstore-file "creds" as the store, with
# make_prov_pki's certificate in $T/pki; SOL and ping on, IDE-R off. The extra JSON members
# go into "credentials" and "amt". Then the database is created.
make_lab_site() {
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "$1", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"${2:+, $2}},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true${3:+,
          $3}}
}
JSON
  "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
}

# run_agents ID...: each device's host agent runs (a new OTP); its report is $T/ID.agent.json.
run_agents() {
  local id
  for id in "$@"; do
    "$AMTPROV_BUILD_DIR/sim/amtsim" agent --state-dir "$T/sim" --device "$id" \
      >"$T/$id.agent.json" 2>>"$T/agent.err" || return 1
  done
}
