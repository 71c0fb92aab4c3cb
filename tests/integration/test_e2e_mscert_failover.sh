#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CES failover for a pending request, through amtprovd (issue 12): a RequestID belongs to the
# CA, not to the CES web service that took it (MS-WSTEP 3.1.4.1.3.6: QueryTokenStatus names
# the request by its RequestID), so when the CES that answered "taken under submission" goes
# down, ca-mscert polls the same RequestID at the CA's next CES (the site's ces_urls, or the
# policy's URIs by priority) and the core keeps polling where it answered.
# Two adcssim servers share one CA (the same state directory: CA key, request database), as
# two IIS hosts of CES serve one AD CS CA:
#   - the request is pending at CES A (cookie REQUESTID,A);
#   - A goes down; the next poll goes to CES B, which still answers pending (cookie now B);
#   - the CA officer resubmits; the poll at B gets the certificate; the device is PROVISIONED.
TEST_NAME=e2e_mscert_failover
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/mscert_e2e_lib.sh"

command -v sqlite3 >/dev/null || { fail "sqlite3 is installed (scripts/install-deps.sh)"; finish; exit 1; }
mscert_net   # CA_IP, HTTPS, CA_DIR, pki, ROOT_HASH
B_HTTPS="https://$CA_IP:8444"
CRL_URL="http://$CA_IP:8081/CertEnroll/$ADCSSIM_CA_NAME.crl"   # served by B, which stays up

check "CES host A: adcssim on $CA_IP:8443" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8443 8080 "$CA_DIR.pem" --cdp-url "$CRL_URL"
A_PID=$ADCSSIM_PID
ADCSSIM_LOG="$T/adcs-b" check "CES host B: a second adcssim for the same CA on $CA_IP:8444" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8444 8081 "$T/adcs-b.pem" --cdp-url "$CRL_URL"
check "both serve the same CA" cmp -s "$CA_DIR.pem" "$T/adcs-b.pem"

check "amtsim serves the fleet" mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)"
CES_A="$HTTPS/$ADCSSIM_CA_NAME""_CES_UsernamePassword/service.svc/CES"
CES_B="$B_HTTPS/$ADCSSIM_CA_NAME""_CES_UsernamePassword/service.svc/CES"
MS_EXTRA=', "ces_urls": ["'$CES_A'", "'$CES_B'"]'
check "a site with the CA's two CES endpoints, a template with manager approval, and pc1" \
  mscert_site main AMTWebServerApproval "" pc1
M="$T/main/site.json"

mscert_pending_start "$M" "$CES_A" "$T/d.log"
kill -TERM "$A_PID"; wait "$A_PID"
check "CES A is down" bash -c "! curl -s --cacert '$CA_DIR.pem' -o /dev/null '$CES_A'"
check "the poll of RequestID $REQ goes to CES B, which answers pending: the cookie is now $REQ at B" \
  wait_for 60 ms_waiting "$M" "$REQ,$CES_B"
check "amtprovd says why it asked CES B" grep -q "polling RequestID $REQ at the next CES, $CES_B" "$T/d.log"
check "still one request at the CA, the same one" test "$(ms_pending_id)/$(ca_count pending)" = "$REQ/1"
mscert_pending_finish "$M" pc1.contoso.com "$T/d.log"
not_on_crl() { [ -n "$1" ] && crl_text >/dev/null && ! on_crl "$1" ""; }
check "the certificate is not on the CA's CRL (served by B)" not_on_crl "$(serials pc1.contoso.com web-server active)"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T/d.log'"
check "no sanitizer report (amtsim, adcssim A and B)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err" "$T/adcs-b.err"
finish
