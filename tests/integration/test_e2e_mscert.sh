#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end with a Microsoft enterprise CA (issue 12): amtprovd provisions amtsim devices
# through a site whose web server CA AND 802.1X client-certificate CA are ca-mscert, talking
# to adcssim (the AD CS test server) over CEP/CES with UsernameToken, keys made inside AMT.
# Checked on adcssim's request database, on the certificates AMT holds and on adcssim's CRL:
#   R-CA-01..04, R-WS-01  the certificates come from adcssim's CA with the template's
#                         properties (EKU incl. AMT's OID, key usage, template extension,
#                         validity, CDP) and the device FQDN from the request;
#   R-8021X-01/02         the wired 802.1X client certificate from the client template;
#   pending               a template with CA manager approval: the CA answers "taken under
#                         submission", the device waits in CA_WAITING, the officer resubmits
#                         (certutil -resubmit), amtprovd polls and provisions it;
#   R-WS-03, R-REV-02c,   renewal: new web server and client certificates, the old ones
#   R-8021X-06            revoked Superseded through WinRM certutil -revoke, on the CRL;
#   R-REV-02d, R-REV-02a  block and unprovision revoke Superseded at adcssim;
#   R-8021X-07            FreeRADIUS (eapol_test) accepts the client certificate ca-mscert
#                         got, and refuses it once revoked and the CA's CRL is updated.
TEST_NAME=e2e_mscert
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/radius_lib.sh"
. "$(dirname "$0")/mscert_e2e_lib.sh"

radius_tools || { fail "freeradius, eapol_test and sqlite3 are installed"; finish; exit 1; }
mscert_net   # CA_IP, HTTPS, CRL_URL, CA_DIR, pki, ROOT_HASH
radius_pki "$pki"

check "adcssim serves CEP/CES, WinRM and its CRL on $CA_IP" \
  adcssim_start "$CA_DIR" "$ADCSSIM_SEED" "$CA_IP" 8443 8080 "$CA_DIR.pem"

# Four AMT devices; pc4 belongs to the site whose web server template needs approval.
check "amtsim serves the fleet" mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)" \
  "$(mscert_dev pc2 "$NET.2" 12.0.45)" "$(mscert_dev pc3 "$NET.3" 16.1.25)" "$(mscert_dev pc4 "$NET.4" 16.1.25)"

DOT1X='"ieee8021x": {"plugin": "dot1x",
    "wired": {"name": "lan", "eap": "eap-tls", "server_ca": "'$pki/radius-ca.pem'",
              "server_name": "radius.contoso.com",
              "client_certificate": {"ca": "adcs", "template": "AMT8021XClient"}}}'
check "the site (ca-mscert for web server and 802.1X) and its three devices are set up" \
  mscert_site main AMTWebServer "$DOT1X" pc1 pc2 pc3
M="$T/main/site.json"

# ---- provisioning ------------------------------------------------------------------------
expect_rc 0 "amtprovd provisions the fleet through ca-mscert" "$AMTPROVD" -m "$M" --once=180 2>"$T/d1.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/d1.log"
"$AMTPROV" -m "$M" --json device list >"$T/devices1.json"
check "every device is PROVISIONED" \
  python3 -c 'import json,sys; s={x["fqdn"]:x["state"] for x in json.load(open(sys.argv[1]))}; print(s); assert set(s.values())=={"PROVISIONED"} and len(s)==3' "$T/devices1.json"
grep -E "FAILED|error" "$T/d1.log" | head -5 >&2
for id in pc1 pc2 pc3; do dump "$id" run1; done
certs >"$T/certs1.json"
ca_rows
cp "$T/ca-rows.json" "$T/ca-rows1.json"

# R-CA-*, R-WS-01: what AMT serves and holds came from adcssim with the templates' properties.
check "R-WS-01, R-8021X-02: each device's web server and wired client certificates were issued by adcssim's CA for their templates, as amtprov recorded them" \
  python3 - "$CA_DIR.pem" "$T/certs1.json" "$T/ca-rows1.json" "$CRL_URL" "$T"/pc?.run1.json <<'PY'
import base64, datetime, hashlib, json, os, subprocess, sys, urllib.parse
ca, recorded, rows, crl = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4]
by_sha = {c["sha256"].upper(): c for c in recorded}
by_serial = {(r.get("serial") or "").upper().lstrip("0"): r for r in rows}
AMT_OID, TMPL_EXT = "2.16.840.1.113741.1.2.3", "1.3.6.1.4.1.311.21.7"
def text(der):
    pem = subprocess.run(["openssl", "x509", "-inform", "DER"], input=der, capture_output=True, check=True).stdout
    v = subprocess.run(["openssl", "verify", "-CAfile", ca], input=pem, capture_output=True)
    assert v.returncode == 0, ("not issued by adcssim's CA", v.stdout, v.stderr)
    t = subprocess.run(["openssl", "x509", "-noout", "-text", "-serial", "-dates", "-subject", "-nameopt", "RFC2253"],
                       input=pem, capture_output=True, check=True).stdout.decode()
    return t
def days(t):
    f = lambda k: datetime.datetime.strptime(t.split(k + "=")[1].splitlines()[0], "%b %d %H:%M:%S %Y %Z")
    return (f("notAfter") - f("notBefore")).days
for f in sys.argv[5:]:
    d = json.load(open(f))
    fqdn = os.path.basename(f).split(".")[0] + ".contoso.com"
    handles = {c["handle"]: base64.b64decode(c["der"]) for c in d["certificates"]}
    for handle, purpose, template, eku_ok in (
            (d["tls_remote"]["cert_handle"], "web-server", "AMTWebServer",
             lambda t: "TLS Web Server Authentication" in t and AMT_OID in t),
            (d["ieee8021x"]["client_cert_handle"], "8021x-client", "AMT8021XClient",
             lambda t: "TLS Web Client Authentication" in t and "Server Authentication" not in t)):
        der = handles[handle]
        rec = by_sha.get(hashlib.sha256(der).hexdigest().upper())
        assert rec and rec["purpose"] == purpose and rec["status"] == "active", (f, purpose, rec)
        t = text(der)
        assert eku_ok(t), (f, purpose, t)
        assert "Digital Signature, Key Encipherment" in t and "X509v3 Key Usage: critical" in t, (f, t)
        assert TMPL_EXT in t, (f, "no template extension")
        assert urllib.parse.unquote(crl) in urllib.parse.unquote(t), (f, "CDP is not adcssim's CRL")
        assert days(t) == 365, (f, days(t))
        assert "subject=CN=" + fqdn + "\n" in t, (f, fqdn, t)   # from the request
        assert purpose != "web-server" or "DNS:" + fqdn in t, (f, fqdn, t)
        serial = t.split("serial=")[1].split()[0].upper().lstrip("0")
        assert serial == rec["serial"].upper().lstrip("0"), (serial, rec["serial"])
        row = by_serial[serial]
        assert (row["status"], row["template"], row["requester"]) == ("issued", template, "sccm-site"), row
PY
check "R-PROV-06: the keys were generated inside AMT (GenerateKeyPair), none added" \
  python3 - "$T"/pc?.run1.json <<'PY'
import json, sys
for f in sys.argv[1:]:
    a = [e["event"] for e in json.load(open(f))["audit"]]
    assert sum(e.startswith("GenerateKeyPair: key handle") for e in a) == 2, (f, a)
    assert not any(e.startswith("AddKey") for e in a), f
PY
check "adcssim recorded exactly the six certificates amtprov asked for" \
  test "$(python3 -c 'import json,sys; print(len([r for r in json.load(open(sys.argv[1])) if r["status"]=="issued"]))' "$T/ca-rows1.json")" = 6

# ---- R-8021X-07: FreeRADIUS accepts the client certificate ca-mscert got ------------------
radius_config "$T/radius" "$pki"
cp "$CA_DIR.pem" "$RAD/clients-ca.pem"
radius_crl() { # adcssim's current CRL (PEM) next to its CA certificate, for FreeRADIUS
  curl -sf "$CRL_URL" | openssl crl -inform DER -out "$RAD/adcs.crl.pem" &&
    radius_cadir "$CA_DIR.pem" "$RAD/adcs.crl.pem"
}
WIRED1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ieee8021x"]["client_cert_handle"])' "$T/pc1.run1.json")
check "the wired client certificate's key is in AMT" \
  wait_for 20 client_pair_of "$T/sim/pc1.json" "$T/pc1.run1.json" "$WIRED1" "$RAD/wired1"
check "adcssim publishes its CRL, FreeRADIUS takes it" radius_crl
check "FreeRADIUS starts on $NET.200:$RADIUS_PORT" radius_start
check "R-8021X-07: FreeRADIUS accepts the client certificate issued through ca-mscert (EAP-TLS)" \
  eap_tls wired1 "$RAD/wired1" pc1.contoso.com
radius_stop

# ---- pending: the CA manager approves (certutil -resubmit), amtprovd polls ---------------
check "a second site whose web server template needs CA manager approval, with pc4" \
  mscert_site approval AMTWebServerApproval "" pc4
A="$T/approval/site.json"
mscert_pending_start "$A" "$HTTPS/$ADCSSIM_CA_NAME""_CES_UsernamePassword/service.svc/CES" "$T/d-approval.log"
mscert_pending_finish "$A" pc4.contoso.com "$T/d-approval.log"

# ---- renewal (R-WS-03, R-REV-02c, R-8021X-06) ---------------------------------------------
old_web=$(serials pc1.contoso.com web-server active)
old_lan=$(serials pc1.contoso.com 8021x-client active)
# Every certificate is due: 365 days of validity, renewed within 400.
python3 - "$M" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["maintenance"] = {"evaluate_certificates": {"interval_days": 7, "renew_within_days": 400}}
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY
"$AMTPROV" -m "$M" task run evaluate-certificates >/dev/null
expect_rc 0 "amtprovd runs the evaluation and renews through ca-mscert" "$AMTPROVD" -m "$M" --once=180 2>"$T/d2.log"
check "no sanitizer report (renewal)" no_sanitizer_reports "$T/d2.log"
new_web=$(serials pc1.contoso.com web-server active)
new_lan=$(serials pc1.contoso.com 8021x-client active)
check "R-WS-03: pc1 has a new web server certificate and a new client certificate" \
  test -n "$new_web" -a -n "$new_lan" -a "$new_web" != "$old_web" -a "$new_lan" != "$old_lan"
check "the new ones were issued by adcssim for their templates" \
  test "$(ca_status "$new_web")/$(ca_status "$new_lan")" = "issued AMTWebServer sccm-site None/issued AMT8021XClient sccm-site None"
check "R-REV-02c, R-8021X-06: amtprov recorded the old ones revoked" \
  test "$(serials pc1.contoso.com web-server revoked)/$(serials pc1.contoso.com 8021x-client revoked)" = "$old_web/$old_lan"
check "R-REV-02c: the old web server certificate is revoked at adcssim, reason 4 (Superseded)" \
  test "$(ca_status "$old_web")" = "revoked AMTWebServer sccm-site 4"
check "R-8021X-06: the old client certificate is revoked at adcssim, reason 4" \
  test "$(ca_status "$old_lan")" = "revoked AMT8021XClient sccm-site 4"
both_on_crl() { on_crl "$1" "$3" && on_crl "$2" "$3"; }
neither_on_crl() { ! on_crl "$1" "" && ! on_crl "$2" ""; }
check "both are on adcssim's CRL as Superseded" both_on_crl "$old_web" "$old_lan" Superseded
check "the new ones are not on the CRL" neither_on_crl "$new_web" "$new_lan"
dump pc1 run2
check "pc1 serves (TLS) and binds (802.1X) the new certificates" python3 - "$T/pc1.run2.json" "$new_web" "$new_lan" <<'PY'
import base64, json, subprocess, sys
d = json.load(open(sys.argv[1]))
c = {x["handle"]: base64.b64decode(x["der"]) for x in d["certificates"]}
def serial(h):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=c[h], capture_output=True).stdout.decode()
    return out.split("=")[1].strip().upper().lstrip("0")
assert serial(d["tls_remote"]["cert_handle"]) == sys.argv[2]
assert serial(d["ieee8021x"]["client_cert_handle"]) == sys.argv[3]
PY

# ---- R-8021X-07: the revoked client certificate is refused once the CRL is updated --------
WIRED2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ieee8021x"]["client_cert_handle"])' "$T/pc1.run2.json")
check "the new wired client certificate's key is in AMT" \
  wait_for 20 client_pair_of "$T/sim/pc1.json" "$T/pc1.run2.json" "$WIRED2" "$RAD/wired2"
check "FreeRADIUS takes adcssim's updated CRL" radius_crl
check "FreeRADIUS restarts with it" radius_start
refused() { ! eap_tls "$@"; }
check "R-8021X-07: FreeRADIUS refuses the revoked client certificate" refused wired1-again "$RAD/wired1" pc1.contoso.com
check "R-8021X-07: ... because it is revoked (FreeRADIUS: certificate revoked)" \
  bash -c "grep -q 'certificate revoked' '$RAD/fr.log' && tail -1 '$RAD/et-wired1-again.log' | grep -q FAILURE"
check "R-8021X-07: the renewed client certificate is accepted" eap_tls wired2 "$RAD/wired2" pc1.contoso.com
radius_stop

# ---- block (R-REV-02d) and unprovision (R-REV-02a) revoke at adcssim -----------------------
blk_web=$(serials pc2.contoso.com web-server active); blk_lan=$(serials pc2.contoso.com 8021x-client active)
unp_web=$(serials pc3.contoso.com web-server active); unp_lan=$(serials pc3.contoso.com 8021x-client active)
"$AMTPROV" -m "$M" device block pc2.contoso.com >/dev/null
"$AMTPROV" -m "$M" device unprovision pc3.contoso.com >/dev/null
expect_rc 0 "amtprovd blocks pc2 and unprovisions pc3" "$AMTPROVD" -m "$M" --once=180 2>"$T/d3.log"
check "no sanitizer report (block, unprovision)" no_sanitizer_reports "$T/d3.log"
check "pc2 is BLOCKED, pc3 UNPROVISIONED" bash -c "[ \"\$('$AMTPROV' -m '$M' --json device list | python3 -c 'import json,sys; print(\" \".join(x[\"state\"] for x in sorted(json.load(sys.stdin), key=lambda x: x[\"fqdn\"])))')\" = 'PROVISIONED BLOCKED UNPROVISIONED' ]"
check "R-REV-02d: block revoked pc2's web server and client certificates at adcssim (reason 4)" \
  test "$(ca_status "$blk_web")/$(ca_status "$blk_lan")" = "revoked AMTWebServer sccm-site 4/revoked AMT8021XClient sccm-site 4"
check "R-REV-02a: unprovision revoked pc3's certificates at adcssim (reason 4)" \
  test "$(ca_status "$unp_web")/$(ca_status "$unp_lan")" = "revoked AMTWebServer sccm-site 4/revoked AMT8021XClient sccm-site 4"
check "amtprov recorded them revoked, none left revoke-pending" \
  test "$(certs --status revoke-pending | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0
check "they are on adcssim's CRL" both_on_crl "$blk_web" "$unp_lan" Superseded
dump pc3 run3
check "pc3 is back in AMT state pre-provisioning" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["provisioning_state"] in ("pre", 0), d["provisioning_state"]' "$T/pc3.run3.json"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T'/d*.log"
check "no sanitizer report (amtsim, adcssim)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err"
finish
