#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The host agent's one-shot unit for images (dist/systemd/amtprov-agent.service): installed
# with amtprov-agent and its man page under the install prefix, accepted by systemd-analyze
# verify without a complaint, hardened (exposure at most 2.0 of 10; root only for
# /dev/mei0, the one device it may open), and it says what an image relies on: runs once
# when an enrollment secret is in place, "already provisioned" (5) is success, busy (6)
# and unreachable (1) are retried, the errors an administrator must fix are not.
TEST_NAME=agent_systemd_unit
source "$(dirname "$0")/lib.sh"

AGENT="$AMTPROV_BUILD_DIR/agent/amtprov-agent"
if ! command -v systemd-analyze >/dev/null; then
  fail "systemd-analyze is missing (scripts/install-deps.sh installs systemd)"
  finish
fi

PREFIX="$T/prefix"
check "cmake --install puts the agent, its man page and its unit under the prefix" bash -c \
  "cmake --install '$AMTPROV_BUILD_DIR' --prefix '$PREFIX' >'$T/install.log' 2>&1 &&
   test -x '$PREFIX/sbin/amtprov-agent' && test -f '$PREFIX/lib/systemd/system/amtprov-agent.service' &&
   find '$PREFIX/share/man' -name 'amtprov-agent.8' | grep -q ."

UNIT_DIR="$T/units"
mkdir -p "$UNIT_DIR"
unit="$UNIT_DIR/amtprov-agent.service"
sed "s#@AMTPROV_AGENT_PATH@#$AGENT#" "$AMTPROV_SOURCE_DIR/dist/systemd/amtprov-agent.service.in" >"$unit"
(cd "$UNIT_DIR" && systemd-analyze verify --man=no ./amtprov-agent.service) >"$T/verify.out" 2>&1
rc=$?
check "systemd-analyze verify accepts the unit (exit 0)" test "$rc" = 0
check "... without a warning" test ! -s "$T/verify.out"
[ -s "$T/verify.out" ] && cat "$T/verify.out" >&2
sed 's/^DevicePolicy=closed/DevicePolicy=bogus/' "$unit" >"$UNIT_DIR/broken.service"
(cd "$UNIT_DIR" && systemd-analyze verify --man=no ./broken.service) >"$T/broken.out" 2>&1
check "a misspelt setting in a copy is reported (the check can fail)" test -s "$T/broken.out"
check "hardened: systemd-analyze security exposure <= 2.0" \
  systemd-analyze security --offline=true --threshold=20 "$unit"

has() { grep -qx "$1" "$unit"; }
check "one-shot, runs only once a secret and the server's address are in place" bash -c \
  "grep -qx 'Type=oneshot' '$unit' && grep -qx 'ConditionPathExists=/etc/amtprov/enroll.secret' '$unit' && grep -qx 'EnvironmentFile=/etc/amtprov/agent.env' '$unit'"
check "registers with the secret file and the API's CA" \
  grep -q "^ExecStart=$AGENT register --server \${AMTPROV_SERVER} --fqdn \${AMTPROV_FQDN} --secret-file /etc/amtprov/enroll.secret --ca-bundle /etc/amtprov/api-ca.pem\$" "$unit"
check "already provisioned (5) is success; 1 and 6 retried, 2 3 4 7 not" bash -c \
  "grep -qx 'SuccessExitStatus=5' '$unit' && grep -qx 'Restart=on-failure' '$unit' && grep -qx 'RestartPreventExitStatus=2 3 4 7' '$unit'"
check "only /dev/mei0 among devices, no capabilities, read-only system" bash -c \
  "grep -qx 'DevicePolicy=closed' '$unit' && grep -qx 'DeviceAllow=/dev/mei0 rw' '$unit' && grep -qx 'CapabilityBoundingSet=' '$unit' && grep -qx 'ProtectSystem=strict' '$unit'"
check "the exit codes it names are the agent's own (amtprov-agent --help)" bash -c \
  "'$AGENT' --help | grep -q '5 AMT already provisioned' && '$AGENT' --help | grep -q '6 busy' && '$AGENT' --help | grep -q '7 the server refused'"
finish
