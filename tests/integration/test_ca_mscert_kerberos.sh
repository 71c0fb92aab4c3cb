#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ca-mscert with Kerberos (MS-WSTEP transport Kerberos, HTTP Negotiate through GSSAPI)
# against adcssim holding the keytab of HTTP/<host>, with tickets from an MIT KDC the test
# runs on loopback: with the site account's ticket, GetPolicies at the Kerberos CEP names the
# Kerberos CES (clientAuthentication 2), a web server certificate is issued and keeps the
# CA contract; without a ticket the instance does not start and says the CEP refused it.
TEST_NAME=ca_mscert_kerberos
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/adcssim_lib.sh"
source "$(dirname "$0")/samba_lib.sh"

need_tools krb5kdc kdb5_util kadmin.local kinit kdestroy

claim_net
IP="$NET.$((($$ & 63) + 1))"
HOST=ca.contoso.test SEED=$ADCSSIM_SEED
mit_kdc_start "$HOST"

check "adcssim starts with the HTTP/$HOST keytab" \
  adcssim_start "$T/ca" "$SEED" "$IP" 8443 8080 "$T/ca.pem" --host "$HOST" --keytab "$K/http.keytab"
SERVER=$ADCSSIM_PID

mkdir -p "$T/site"
M="$T/site/site.json"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "krb", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "ca": {"plugin": "ca-mscert", "config": {
      "cep_url": "https://$HOST:8443/ADPolicyProvider_CEP_Kerberos/service.svc/CEP",
      "ca_bundle": "$T/ca.pem", "auth": "kerberos", "resolve": ["$HOST:8443:$IP"],
      "web_server_template": "AMTWebServer", "timeout_seconds": 10}}
  }
}
JSON
O="$T/out"
E="$T/err"

check "kinit as the site account" bash -c "echo Site-Secret-1 | kinit sccm-site@$REALM >/dev/null"
expect_rc 0 "Kerberos: policy, web server certificate issued, contract kept" \
  run_cli "$O" "$E" -v -m "$M" plugin test --purpose web-server --no-revoke ca
cat "$O"
check "CEP named the Kerberos CES (clientAuthentication 2)" \
  grep -q "CES https://$HOST:8443/Contoso%20Issuing%20CA_CES_Kerberos/service.svc/CES" "$E"
check "the certificate was issued" grep -Eq '^web-server +submit +ISSUED certificate' "$O"

kdestroy >/dev/null 2>&1
expect_rc 3 "without a ticket the instance does not start" \
  run_cli "$O" "$E" -m "$M" plugin test --purpose web-server --no-revoke ca
check "it says the CEP refused the Kerberos authentication" \
  grep -q "refused the kerberos authentication (HTTP 401)" "$E"

kill -TERM "$SERVER"
wait "$SERVER"
check "no sanitizer reports from adcssim" no_sanitizer_reports "$T/ca.err"
finish
