#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The shipped systemd unit (dist/systemd/amtprovd@.service): installed with the tools under the
# install prefix, accepted by systemd-analyze verify without a single complaint, hardened
# (systemd-analyze security's exposure at most 2.0 of 10), and it says what the operator
# relies on: its own user, its state directory, SIGHUP for reload, restart on failure but not
# on errors only an administrator can fix.
TEST_NAME=systemd_unit
source "$(dirname "$0")/lib.sh"

if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is missing (scripts/install-deps.sh installs systemd)"
  finish
fi

PREFIX="$T/prefix"
check "cmake --install puts the unit and the sysusers file under the prefix" bash -c \
  "cmake --install '$AMTPROV_BUILD_DIR' --prefix '$PREFIX' >'$T/install.log' 2>&1 &&
   test -f '$PREFIX/lib/systemd/system/amtprovd@.service' &&
   test -f '$PREFIX/lib/sysusers.d/amtprov.conf'"

# The installed unit names amtprovd by the configured prefix; verify it against the binary
# just built, which is the same program.
UNIT_DIR="$T/units"
mkdir -p "$UNIT_DIR"
sed "s#^ExecStart=[^ ]*#ExecStart=$AMTPROVD#" "$AMTPROV_SOURCE_DIR/dist/systemd/amtprovd@.service.in" \
  >"$UNIT_DIR/amtprovd@.service"
check "the unit's ExecStart runs amtprovd -m /etc/amtprov/SITE.json" \
  grep -q "^ExecStart=$AMTPROVD -m /etc/amtprov/%i.json\$" "$UNIT_DIR/amtprovd@.service"

# verify exits 0 on unknown or misspelt settings and only warns, so any output fails too.
(cd "$UNIT_DIR" && systemd-analyze verify --man=no ./amtprovd@contoso.service) >"$T/verify.out" 2>&1
rc=$?
check "systemd-analyze verify accepts the unit (exit 0)" test "$rc" = 0
check "... without a warning" test ! -s "$T/verify.out"
[ -s "$T/verify.out" ] && cat "$T/verify.out" >&2

# The same checks refuse a broken copy, so they can fail.
sed 's/^ProtectSystem=strict/ProtectSystem=bogus/' "$UNIT_DIR/amtprovd@.service" >"$UNIT_DIR/broken@.service"
(cd "$UNIT_DIR" && systemd-analyze verify --man=no ./broken@contoso.service) >"$T/broken.out" 2>&1
check "a misspelt setting in a copy is reported (the check can fail)" test -s "$T/broken.out"

check "hardened: systemd-analyze security exposure <= 2.0" \
  systemd-analyze security --offline=true --threshold=20 "$UNIT_DIR/amtprovd@.service"

unit="$UNIT_DIR/amtprovd@.service"
has() { grep -qx "$1" "$unit"; }
check "runs as its own unprivileged user" bash -c "grep -qx 'User=amtprov' '$unit' && grep -q '^u amtprov ' '$AMTPROV_SOURCE_DIR/dist/systemd/amtprov.sysusers.conf'"
check "state directory per site, 0700, files 0600 (UMask 0077)" bash -c \
  "grep -qx 'StateDirectory=amtprov/%i' '$unit' && grep -qx 'StateDirectoryMode=0700' '$unit' && grep -qx 'UMask=0077' '$unit'"
check "read-only system, no new privileges, no capabilities" bash -c \
  "grep -qx 'ProtectSystem=strict' '$unit' && grep -qx 'NoNewPrivileges=yes' '$unit' && grep -qx 'CapabilityBoundingSet=' '$unit'"
check "ExecReload sends SIGHUP (amtprovd reloads its manifest)" has 'ExecReload=/bin/kill -HUP $MAINPID'
check "restarts on failure, not on usage/manifest/database/plugin errors (exit 2-5)" bash -c \
  "grep -qx 'Restart=on-failure' '$unit' && grep -qx 'RestartPreventExitStatus=2 3 4 5' '$unit'"
check "the exit codes it names are amtprovd's own (amtprovd --help)" bash -c \
  "'$AMTPROVD' --help | grep -q '2 usage, 3 invalid manifest, 4 database' && '$AMTPROVD' --help | grep -q '5 plugin'"
finish
