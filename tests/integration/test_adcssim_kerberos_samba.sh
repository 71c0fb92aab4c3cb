#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# adcssim's Kerberos endpoints (HTTP Negotiate, MS-WSTEP 3.1.1.1.1) against a Samba AD DC,
# as AD CS runs against Active Directory: a throwaway domain on loopback, the site account
# and a service account holding the SPN HTTP/<host> (its keytab exported with samba-tool),
# tickets from Samba's KDC (samba_lib.sh). The checks are those of test_adcssim_kerberos.sh
# (adcssim_lib.sh).
TEST_NAME=adcssim_kerberos_samba
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_lib.sh"
source "$(dirname "$0")/samba_lib.sh"

need_tools samba samba-tool kinit klist

claim_net
IP="$NET.$((($$ & 63) + 1))"
HOST=ca.contoso.test
samba_kdc_start "$HOST"
adcssim_kerberos_checks "$HOST" "$K/http.keytab"

finish
