#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo installs only what the demo needs (issue 17): scripts/install-deps.sh demo lists no
# test-only package and no package that ships a system service (Debian would start it on
# every interface of the admin's machine), and the demo asks for exactly that list; the test
# command installs the demo's packages and the test-only ones. Nothing is installed here.
TEST_NAME=install_deps_split
. "$(dirname "$0")/lib.sh"

DEPS="$AMTPROV_SOURCE_DIR/scripts/install-deps.sh"
expect_rc 0 "install-deps.sh demo --print lists the demo's packages" \
  bash -c "bash '$DEPS' demo --print >'$T/demo.txt'"
expect_rc 0 "install-deps.sh all --print lists every package" \
  bash -c "bash '$DEPS' all --print >'$T/all.txt'"
expect_rc 2 "an unknown argument is a usage error" bash "$DEPS" tests --print
check "the demo's list is not empty and holds the build's compiler and libraries" \
  bash -c "grep -qx build-essential '$T/demo.txt' && grep -qx libmicrohttpd-dev '$T/demo.txt'"
for p in freeradius eapoltest scep amtterm libsoap-lite-perl liblwp-protocol-https-perl \
         krb5-kdc krb5-admin-server samba samba-ad-dc winbind libcunit1-dev clang; do
  check "the demo does not install the test-only package $p" bash -c "! grep -qx '$p' '$T/demo.txt'"
  check "the test command installs $p" grep -qx "$p" "$T/all.txt"
done
check "every demo package is also installed by the test command" \
  bash -c "sort '$T/demo.txt' >'$T/d'; sort '$T/all.txt' >'$T/a'; [ -z \"\$(comm -23 '$T/d' '$T/a')\" ]"
# A package that ships a systemd service starts a server on install: none in the demo.
while read -r p; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    check "demo package $p ships no system service" \
      bash -c "! dpkg -L '$p' | grep -Eq '^/(lib|usr/lib)/systemd/system/.*\\.(service|socket)$'"
  fi
done <"$T/demo.txt"
check "the demo asks for the demo list only" \
  grep -Eq '^ *bash scripts/install-deps.sh demo$' "$AMTPROV_SOURCE_DIR/scripts/demo.sh"
check "the demo builds without the test suites" \
  grep -q -- '-DAMTPROV_BUILD_TESTS=OFF' "$AMTPROV_SOURCE_DIR/scripts/demo.sh"
check "the test command installs everything" \
  grep -Eq '^bash scripts/install-deps.sh all$' "$AMTPROV_SOURCE_DIR/scripts/test.sh"
finish
