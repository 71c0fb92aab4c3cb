#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The plugin SDK works for a third party (STYLE 21/24, R-CA-05): install amtprov into a
# private prefix, build examples/ca-plugin-skeleton out of tree against that prefix only
# (CMake with pkg_check_modules, and the plain Makefile with `pkg-config --cflags amtprov`),
# check that the compiler saw no header from the source or build tree, then have the real
# CLI load the plugin:
#   amtprov plugin show --plugin-dir DIR ca-skeleton
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

trap - ERR
result 1 0
