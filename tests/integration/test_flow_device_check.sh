#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The flow's device check through amtprovd, a transport plugin and the provisioning
# certificate: devices that pass go on to NEED_CERTIFICATE; a namespace mismatch (R-PC-05),
# an already provisioned device (R-PROV-01), a wrong OTP (R-PROV-05) and a missing root hash
# (R-PC-04) each end FAILED with a reason and a status message; a provisioning certificate
# that cannot be loaded stops provisioning without failing anyone (R-PC-07/08).
TEST_NAME=flow_device_check
. "$(dirname "$0")/lib.sh"

q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
state_of() { q "select state from devices where fqdn='$1'"; }

# A provisioning certificate as an admin would get one: CN = service point, AMT OID.
pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH (lib.sh)
OTP=$(printf 'one-time' | sha256sum | cut -d' ' -f1)

site_with() { # $1: fake-amt config JSON
  make_site "\"plugins\": {\"amt\": {\"plugin\": \"fake-amt\", \"config\": $1}},
  \"amt\": {\"transport\": \"amt\"},
  \"provisioning_certificate\": {\"certificate\": \"$pki/chain.pem\", \"key\": \"$pki/prov.key\"}"
  rm -rf "$T/site/state"
  "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
}
add() { # fqdn uuid-suffix otp
  "$AMTPROV" -m "$T/site/site.json" device add --fqdn "$1" \
    --uuid "00000000-0000-4000-8000-0000000000$2" --amt-version 11.8.50 --otp-hash "$3" >/dev/null
}

site_with "{\"otp_hash\": \"$OTP\", \"root_hash\": \"$ROOT_HASH\", \"post_fqdn\": \"done.contoso.com\"}"
add pc1.contoso.com 01 "$OTP"
add pc2.sales.contoso.com 02 "$OTP"
add pc3.northwindtraders.com 03 "$OTP"
add done.contoso.com 04 "$OTP"
add pc5.contoso.com 05 "$(printf 'other' | sha256sum | cut -d' ' -f1)"
expect_rc 0 "amtprovd --once runs the device check" "$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d1.log"
check "no sanitizer report" no_sanitizer_reports "$T/d1.log"
check "devices that pass every check go on to NEED_CERTIFICATE" \
  test "$(state_of pc1.contoso.com)/$(state_of pc2.sales.contoso.com)" = "NEED_CERTIFICATE/NEED_CERTIFICATE"
check "R-PC-05: a device outside the service point's namespace fails" \
  test "$(state_of pc3.northwindtraders.com)" = FAILED
check "R-PC-05: the reason names both namespaces" \
  test -n "$(q "select 1 from devices where fqdn='pc3.northwindtraders.com' and last_error like '%northwindtraders.com%contoso.com%'")"
check "R-PC-05: status 8112 recorded" test "$(q "select count(*) from status_messages where msg_id=8112")" = 1
check "R-PROV-01: an already provisioned device fails" test "$(state_of done.contoso.com)" = FAILED
check "R-PROV-01: status 8101 recorded with the state" \
  test -n "$(q "select 1 from status_messages where msg_id=8101 and text like '%post%'")"
check "R-PROV-05: a wrong OTP fails the device" test "$(state_of pc5.contoso.com)" = FAILED
check "R-PROV-05: status 8111 names both hashes" \
  test -n "$(q "select 1 from status_messages where msg_id=8111 and text like '%$OTP%'")"
check "failures are permanent, not retried" \
  test "$(q "select count(*) from status_messages where msg_id=8105")" = 0

# R-PC-04: the root's hash is not active in the firmware.
site_with "{\"otp_hash\": \"$OTP\", \"root_hash\": \"$(printf 'x' | sha256sum | cut -d' ' -f1)\"}"
add pc1.contoso.com 01 "$OTP"
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d2.log"
check "R-PC-04: a device without the root hash fails" test "$(state_of pc1.contoso.com)" = FAILED
check "R-PC-04: the reason gives the hash to add" \
  test -n "$(q "select 1 from devices where last_error like '%root certificate hash%' and upper(last_error) like upper('%$ROOT_HASH%')")"

# A provisioning certificate that cannot be loaded: provisioning stops, nobody fails.
site_with "{\"otp_hash\": \"$OTP\", \"root_hash\": \"$ROOT_HASH\"}"
sed -i "s|$pki/prov.key|$pki/missing.key|" "$T/site/site.json"
add pc1.contoso.com 01 "$OTP"
"$AMTPROVD" -m "$T/site/site.json" --once 2>"$T/d3.log"
check "an unusable provisioning certificate stops provisioning (device waits)" \
  test "$(state_of pc1.contoso.com)" = NEED_DEVICE_CHECK
check "and says why (status 8208 naming the file)" \
  test -n "$(q "select 1 from status_messages where msg_id=8208 and text like '%missing.key%'")"

finish
