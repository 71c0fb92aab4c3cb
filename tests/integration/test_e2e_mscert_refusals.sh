#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The refusals of a Microsoft enterprise CA's templates through amtprovd (issue 12), against
# adcssim: each names the template or the CA, says what the CA administrator changes, and
# leaves the device cleanly failed (FAILED with that reason, no certificate recorded, nothing
# pending, nothing asked of the CA) or untouched, and a fixed template provisions it.
#   R-CA-01   a stand-alone CA (adcssim in stand-alone mode: no templates, no enterprise CA in
#             the policy): amtprovd does not start, naming the CEP; devices left REGISTERED;
#   R-CA-02   a version 3 (CNG) template: refused at start when it is the instance's
#             template, and for a device whose manifest names it (FAILED);
#   R-CA-04   a template the site account may not enroll on (no Enroll permission): FAILED;
#   key       a template whose minimal key size (4096) is more than AMT's 2048-bit keys:
#             FAILED; once the administrator lowers it, `device retry` provisions the device.
TEST_NAME=e2e_mscert_refusals
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/adcssim_lib.sh"
. "$(dirname "$0")/mscert_e2e_lib.sh"

command -v sqlite3 >/dev/null || { fail "sqlite3 is installed (scripts/install-deps.sh)"; finish; exit 1; }
mscert_net   # CA_IP, HTTPS, CRL_URL, CA_DIR, pki, ROOT_HASH

# The seed's templates, and AMTWebServerStrong: a v2 web server template that wants 4096 bits
# (MIN bits with `strong_seed FILE MIN`).
strong_seed() {
  python3 - "$ADCSSIM_SEED" "$1" "$2" <<'PY'
import copy, json, sys
s = json.load(open(sys.argv[1]))
t = copy.deepcopy([x for x in s["templates"] if x["name"] == "AMTWebServer"][0])
t.update(name="AMTWebServerStrong", display_name="AMT Web Server (4096)", min_key_size=int(sys.argv[3]),
         oid=t["oid"] + "9")
s["templates"].append(t)
json.dump(s, open(sys.argv[2], "w"), indent=1)
PY
}
strong_seed "$T/seed.json" 4096
check "adcssim (enterprise) serves CEP/CES, WinRM and its CRL on $CA_IP" \
  adcssim_start "$CA_DIR" "$T/seed.json" "$CA_IP" 8443 8080 "$CA_DIR.pem"
check "amtsim serves the fleet" mscert_sim "$(mscert_dev pc1 "$NET.1" 16.1.25)" \
  "$(mscert_dev pc2 "$NET.2" 16.1.25)" "$(mscert_dev pc3 "$NET.3" 12.0.45)" "$(mscert_dev pc4 "$NET.4" 16.1.25)"

# manifest_set SITE-JSON KEY.PATH VALUE: one field of a site's manifest changed.
manifest_set() {
  python3 - "$@" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
*path, last = sys.argv[2].split(".")
o = m
for k in path:
    o = o[k]
o[last] = sys.argv[3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY
}
# refused_site NAME TEMPLATE DEVICE: the instance's template is AMTWebServer (it starts), the
# manifest asks this device's web server certificate from TEMPLATE.
refused_site() {
  mscert_site "$1" AMTWebServer "" "$3" &&
    manifest_set "$T/$1/site.json" certificates.web_server.template "$2"
}
# cleanly_failed SITE FQDN TEXT...: the device is FAILED, its reason holds every TEXT, and
# nothing is left of the attempt: no certificate recorded, no CA request pending or unanswered.
cleanly_failed() {
  local site=$1 m="$T/$1/site.json" fqdn=$2 t n
  shift 2
  "$AMTPROV" -m "$m" --json device show "$fqdn" >"$T/show.json" || return 1
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["state"], "|", d["last_error"])' "$T/show.json" >&2
  [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$T/show.json")" = FAILED ] ||
    { echo "not FAILED" >&2; return 1; }
  for t in "$@"; do
    python3 -c 'import json,sys; assert sys.argv[2] in json.load(open(sys.argv[1]))["last_error"]' "$T/show.json" "$t" ||
      { echo "the reason lacks: $t" >&2; return 1; }
  done
  n=$("$AMTPROV" -m "$m" --json cert list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" = 0 ] || { echo "$n certificate(s) recorded" >&2; return 1; }
  n=$(sqlite3 "$T/$site/state/site.db" "select count(*) from pending_ops p join devices d on d.id=p.device_id where d.fqdn='$fqdn' and p.kind in ('ca-poll', 'ca-submit')")
  [ "$n" = 0 ] || { echo "$n CA operation(s) left pending" >&2; return 1; }
}

# ---- R-CA-02 at start: the instance's own template is version 3 ---------------------------
check "a site with pc1" mscert_site v3start AMTWebServer "" pc1
check "its ca-mscert instance is changed to name the v3 template" \
  manifest_set "$T/v3start/site.json" plugins.adcs.config.web_server_template AMTWebServerV3
expect_rc 3 "R-CA-02: amtprovd does not start (a configuration error)" \
  "$AMTPROVD" -m "$T/v3start/site.json" --once=60 2>"$T/d-v3start.log"
check "R-CA-02: it names the instance and the template and says what to change" \
  bash -c "grep -q \"'adcs' failed to start\" '$T/d-v3start.log' && grep -q \"R-CA-02: template 'AMTWebServerV3' schema version: expected 1 or 2 (version 3 CNG templates are refused), actual 3; to fix: duplicate it with compatibility Windows Server 2003\" '$T/d-v3start.log'"
check "pc1 is left REGISTERED, nothing asked of the CA" \
  test "$(state_of pc1.contoso.com "$T/v3start/site.json")/$(ca_count issued)$(ca_count pending)$(ca_count denied)" = REGISTERED/000

# ---- at the request: the manifest names a template the rules refuse -------------------------
check "a site whose manifest asks pc2's certificate from the v3 template" refused_site v3 AMTWebServerV3 pc2
check "a site whose manifest asks pc3's certificate from a template without Enroll for the site" \
  refused_site noenroll AMTWebServerRestricted pc3
check "a site whose manifest asks pc4's certificate from a 4096-bit template" refused_site strong AMTWebServerStrong pc4
for s in v3 noenroll strong; do
  expect_rc 0 "amtprovd runs site $s to the end" "$AMTPROVD" -m "$T/$s/site.json" --once=180 2>"$T/d-$s.log"
  check "no sanitizer report (site $s)" no_sanitizer_reports "$T/d-$s.log"
done
check "R-CA-02: pc2 cleanly FAILED, naming the CA instance, the v3 template and the fix" \
  cleanly_failed v3 pc2.contoso.com "CA 'adcs'" "R-CA-02: template 'AMTWebServerV3' schema version" "actual 3" \
    "to fix: duplicate it with compatibility Windows Server 2003 (version 2)"
check "R-CA-04: pc3 cleanly FAILED, naming the template without Enroll and the fix" \
  cleanly_failed noenroll pc3.contoso.com "CA 'adcs'" "R-CA-04: Read/Enroll permission on template 'AMTWebServerRestricted'" \
    "enroll false" "to fix: give the site's account Read and Enroll on the template"
check "key: pc4 cleanly FAILED, naming the template, its 4096-bit minimum and the fix" \
  cleanly_failed strong pc4.contoso.com "CA 'adcs'" "template 'AMTWebServerStrong' minimal key length" \
    "actual 4096 bits" "to fix: set the template's Minimum key size to 2048 or less"
check "no request reached the CA for a refused template" \
  test "$(ca_count issued)$(ca_count pending)$(ca_count denied)" = 000
check "the refusal is a status message for the device too" \
  bash -c "'$AMTPROV' -m '$T/strong/site.json' status --device pc4.contoso.com 2>&1 | grep -q AMTWebServerStrong"

# ---- the administrator lowers the minimum; the device is retried and provisioned -----------
kill -TERM "$ADCSSIM_PID"; wait "$ADCSSIM_PID"
strong_seed "$T/seed.json" 2048
check "adcssim again, AMTWebServerStrong now wants 2048 bits" \
  adcssim_start "$CA_DIR" "$T/seed.json" "$CA_IP" 8443 8080 "$CA_DIR.pem"
expect_rc 0 "amtprov device retry pc4" "$AMTPROV" -m "$T/strong/site.json" device retry pc4.contoso.com
expect_rc 0 "amtprovd runs site strong again" "$AMTPROVD" -m "$T/strong/site.json" --once=180 2>"$T/d-strong2.log"
check "pc4 is PROVISIONED" test "$(state_of pc4.contoso.com "$T/strong/site.json")" = PROVISIONED
M="$T/strong/site.json"
check "with a certificate adcssim issued from AMTWebServerStrong" \
  test "$(ca_status "$(serials pc4.contoso.com web-server active)")" = "issued AMTWebServerStrong sccm-site None"

# ---- R-CA-01: a stand-alone CA ---------------------------------------------------------------
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["ca"]["mode"]="standalone"; json.dump(s, open(sys.argv[2], "w"))' \
  "$ADCSSIM_SEED" "$T/standalone.json"
SA_IP="$NET.241"
check "adcssim (stand-alone CA) on $SA_IP" \
  adcssim_start "$T/sa" "$T/standalone.json" "$SA_IP" 8443 8080 "$T/sa.pem"
SA_PID=$ADCSSIM_PID
check "a site with pc1" mscert_site standalone AMTWebServer "" pc1
sa_cep() {
  manifest_set "$T/standalone/site.json" plugins.adcs.config.cep_url "https://$SA_IP:8443/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP" &&
    manifest_set "$T/standalone/site.json" plugins.adcs.config.ca_bundle "$T/sa.pem"
}
check "its ca-mscert instance is pointed at the stand-alone CA's CEP" sa_cep
expect_rc 3 "R-CA-01: amtprovd does not start (a configuration error)" \
  "$AMTPROVD" -m "$T/standalone/site.json" --once=60 2>"$T/d-sa.log"
check "R-CA-01: it names the instance and the CEP and says to use an enterprise CA" \
  bash -c "grep -q \"'adcs' failed to start\" '$T/d-sa.log' && grep -q 'R-CA-01: CEP https://$SA_IP:8443/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP publishes no enterprise CA (0 CA(s), 0 template(s)); to fix: use the CEP of an enterprise CA (cep_url)' '$T/d-sa.log'"
check "pc1 is left REGISTERED, nothing asked of the stand-alone CA" \
  test "$(state_of pc1.contoso.com "$T/standalone/site.json")/$(adcssim_requests "$T/sa" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = REGISTERED/0
kill -TERM "$SA_PID"; wait "$SA_PID"

check "no secret in amtprovd's logs" bash -c "! grep -q 'Site-Secret-1\|PRIVATE KEY' '$T'/d-*.log"
check "no sanitizer report (amtsim, adcssim)" no_sanitizer_reports "$T/amtsim.log" "$CA_DIR.err" "$T/sa.err"
finish
