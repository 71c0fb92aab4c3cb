#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim's Kerberos endpoints (MS-WSTEP 3.1.1.1.1, HTTP Negotiate / SPNEGO) against a real
# MIT KDC run by the test on loopback: the server holds a keytab for HTTP/<host>, curl
# authenticates with a ticket from kinit. CEP lists the Kerberos CES (clientAuthentication
# 2); GetPolicies and an Issue through the Kerberos CES succeed for the site account (R-CA-04
# rights apply as with the other modes); no ticket or a ticket for an unknown principal gets
# 401 Negotiate.
TEST_NAME=adcssim_kerberos
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_lib.sh"
source "$(dirname "$0")/samba_lib.sh"

need_tools krb5kdc kdb5_util kadmin.local kinit

claim_net
IP="$NET.$((($$ & 63) + 1))"
HOST=ca.contoso.test
mit_kdc_start "$HOST"

adcssim_kerberos_checks "$HOST" "$K/http.keytab"

finish
