#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end with a Microsoft enterprise CA (issue 12), Kerberos authentication (MS-XCEP
# clientAuthentication 2, MS-WSTEP transport Kerberos: HTTP Negotiate through GSSAPI):
# amtprovd, holding the site account's ticket from the KDC of a throwaway Samba AD DC on
# loopback (samba_kdc_start in samba_lib.sh), provisions amtsim devices through
# ca-mscert at adcssim's _CEP_Kerberos and _CES_Kerberos endpoints (the keytab of the service
# account holding the SPN HTTP/ca.contoso.test), keys made inside AMT, with no enrollment
# password in the store.
#   R-CA-01..04, R-WS-01   certificates from adcssim's CA for the template, requested by the
#                          account of the Kerberos principal; keys generated in AMT (R-PROV-06);
#   pending                taken under submission, polled with Kerberos, issued on resubmit;
#   R-REV-02d              block revokes Superseded through WinRM (database and CRL);
#   refusal                without a ticket amtprovd does not start and says the CEP refused
#                          the Kerberos authentication; the devices are left as they were.
TEST_NAME=e2e_mscert_kerberos
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/samba_lib.sh"   # REALM, need_tools, samba_kdc_start
. "$(dirname "$0")/mscert_e2e_lib.sh"

need_tools samba samba-tool klist kinit kdestroy sqlite3
claim_net
IP="$NET.240"
HOST=ca.contoso.test SEED=$ADCSSIM_SEED
samba_kdc_start "$HOST"   # KRB5_CONFIG, KRB5CCNAME exported: amtprovd inherits them

HTTPS="https://$HOST:8443"
CRL_URL="http://$IP:8080/CertEnroll/$ADCSSIM_CA_NAME.crl"   # no DNS for $HOST: the CDP names the address
CA_DIR="$T/adcs"
pki="$T/pki"
make_prov_pki "$pki"   # ROOT_HASH

check "adcssim serves CEP/CES (Kerberos with the HTTP/$HOST keytab from Samba), WinRM and its CRL" \
  adcssim_start "$CA_DIR" "$SEED" "$IP" 8443 8080 "$CA_DIR.pem" --host "$HOST" \
    --keytab "$K/http.keytab" --cdp-url "$CRL_URL"
check "kinit as the site account" bash -c "echo Site-Secret-1 | kinit sccm-site@$REALM >/dev/null"

check "amtsim serves the fleet" mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)" \
  "$(mscert_dev pc2 "$NET.2" 12.0.45)" "$(mscert_dev pc3 "$NET.3" 16.1.25)"
MS_CEP="$HTTPS/ADPolicyProvider_CEP_Kerberos/service.svc/CEP"
MS_AUTH='"auth": "kerberos"'
MS_EXTRA=', "resolve": ["'$HOST:8443:$IP'"]'
check "the site (Kerberos authentication) and two devices" mscert_site main AMTWebServer "" pc1 pc2
M="$T/main/site.json"
check "no enrollment password in the site's store (only WinRM's)" no_enroll_password

# ---- without a ticket: refused at start, nothing touched ------------------------------------
kdestroy >/dev/null 2>&1
expect_rc 3 "without a Kerberos ticket amtprovd does not start (a configuration error)" \
  "$AMTPROVD" -m "$M" --once=60 2>"$T/d0.log"
check "it names the CA instance and says the CEP refused the Kerberos authentication" \
  bash -c "grep -q \"'adcs'\" '$T/d0.log' && grep -q 'CEP $MS_CEP refused the kerberos authentication (HTTP 401)' '$T/d0.log'"
check "the devices are left REGISTERED, nothing asked of the CA" \
  test "$(state_of pc1.contoso.com)/$(state_of pc2.contoso.com)/$(ca_count issued)$(ca_count pending)" = REGISTERED/REGISTERED/00

# ---- provisioning with the site account's ticket -------------------------------------------
check "kinit as the site account again" bash -c "echo Site-Secret-1 | kinit sccm-site@$REALM >/dev/null"
mscert_provision_two Kerberos "the Kerberos principal's account"   # web1, web2
check "R-PROV-06: the keys were generated inside AMT (GenerateKeyPair), none added" \
  python3 - "$T"/pc?.run1.json <<'PY'
import json, sys
for f in sys.argv[1:]:
    a = [e["event"] for e in json.load(open(f))["audit"]]
    assert any(e.startswith("GenerateKeyPair: key handle") for e in a), (f, a)
    assert not any(e.startswith("AddKey") for e in a), f
PY
check "the certificates AMT serves chain to adcssim's CA and name its CRL" \
  python3 - "$CA_DIR.pem" "$CRL_URL" "$T"/pc?.run1.json <<'PY'
import base64, json, subprocess, sys, urllib.parse
for f in sys.argv[3:]:
    d = json.load(open(f))
    der = {c["handle"]: base64.b64decode(c["der"]) for c in d["certificates"]}[d["tls_remote"]["cert_handle"]]
    pem = subprocess.run(["openssl", "x509", "-inform", "DER"], input=der, capture_output=True, check=True).stdout
    assert subprocess.run(["openssl", "verify", "-CAfile", sys.argv[1]], input=pem, capture_output=True).returncode == 0, f
    t = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True, check=True).stdout.decode()
    assert urllib.parse.unquote(sys.argv[2]) in urllib.parse.unquote(t), (f, "CDP")
PY

# ---- pending, polled with Kerberos ---------------------------------------------------------
check "a second site whose web server template needs CA manager approval, with pc3" \
  mscert_site approval AMTWebServerApproval "" pc3
mscert_pending_start "$T/approval/site.json" "$HTTPS/$ADCSSIM_CA_NAME""_CES_Kerberos/service.svc/CES" "$T/d-approval.log"
mscert_pending_finish "$T/approval/site.json" pc3.contoso.com "$T/d-approval.log"

# ---- R-REV-02d: block revokes at the CA ----------------------------------------------------
"$AMTPROV" -m "$M" device block pc2.contoso.com >/dev/null
expect_rc 0 "amtprovd blocks pc2" "$AMTPROVD" -m "$M" --once=180 2>"$T/d2.log"
check "no sanitizer report (block)" no_sanitizer_reports "$T/d2.log"
check "pc2 is BLOCKED" test "$(state_of pc2.contoso.com)" = BLOCKED
check "R-REV-02d: pc2's certificate is revoked at adcssim, reason 4 (Superseded)" \
  test "$(ca_status "$web2")" = "revoked AMTWebServer sccm-site 4"
check "R-REV-02d: ... and on adcssim's CRL" on_crl "$web2" Superseded
check "pc1 kept its certificate" test "$(ca_status "$web1")" = "issued AMTWebServer sccm-site None"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T'/d*.log"
check "no sanitizer report (amtsim, adcssim)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err"
finish
