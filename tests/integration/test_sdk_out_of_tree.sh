#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The plugin SDK works for a third party (STYLE 21/24, R-CA-05): install amtprov into a
# private prefix, build examples/ca-plugin-skeleton out of tree against that prefix only
# (CMake with pkg_check_modules, and the plain Makefile with `pkg-config --cflags amtprov`),
# check that the compiler saw no header from the source or build tree, then have the real
# CLI load the plugin:
#   amtprov plugin show --plugin-dir DIR ca-skeleton
# and, with the tools installed in the prefix, provision one amtsim device through it end
# to end (web server and 802.1X client certificates, WAIT_WITH_DELAY then ISSUED, the CA
# contract kept; R-CA-05, R-WS-01, R-8021X-02).
#
# Environment (set by tests/CMakeLists.txt):
#   AMTPROV_BUILD_DIR   the amtprov build tree (tools/amtprov, cmake --install)
#   AMTPROV_SOURCE_DIR  the amtprov source tree (examples/ca-plugin-skeleton)
#   AMTPROV_C_COMPILER  optional: the compiler to build the plugin with
set -Eeuo pipefail
# Plugin files and directories must not be group- or world-writable, or amtprov refuses them.
umask 022

: "${AMTPROV_BUILD_DIR:?set AMTPROV_BUILD_DIR to the amtprov build tree}"
: "${AMTPROV_SOURCE_DIR:?set AMTPROV_SOURCE_DIR to the amtprov source tree}"
build=$(cd "$AMTPROV_BUILD_DIR" && pwd -P)
src=$(cd "$AMTPROV_SOURCE_DIR" && pwd -P)
cc=${AMTPROV_C_COMPILER:-cc}
example="$src/examples/ca-plugin-skeleton"
amtprov="$build/tools/amtprov"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/amtprov-sdk.XXXXXX")
tmp=$(cd "$tmp" && pwd -P)
cleanup() {
	rm -rf "$tmp"
}
trap cleanup EXIT

step="setup"
result() {
	echo "sdk_out_of_tree: $1 passed, $2 failed"
}
# Any failing command ends the test; say where, then the EXIT trap cleans up.
trap 'echo "sdk_out_of_tree: FAIL during: $step (line $LINENO)" >&2; result 0 1' ERR
die() {
	echo "sdk_out_of_tree: FAIL during: $step: $*" >&2
	result 0 1
	exit 1
}
log() {
	echo "sdk_out_of_tree: $*"
}

# The plugin must be found only where the test says.
unset AMTPROV_PLUGIN_PATH

step="prerequisites"
command -v pkg-config >/dev/null || die "pkg-config is not installed"
command -v cmake >/dev/null || die "cmake is not installed"
command -v make >/dev/null || die "make is not installed"
[ -f "$example/ca_skeleton.c" ] || die "no example in $example"

# ---- 1. install the SDK into a private prefix ----
step="cmake --install"
# Staged under DESTDIR as well, so that a destination that ignores --prefix (an absolute
# path) lands in $tmp instead of the system, and is reported below.
stage="$tmp/stage"
prefix="$stage$tmp/prefix"
DESTDIR="$stage" cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
	die "$(cat "$tmp/install.log")"
outside=$(find "$stage" ! -type d ! -path "$prefix/*" | sed "s|^$stage||")
[ -z "$outside" ] || die "installed outside --prefix (absolute install DESTINATION?):" \
	"$outside"
pc=$(find "$prefix" -name amtprov.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || die "amtprov.pc was not installed under $prefix"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
log "installed SDK: $pc"

step="pkg-config"
pkg-config --exists amtprov || die "pkg-config cannot read $pc"
includedir=$(pkg-config --variable=includedir amtprov)
cflags=$(pkg-config --cflags amtprov)
case "$includedir" in
"$prefix"/*) ;;
*) die "amtprov.pc points at includedir=$includedir, not into the prefix it was installed" \
	"into ($prefix): the .pc file is not relocatable (derive it from \${pcfiledir} or" \
	"\${prefix} instead of configure-time absolute paths)" ;;
esac
[ -f "$includedir/amtprov/plugin.h" ] || die "no amtprov/plugin.h in $includedir"
for h in plugin ca credstore directory transport netprofile error log types amtprov; do
	[ -f "$includedir/amtprov/$h.h" ] || die "public header amtprov/$h.h was not installed"
done
# ($prefix is removed first: TMPDIR may itself lie inside the build tree.)
case "${cflags//"$prefix"/}" in
*"$src"* | *"$build"*) die "pkg-config --cflags names the source or build tree: $cflags" ;;
esac

# A third party starts from a copy of the example, far from the amtprov tree.
mkdir "$tmp/skeleton"
cp "$example/CMakeLists.txt" "$example/Makefile" "$example/ca_skeleton.c" \
	"$example/README.md" "$tmp/skeleton/"

# Every header the compiler opened (gcc/clang -H) must come from the installed prefix or
# the system: nothing from the source or build tree.
check_headers() {
	local buildlog=$1 headers
	headers=$(grep -E '^\.+ ' "$buildlog" | sed -E 's/^\.+ //' || true)
	[ -n "$headers" ] || die "the compiler printed no include trace (-H) in $buildlog"
	if grep -v -F "$prefix/" <<<"$headers" | grep -F -e "$src" -e "$build"; then
		die "headers above came from the amtprov source or build tree"
	fi
	grep -q "^$prefix/.*amtprov/plugin.h\$" <<<"$headers" ||
		die "amtprov/plugin.h was not read from $prefix: $(grep amtprov <<<"$headers")"
	if grep 'amtprov/' <<<"$headers" | grep -v "^$prefix/"; then
		die "amtprov headers above did not come from $prefix"
	fi
}

check_module() {
	local so=$1 syms
	[ -f "$so" ] || die "$so was not built"
	# Only the descriptor is exported (STYLE 1).
	syms=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^_' || true)
	[ "$syms" = "amtprov_plugin" ] || die "$so exports more than amtprov_plugin: $syms"
	# Plugins never link the core (STYLE 4).
	if command -v readelf >/dev/null && readelf -d "$so" | grep NEEDED | grep -q amtprov; then
		die "$so links libamtprov"
	fi
}

# ---- 2. out-of-tree CMake build (pkg_check_modules) ----
step="cmake build of the skeleton"
cmake -S "$tmp/skeleton" -B "$tmp/cmake-build" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="-H" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/cmake.log" 2>&1 ||
	die "$(cat "$tmp/cmake.log")"
cmake --build "$tmp/cmake-build" -- VERBOSE=1 >"$tmp/cmake-build.log" 2>&1 ||
	die "$(cat "$tmp/cmake-build.log")"
check_module "$tmp/cmake-build/ca-skeleton.so"
check_headers "$tmp/cmake-build.log"
# CMake normalises the path (no "..", no "//"): compare both spellings.
includedir_norm=$(realpath -m "$includedir")
grep -q -e "-I$includedir" -e "-I$includedir_norm" -e "-isystem $includedir_norm" \
	"$tmp/cmake-build/compile_commands.json" ||
	die "the compile command does not use -I$includedir_norm"
log "CMake build OK"

# ---- 3. out-of-tree make build (pkg-config --cflags) ----
step="make build of the skeleton"
mkdir "$tmp/make-build"
make -C "$tmp/make-build" -f "$tmp/skeleton/Makefile" CC="$cc" CFLAGS="-O2 -H" \
	>"$tmp/make.log" 2>&1 || die "$(cat "$tmp/make.log")"
check_module "$tmp/make-build/ca-skeleton.so"
check_headers "$tmp/make.log"
log "make build OK"

# ---- 4. the real CLI loads it ----
step="amtprov plugin show"
[ -x "$amtprov" ] || die "$amtprov is not built"
# Installed the way a package would install it (DESTDIR staging, mode 0755).
DESTDIR="$tmp/plugin-stage" cmake --install "$tmp/cmake-build" >"$tmp/stage.log" 2>&1 ||
	die "$(cat "$tmp/stage.log")"
installed=$(find "$tmp/plugin-stage" -name ca-skeleton.so | head -n 1)
[ -n "$installed" ] || die "cmake --install did not install ca-skeleton.so"
for dir in "$(dirname "$installed")" "$tmp/make-build"; do
	out=$("$amtprov" plugin show --plugin-dir "$dir" ca-skeleton 2>&1) ||
		die "plugin show failed for $dir/ca-skeleton.so: $out"
	grep -q "ca-skeleton" <<<"$out" || die "plugin show does not name the plugin: $out"
	grep -qw "ca" <<<"$out" || die "plugin show does not give the kind 'ca': $out"
	grep -q "ca:poll" <<<"$out" || die "plugin show does not list the capabilities: $out"
done
log "plugin show: $(head -n 1 <<<"$out")"

# A plugin file anyone may write is refused, with an error naming the file.
step="amtprov plugin show refuses a writable plugin"
mkdir "$tmp/unsafe"
cp "$tmp/make-build/ca-skeleton.so" "$tmp/unsafe/"
chmod 0666 "$tmp/unsafe/ca-skeleton.so"
if out=$("$amtprov" plugin show --plugin-dir "$tmp/unsafe" ca-skeleton 2>&1); then
	die "a world-writable plugin was accepted: $out"
fi
grep -qF "$tmp/unsafe/ca-skeleton.so" <<<"$out" ||
	die "the refusal does not name the file: $out"

# ---- 5. the skeleton provisions a device, end to end, from the installed prefix ----
# The installed amtprov and amtprovd (they find libamtprov and the installed plugins beside
# it through their RPATH, whatever the prefix) run a site whose web server CA and 802.1X CA
# are the skeleton built above. The skeleton answers WAIT_WITH_DELAY; its sign-pending.sh,
# a small OpenSSL CA acting as the person who signs, drops certificates that keep the CA
# contract into the inbox (CRL distribution point served over HTTP), and the next poll
# answers ISSUED. One simulated device ends PROVISIONED, TLS and 802.1X on.
step="end to end through the skeleton"
trap - ERR
set +e
TEST_NAME=sdk_out_of_tree
# shellcheck source=lib.sh
. "$src/tests/integration/lib.sh"
trap 'cleanup; rm -rf "$tmp"' EXIT
AMTPROV="$prefix/bin/amtprov"
AMTPROVD="$prefix/bin/amtprovd"
AMTSIM="$build/sim/amtsim"
check "the installed amtprov runs from the prefix (finds libamtprov)" "$AMTPROV" --version
check "the installed amtprovd loads libamtprov from the prefix, not the build tree" \
	bash -c "ldd '$AMTPROVD' | grep -q 'libamtprov\.so[.0-9]* => $prefix/'"
plugindir=$(pkg-config --variable=plugindir amtprov)
check "amtprov.pc's plugindir is inside the prefix and holds the installed plugins" \
	test -f "$plugindir/amt-transport.so" -a "${plugindir#"$prefix"/}" != "$plugindir"
claim_net
make_prov_pki "$T/pki"
skel="$tmp/make-build" cadir="$T/ca" inbox="$T/inbox" outbox="$T/outbox"
mkdir -p "$inbox" "$outbox" "$T/site" "$T/sim"
"$example/sign-pending.sh" init "$cadir"
crl="http://$NET.250:8080/ca.crl"
python3 -m http.server 8080 --bind "$NET.250" --directory "$cadir/crl" \
	>"$T/http.log" 2>&1 &
PIDS+=("$!")
check "the CRL is served" wait_for 20 bash -c "exec 3<>/dev/tcp/$NET.250/8080"
(while :; do "$example/sign-pending.sh" run "$cadir" "$outbox" "$inbox" "$crl"; sleep 0.3
done) >"$T/signer.log" 2>&1 &
PIDS+=("$!")
cat >"$T/fleet.json" <<JSON
{ "key_pool": 4, "keygen_latency_ms": 20,
  "devices": [ { "id": "pc1", "address": "$NET.1", "amt_version": "16.1.25",
    "provisioning_state": "in", "host_name": "pc1", "domain_name": "contoso.com",
    "dhcp_domain": "contoso.com",
    "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] } ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the device" wait_for 20 test -S "$T/sim/control.sock"
# No plugin_path but the skeleton's: amt-transport, credstore-file and radius-8021x come
# from the installed prefix.
cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "sdk", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$skel"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "manual-ca": {"plugin": "ca-skeleton",
                  "config": {"inbox": "$inbox", "outbox": "$outbox", "poll_seconds": 1}},
    "creds": {"plugin": "credstore-file"},
    "dot1x": {"plugin": "radius-8021x"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "manual-ca"}},
  "provisioning_certificate": {"certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key"},
  "amt": {"transport": "amt"},
  "ieee8021x": {"plugin": "dot1x",
                "wired": {"name": "lan", "eap": "eap-tls", "client_certificate": {"ca": "manual-ca"}}}
}
JSON
check "the site loads with the skeleton as web server and 802.1X CA" \
	"$AMTPROV" -m "$T/site/site.json" manifest check
"$AMTPROV" -m "$T/site/site.json" db init >/dev/null
"$AMTSIM" agent --state-dir "$T/sim" --device pc1 >"$T/pc1.json"
"$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/pc1.json" >/dev/null
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
start_daemon "$T/amtprovd.log" -m "$T/site/site.json"
check "the device is PROVISIONED through the skeleton" \
	wait_for 120 bash -c "[ \"\$(sqlite3 '$T/site/state/site.db' 'select state from devices')\" = PROVISIONED ]"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
check "the web server request waited at the CA (WAIT_WITH_DELAY), then was issued" \
	test -n "$(q "select 1 from audit where detail like '%-> CA_WAITING%'")"
check "one active web server and one active 802.1X certificate, both from manual-ca" \
	test "$(q "select group_concat(purpose, ',') from (select purpose from certificates where status='active' and ca_instance='manual-ca' order by purpose)")" = "1,2"
check "the contract refused nothing" test "$(q "select count(*) from status_messages where msg_id=8211")" = 0
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json"
check "AMT is provisioned, TLS on, 802.1X on with the client certificate" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["provisioning_state"] == "post", d["provisioning_state"]
assert d["tls_remote"]["enabled"], d["tls_remote"]
assert d["ieee8021x"]["enabled"] and d["ieee8021x"]["client_cert_handle"], d["ieee8021x"]
' "$T/pc1.dump.json"
check "no sanitizer report" no_sanitizer_reports "$T/amtprovd.log"
finish
