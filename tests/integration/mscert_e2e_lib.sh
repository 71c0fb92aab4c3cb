# SPDX-License-Identifier: Apache-2.0
# Shared by the test_e2e_mscert*.sh tests: an amtsim fleet, sites whose CA "adcs" is
# ca-mscert against adcssim, and the look-ups on both sides (amtprov's records, adcssim's
# request database and CRL). Source after lib.sh and adcssim_lib.sh.
#
# The caller sets, before mscert_site:
#   HTTPS      adcssim's https base (https://HOST:PORT): WinRM at $HTTPS/wsman
#   CA_DIR     adcssim's --dir;  CRL_URL  its CRL;  pki  the provisioning PKI (make_prov_pki)
#   MS_CEP     the CEP URL (default: the UsernamePassword one under $HTTPS)
#   MS_AUTH    the plugin's authentication fields (default: UsernameToken as sccm-site)
#   MS_EXTRA   more plugin fields, each with a leading comma (resolve, ces_urls …)
#   MS_WEB     more /certificates/web_server fields, each with a leading comma (key_source …)

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
MS_AUTH_USERNAME='"auth": "username", "username": "sccm-site", "password": "adcs/enroll"'

# mscert_net: claims the test's network: adcssim goes on $NET.240 (CA_IP, HTTPS, CRL_URL)
# with its state in CA_DIR; the provisioning PKI in $pki (ROOT_HASH).
mscert_net() {
  claim_net
  CA_IP="$NET.240"
  HTTPS="https://$CA_IP:8443"
  CRL_URL="http://$CA_IP:8080/CertEnroll/$ADCSSIM_CA_NAME.crl"
  CA_DIR="$T/adcs"
  pki="$T/pki"
  make_prov_pki "$pki"
}

# mscert_dev ID ADDRESS AMT-VERSION: one amtsim fleet entry in contoso.com (needs ROOT_HASH),
# its UUID fixed by the address (an AMT reset keeps the system's UUID).
mscert_dev() {
  printf '{ "id": "%s", "address": "%s", "amt_version": "%s", "provisioning_state": "in", "host_name": "%s", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "uuid": "aaaaaaaa-0000-4000-8000-%012d", "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "%s" } ] }' \
    "$1" "$2" "$3" "$1" "${2##*.}" "$ROOT_HASH"
}

# mscert_sim ENTRY...: writes the fleet (mscert_dev entries) and starts amtsim with its state
# in $T/sim (kept across restarts); sets AMTSIM_PID. Returns non-zero when it does not come up.
mscert_sim() {
  local IFS=,
  mkdir -p "$T/sim"
  [ $# -eq 0 ] || printf '{ "key_pool": 4, "keygen_latency_ms": 20, "devices": [ %s ] }\n' "$*" >"$T/fleet.json"
  rm -f "$T/sim/control.sock"
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  AMTSIM_PID=$!
  PIDS+=("$AMTSIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}

# mscert_sim_reset ID...: AMT of those devices is reset locally (amtsim forgets their state:
# not provisioned again, same UUID), as an administrator's partial unprovision in the MEBx.
mscert_sim_reset() {
  local id
  kill "$AMTSIM_PID"; wait "$AMTSIM_PID" 2>/dev/null
  for id in "$@"; do rm -f "$T/sim/$id.json"; done
  mscert_sim
}

# mscert_register SITE-JSON ID...: each device's agent reports it, amtprov registers it.
mscert_register() {
  local m=$1 id
  shift
  for id in "$@"; do
    "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err" &&
      "$AMTPROV" -m "$m" device add --from-json "$T/$id.agent.json" >/dev/null || return 1
  done
}

# mscert_site NAME WEB-TEMPLATE EXTRA DEVICE...: the site $T/NAME/site.json whose CA "adcs" is
# ca-mscert against adcssim for its web server certificates (and, with EXTRA, the manifest's
# ieee8021x section, its 802.1X ones); the passwords in its store, its devices registered.
mscert_site() {
  local name=$1 tmpl=$2 extra=$3 d="$T/$1" dot1x=
  shift 3
  [ -n "$extra" ] && dot1x=', "dot1x": {"plugin": "radius-8021x"}'
  mkdir -p "$d"
  cat >"$d/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "$name", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "adcs": {"plugin": "ca-mscert", "config": {
      "cep_url": "${MS_CEP:-$HTTPS/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP}",
      "ca_bundle": "$CA_DIR.pem", ${MS_AUTH:-$MS_AUTH_USERNAME},
      "web_server_template": "$tmpl", "client_8021x_template": "AMT8021XClient",
      "winrm_url": "$HTTPS/wsman", "winrm_username": "sccm-site", "winrm_password": "adcs/winrm",
      "ca_config": "ca.contoso.com\\\\Contoso Issuing CA", "poll_interval": 1,
      "timeout_seconds": 20${MS_EXTRA:-}}},
    "creds": {"plugin": "credstore-file"}$dot1x
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "adcs", "template": "$tmpl"${MS_WEB:-}}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "ping": true}${extra:+,
  $extra}
}
JSON
  "$AMTPROV" -m "$d/site.json" db init >/dev/null || return 1
  # Only the UsernameToken mode has an enrollment password: the others must do without.
  if [ -z "${MS_AUTH:-}" ]; then
    printf 'Site-Secret-1' | "$AMTPROV" -m "$d/site.json" cred set adcs/enroll --stdin >/dev/null || return 1
  fi
  printf 'Site-Secret-1' | "$AMTPROV" -m "$d/site.json" cred set adcs/winrm --stdin >/dev/null || return 1
  mscert_register "$d/site.json" "$@"
}

# ---- amtprov's side ($M: the site's manifest) ----------------------------------------------
certs() { "$AMTPROV" -m "$M" --json cert list "$@"; }
serials() { # amtprov's serials of DEVICE PURPOSE STATUS, upper case, one a line
  certs --device "$1" --purpose "$2" --status "$3" |
    python3 -c 'import json,sys; [print(c["serial"].upper().lstrip("0")) for c in json.load(sys.stdin)]'
}
# state_of FQDN [MANIFEST]: the device's state
state_of() {
  "$AMTPROV" -m "${2:-$M}" --json device show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}
dump() { "$AMTSIM" dump --control "$T/sim/control.sock" "$1" >"$T/$1.$2.json"; }

# ---- adcssim's side ------------------------------------------------------------------------
ca_rows() { adcssim_requests "$CA_DIR" >"$T/ca-rows.json"; }
# ca_status SERIAL: "status template requester reason" of that serial at adcssim
ca_status() {
  ca_rows
  python3 - "$T/ca-rows.json" "$1" <<'PY'
import json, sys
want = sys.argv[2].upper().lstrip("0")
for r in json.load(open(sys.argv[1])):
    if (r.get("serial") or "").upper().lstrip("0") == want:
        print(r["status"], r["template"], r["requester"], r.get("revocation_reason"))
        break
PY
}
# ca_count STATUS [TEMPLATE]: how many requests adcssim has in that status (for that template)
ca_count() {
  adcssim_requests "$CA_DIR" | python3 -c '
import json, sys
print(len([r for r in json.load(sys.stdin) if r["status"] == sys.argv[1] and sys.argv[2] in ("", r["template"])]))' "$1" "${2:-}"
}
crl_text() { curl -sf "$CRL_URL" | openssl crl -inform DER -noout -text; }
on_crl() { # SERIAL REASON-TEXT: adcssim's CRL lists SERIAL with that reason
  crl_text >"$T/crl.txt" && python3 - "$T/crl.txt" "$1" "$2" <<'PY'
import re, sys
text, serial, reason = open(sys.argv[1]).read(), sys.argv[2].upper().lstrip("0"), sys.argv[3]
for e in re.split(r"Serial Number:\s*", text)[1:]:
    if e.split()[0].upper().lstrip("0") == serial:
        sys.exit(0 if reason in e.split("Serial Number")[0] else 1)
sys.exit(1)
PY
}

# ---- a request the CA takes under submission (template AMTWebServerApproval) ---------------
# ms_pending_id: the RequestID of the one pending AMTWebServerApproval request at adcssim
ms_pending_id() {
  adcssim_requests "$CA_DIR" | python3 -c '
import json, sys
p = [r["id"] for r in json.load(sys.stdin) if r["status"] == "pending" and r["template"] == "AMTWebServerApproval"]
print(p[0] if len(p) == 1 else "")'
}
ms_has_pending() { [ -n "$(ms_pending_id)" ]; }
# ms_waiting SITE-JSON COOKIE: one device in CA_WAITING whose pending poll keeps COOKIE
ms_waiting() {
  [ "$(sqlite3 "$(dirname "$1")/state/site.db" "select count(*) from devices d join pending_ops p on p.device_id=d.id where d.state='CA_WAITING' and instr(p.payload, '$2') > 0")" = 1 ]
}
ms_state_is() { [ "$(state_of "$2" "$1")" = "$3" ]; }

# mscert_pending_start SITE-JSON CES-URI LOG: amtprovd runs the site (DAEMON_PID); its device's
# request is taken under submission at the CA and the device waits with the cookie
# REQUESTID,CES-URI. Sets REQ.
mscert_pending_start() {
  start_daemon "$3" -m "$1"
  check "the CA takes the request under submission: one pending request at adcssim" \
    wait_for 60 ms_has_pending
  REQ=$(ms_pending_id)
  check "the device waits in CA_WAITING with the CA's RequestID,URI cookie kept ($REQ at $2)" \
    wait_for 60 ms_waiting "$1" "$REQ,$2"
}

# mscert_pending_finish SITE-JSON FQDN LOG: after some polls still pending; the officer
# resubmits request REQ (certutil -resubmit); amtprovd's poll gets the certificate and
# provisions the device; amtprovd stops.
mscert_pending_finish() {
  local m=$1 fqdn=$2 serial
  sleep 2   # a poll or two still answer pending
  check "still pending after polls: nothing issued, no certificate recorded" \
    test "$("$AMTPROV" -m "$m" --json cert list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')$(state_of "$fqdn" "$m")" = 0CA_WAITING
  check "the CA officer resubmits the request (certutil -resubmit)" \
    "$ADCSSIM" admin --dir "$CA_DIR" resubmit "$REQ"
  check "amtprovd polls, gets the certificate and provisions the device" \
    wait_for 120 ms_state_is "$m" "$fqdn" PROVISIONED
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
  check "no sanitizer report (approval amtprovd)" no_sanitizer_reports "$3"
  serial=$("$AMTPROV" -m "$m" --json cert list --status active | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["serial"])')
  check "the active certificate is the one adcssim issued from the approval template" \
    test "$(ca_status "$serial")" = "issued AMTWebServerApproval sccm-site None"
  adcssim_requests "$CA_DIR" >"$T/rows-a.json"
  check "the request amtprov polled, $REQ, is the one issued" \
    python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if str(x["id"])==sys.argv[2]]; assert r and r[0]["status"]=="issued", r' "$T/rows-a.json" "$REQ"
}

# mscert_provision_two KIND ACCOUNT: amtprovd provisions pc1 and pc2 of the site $M through
# the KIND (Certificate, Kerberos) CEP and CES, adcssim issuing to sccm-site, which ACCOUNT
# says how it was known; sets web1 and web2 (their serials) and dumps both (run1).
mscert_provision_two() {
  expect_rc 0 "amtprovd provisions both devices through ca-mscert" "$AMTPROVD" -m "$M" --once=180 2>"$T/d1.log"
  check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/d1.log"
  check "both devices are PROVISIONED" \
    test "$(state_of pc1.contoso.com)/$(state_of pc2.contoso.com)" = PROVISIONED/PROVISIONED
  check "the policy came from the $1 CEP and named the $1 CES" \
    grep -q "CES $HTTPS/$ADCSSIM_CA_NAME""_CES_$1/service.svc/CES" "$T/d1.log"
  web1=$(serials pc1.contoso.com web-server active)
  web2=$(serials pc2.contoso.com web-server active)
  check "R-WS-01: adcssim issued both from AMTWebServer to sccm-site, $2" \
    test "$(ca_status "$web1")/$(ca_status "$web2")" = "issued AMTWebServer sccm-site None/issued AMTWebServer sccm-site None"
  dump pc1 run1
  dump pc2 run1
}

# no_enroll_password: the site $M's store holds WinRM's password and no enrollment password.
no_enroll_password() {
  "$AMTPROV" -m "$M" cred list >"$T/creds.txt" 2>&1 && grep -q adcs/winrm "$T/creds.txt" &&
    ! grep -q adcs/enroll "$T/creds.txt"
}
