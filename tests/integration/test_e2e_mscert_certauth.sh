#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end with a Microsoft enterprise CA (issue 12), TLS client-certificate authentication
# (MS-XCEP clientAuthentication 8; MS-WSTEP 3.1.1.1.2), keys made by amtprov: amtprovd
# provisions amtsim devices through ca-mscert at adcssim's _CEP_Certificate/_CES_Certificate
# endpoints with the site's certificate and no enrollment password in the store.
#   R-CA-01..04, R-WS-01   the web server certificates come from adcssim's CA, for the
#                          template, requested by the account the client certificate maps to;
#   R-PROV-06              key_source "amtprov": the key is made by amtprov and loaded into AMT
#                          (AddKey), none generated inside AMT; the certificate is for that key;
#   pending                a template with manager approval: taken under submission, polled
#                          with the client certificate, issued after certutil -resubmit;
#   R-REV-02b              re-provisioning: AMT is reset locally, the device registers again,
#                          amtprovd provisions it again and the earlier certificate is revoked
#                          Superseded at the CA through WinRM (adcssim's database and CRL).
TEST_NAME=e2e_mscert_certauth
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/mscert_e2e_lib.sh"

mscert_net   # CA_IP, HTTPS, CRL_URL, CA_DIR, pki, ROOT_HASH

check "adcssim serves CEP/CES, WinRM and its CRL on $CA_IP" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8443 8080 "$CA_DIR.pem"

# The site's TLS client certificate from the enterprise CA, subject CN the name the seed
# maps to the account sccm-site (cert_cn), EKU client authentication.
site_cert() {
  openssl req -new -newkey rsa:2048 -nodes -keyout "$T/site.key" -out "$T/site.csr" \
    -subj "/CN=sccm-site.contoso.com" 2>/dev/null &&
    chmod 600 "$T/site.key" &&
    printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature, keyEncipherment\n' >"$T/site.ext" &&
    openssl x509 -req -in "$T/site.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" \
      -CAcreateserial -days 30 -extfile "$T/site.ext" -out "$T/site.pem" 2>/dev/null
}
check "the site account's client certificate, from adcssim's CA" site_cert

check "amtsim serves the fleet" mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)" \
  "$(mscert_dev pc2 "$NET.2" 12.0.45)" "$(mscert_dev pc3 "$NET.3" 16.1.25)"
MS_CEP="$HTTPS/ADPolicyProvider_CEP_Certificate/service.svc/CEP"
MS_AUTH='"auth": "certificate", "client_certificate": "'$T/site.pem'", "client_key": "'$T/site.key'"'
MS_WEB=', "key_source": "amtprov"'
check "the site (client-certificate authentication, keys by amtprov) and two devices" \
  mscert_site main AMTWebServer "" pc1 pc2
M="$T/main/site.json"
check "no enrollment password in the site's store (only WinRM's)" no_enroll_password

# ---- provisioning ------------------------------------------------------------------------
mscert_provision_two Certificate "the account of the client certificate"   # web1, web2
check "R-PROV-06: the keys were made by amtprov and added to AMT (AddKey), none generated in AMT" \
  python3 - "$T"/pc?.run1.json <<'PY'
import json, sys
for f in sys.argv[1:]:
    a = [e["event"] for e in json.load(open(f))["audit"]]
    assert not any(e.startswith("GenerateKeyPair") for e in a), (f, a)
    assert any(e.startswith("AddKey") for e in a), (f, a)
PY
# The keys are read from amtsim's state files, which it writes within a second of a change.
cat >"$T/served_key.py" <<'PY'
import base64, json, os, subprocess, sys
ca, sim = sys.argv[1], sys.argv[2]
run = lambda args, data: subprocess.run(args, input=data, capture_output=True, check=True).stdout
for f in sys.argv[3:]:
    d = json.load(open(f))
    der = {c["handle"]: base64.b64decode(c["der"]) for c in d["certificates"]}[d["tls_remote"]["cert_handle"]]
    pem = run(["openssl", "x509", "-inform", "DER"], der)
    v = subprocess.run(["openssl", "verify", "-CAfile", ca], input=pem, capture_output=True)
    assert v.returncode == 0, (f, v.stdout, v.stderr)
    pub = run(["openssl", "x509", "-noout", "-pubkey"], pem)
    state = json.load(open(os.path.join(sim, os.path.basename(f).split(".")[0] + ".json")))
    held = [run(["openssl", "pkey", "-pubout"], k["pem"].encode()) for k in state["keys"]]
    assert pub in held, (f, "the certificate is not for a key AMT holds")
PY
check "each device serves adcssim's certificate, for the key amtprov added to AMT" \
  wait_for 10 python3 "$T/served_key.py" "$CA_DIR.pem" "$T/sim" "$T"/pc?.run1.json

# ---- pending: taken under submission, polled over the Certificate CES, resubmitted --------
check "a second site whose web server template needs CA manager approval, with pc3" \
  mscert_site approval AMTWebServerApproval "" pc3
mscert_pending_start "$T/approval/site.json" "$HTTPS/$ADCSSIM_CA_NAME""_CES_Certificate/service.svc/CES" "$T/d-approval.log"
mscert_pending_finish "$T/approval/site.json" pc3.contoso.com "$T/d-approval.log"

# ---- R-REV-02b: AMT of pc1 is reset; it registers again and is provisioned again ----------
check "amtsim: pc1's AMT is reset locally" mscert_sim_reset pc1
check "pc1's agent registers it again" mscert_register "$M" pc1
check "the registration is accepted: pc1 is REGISTERED" test "$(state_of pc1.contoso.com)" = REGISTERED
expect_rc 0 "amtprovd provisions pc1 again" "$AMTPROVD" -m "$M" --once=180 2>"$T/d2.log"
check "no sanitizer report (re-provisioning)" no_sanitizer_reports "$T/d2.log"
check "pc1 is PROVISIONED" test "$(state_of pc1.contoso.com)" = PROVISIONED
web1b=$(serials pc1.contoso.com web-server active)
check "pc1 has a new web server certificate" bash -c "[ -n '$web1b' ] && [ '$web1b' != '$web1' ]"
check "... issued by adcssim" test "$(ca_status "$web1b")" = "issued AMTWebServer sccm-site None"
check "R-REV-02b: amtprov recorded the earlier certificate revoked" \
  test "$(serials pc1.contoso.com web-server revoked)" = "$web1"
check "R-REV-02b: the earlier certificate is revoked at adcssim, reason 4 (Superseded)" \
  test "$(ca_status "$web1")" = "revoked AMTWebServer sccm-site 4"
check "R-REV-02b: ... and on adcssim's CRL as Superseded" on_crl "$web1" Superseded
neither_on_crl() { ! on_crl "$1" "" && ! on_crl "$2" ""; }
check "the new one and pc2's are not on the CRL" neither_on_crl "$web1b" "$web2"
check "pc2 kept its certificate" test "$(ca_status "$web2")" = "issued AMTWebServer sccm-site None"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T'/d*.log"
check "no sanitizer report (amtsim, adcssim)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err"
finish
