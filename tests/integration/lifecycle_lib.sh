# SPDX-License-Identifier: Apache-2.0
# Shared by the lifecycle tests (test_lifecycle_*.sh): a provisioning PKI, an amtsim fleet,
# a site with ca-local (CRL over HTTP) on a test clock, and helpers to move the clock and
# read the CRL. Source after lib.sh.

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
SITE="$T/site/site.json"
CLOCK="$T/clock"
export AMTPROV_TEST_CLOCK_FILE="$CLOCK"
date +%s >"$CLOCK"

set_clock() { echo "$1" >"$CLOCK"; }
now() { cat "$CLOCK"; }

make_provisioning_pki() { # [days]
  lab_prov_pki "$T/pki" 2048 sha256 "${1:-2000}" || return 1
  ROOT_HASH=$LAB_ROOT_HASH
}

# start_fleet ID... : one AMT 12 device per ID at $NET.1, .2, ...
start_fleet() {
  local i=0 devs="" id
  mkdir -p "$T/sim"
  for id in "$@"; do
    i=$((i + 1))
    [ -n "$devs" ] && devs="$devs,"
    devs="$devs{\"id\":\"$id\",\"address\":\"$NET.$i\",\"amt_version\":\"12.0.45\",
      \"provisioning_state\":\"in\",\"host_name\":\"$id\",\"domain_name\":\"contoso.com\",
      \"dhcp_domain\":\"contoso.com\",\"root_hashes\":[{\"name\":\"lab root\",\"algo\":\"sha256\",\"hash\":\"$ROOT_HASH\"}]}"
  done
  echo "{\"key_pool\":4,\"keygen_latency_ms\":5,\"devices\":[$devs]}" >"$T/fleet.json"
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
  PIDS+=("$!")
  wait_for 20 test -S "$T/sim/control.sock"
}

# write_site [extra top-level JSON members]
# LAB_CA_CONFIG: extra members of lab-ca's config; EXTRA_PLUGINS: extra plugin instances.
# lab-ca makes 2048-bit CA keys: two 3072-bit ones (the default, which other tests keep) cost
# seconds of CPU on a loaded machine and prove nothing more here.
write_site() {
  mkdir -p "$T/site"
  cat >"$SITE" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "lifecycle", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080", "key_bits": 2048,
               "web_server_validity_days": 100, "offline_file": "$T/ca-offline"${LAB_CA_CONFIG:+,
               $LAB_CA_CONFIG}}},
    "creds": {"plugin": "credstore-file"}${EXTRA_PLUGINS:+,
    $EXTRA_PLUGINS}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true, "ping": true}${1:+,
  $1}
}
JSON
  "$AMTPROV" -m "$SITE" db init >/dev/null
}

register() { # ID...
  local id
  for id in "$@"; do
    "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err" &&
      "$AMTPROV" -m "$SITE" device add --from-json "$T/$id.agent.json" >/dev/null || return 1
  done
}

# daemon_once LOG: one amtprovd --once run on the current clock; sanitizer reports fail it.
RUN=0
daemon_once() {
  RUN=$((RUN + 1))
  "$AMTPROVD" -m "$SITE" --once=120 2>"$T/amtprovd.$RUN.log" && no_sanitizer_reports "$T/amtprovd.$RUN.log"
}

state_of() { "$AMTPROV" -m "$SITE" --json device show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

# cert_field DEVICE STATUS FIELD: FIELD of the device's web server certificates in STATUS
cert_field() {
  "$AMTPROV" -m "$SITE" --json cert list --device "$1" --purpose web-server --status "$2" |
    python3 -c '
import calendar, json, sys, time
f = sys.argv[1]
# --json times are ISO 8601; the tests do arithmetic on them as Unix seconds
v = lambda c: calendar.timegm(time.strptime(c[f], "%Y-%m-%dT%H:%M:%SZ")) if f.startswith("not_") else c[f]
print(" ".join(str(v(c)) for c in json.load(sys.stdin)))' "$3"
}

# crl_has SERIAL REASON: the CRL ca-local publishes (the file its HTTP endpoint serves while
# amtprovd runs) lists SERIAL with REASON
crl_has() {
  openssl crl -inform DER -in "$T/site/state/plugins/lab-ca/crl.der" -noout -text >"$T/crl.txt" 2>/dev/null &&
    python3 - "$T/crl.txt" "$1" "$2" <<'PY'
import re, sys
text, serial, reason = open(sys.argv[1]).read(), sys.argv[2].upper().lstrip("0"), sys.argv[3]
entries = re.split(r"Serial Number:\s*", text)[1:]
for e in entries:
    if e.split()[0].upper().lstrip("0") == serial:
        sys.exit(0 if reason == "" or reason in e else 1)
sys.exit(1)
PY
}

# served_sha256 ADDRESS: the SHA-256 of the certificate the device presents on 16993
served_sha256() {
  openssl s_client -connect "$1:16993" </dev/null 2>/dev/null |
    openssl x509 -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1 | tr a-f A-F
}

export -f now state_of cert_field crl_has served_sha256 no_sanitizer_reports
export AMTPROV SITE NET T

# issue_prov DAYS OUT: another provisioning certificate from the same root, chain in OUT
issue_prov() {
  local pki="$T/pki"
  openssl x509 -req -in "$pki/prov.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" \
    -CAcreateserial -days "$1" -sha256 -extfile "$pki/ext" -out "$2.leaf" 2>/dev/null &&
    cat "$2.leaf" "$pki/root.pem" >"$2"
}
not_after_epoch() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
