#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue 17 item 13: TLS in pre-provisioning on AMT 19+. Such firmware has no clear-text port
# and serves TLS before activation with a chain of its CSME On-Die CA (ODCA), not a lone
# self-signed certificate (rpc-go's checks, docs/amt-transport.md "Pre-provisioning TLS").
# amtsim plays it for an AMT 19 device (its own ODCA root in sim/odca-root.pem); amtprovd
# provisions it through amt-transport (R-PROV-07): refused, naming the reason, while the
# transport's odca_roots is another root; provisioned once odca_roots is the device's root,
# the chain verified and its leaf pinned; and, without odca_roots, a second AMT 19 device on
# the chain's shape alone (docs/amt-transport.md: the OTP then authenticates the device). An
# AMT 16 device beside them keeps its self-signed certificate.
TEST_NAME=e2e_amt19_tls
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net

pki="$T/pki"
make_prov_pki "$pki"
mkdir -p "$T/sim"
cat >"$T/fleet.json" <<JSON
{ "key_pool": 2, "keygen_latency_ms": 10,
  "devices": [ $(fleet_dev pc16 "$NET.16"),
    { "id": "pc19", "address": "$NET.19", "amt_version": "19.0.5", "provisioning_state": "in",
      "host_name": "pc19", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "pc20", "address": "$NET.20", "amt_version": "19.0.5", "provisioning_state": "in",
      "host_name": "pc20", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] } ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

# The firmware side: no clear text, the On-Die CA chain on 16993 before activation.
check "AMT 19 refuses clear text (no listener on 16992)" \
  bash -c "! curl -s --max-time 5 -o /dev/null http://$NET.19:16992/wsman"
echo | openssl s_client -connect "$NET.19:16993" -showcerts 2>/dev/null >"$T/s_client.txt"
check "AMT 19 presents 4 certificates before activation, the leaf named AMT RCFG" bash -c "
  [ \$(grep -c 'BEGIN CERTIFICATE' '$T/s_client.txt') = 4 ] && grep -q '^ 0 s:CN = AMT RCFG' '$T/s_client.txt'"
awk '/BEGIN CERTIFICATE/,/END CERTIFICATE/' "$T/s_client.txt" >"$T/peer_chain.pem"
openssl x509 -in "$T/peer_chain.pem" -out "$T/peer_leaf.pem"
check "... which verifies to the simulated On-Die CA root" \
  openssl verify -CAfile "$T/sim/odca-root.pem" -untrusted "$T/peer_chain.pem" "$T/peer_leaf.pem"
echo | openssl s_client -connect "$NET.16:16993" -showcerts 2>/dev/null >"$T/s_client16.txt"
check "AMT 16 still presents its one self-signed certificate" \
  test "$(grep -c 'BEGIN CERTIFICATE' "$T/s_client16.txt")" = 1

# Another root than the device's: the transport must refuse the chain.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/other.key" \
  -out "$T/other-root.pem" -subj "/OU=ODCA 2 CSME P other/CN=Other On Die CA Root" -days 30 2>/dev/null

write_manifest() { # $1: odca_roots file ("": unset)
  local odca=${1:+\"odca_roots\": \"$1\"}
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "e2e-amt19", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport", "config": {$odca}},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true}
}
JSON
}
write_manifest "$T/other-root.pem"
M="$T/site/site.json"
"$AMTPROV" -m "$M" db init >/dev/null
for id in pc16 pc19; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$M" device add --from-json "$T/$id.agent.json" >/dev/null
done
"$AMTPROVD" -m "$M" --once=60 2>"$T/amtprovd1.log"
check "no sanitizer report (amtprovd, run 1)" no_sanitizer_reports "$T/amtprovd1.log"
"$AMTPROV" -m "$M" --json device show pc19.contoso.com >"$T/pc19.1.json"
check "R-PROV-07: with another ODCA root configured, pc19 (AMT 19) is FAILED, the reason naming odca_roots" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["state"], d.get("last_error")); assert d["state"]=="FAILED" and "odca_roots" in d["last_error"], d' "$T/pc19.1.json"
"$AMTPROV" -m "$M" --json device show pc16.contoso.com >"$T/pc16.1.json"
check "... while pc16 (self-signed certificate) is PROVISIONED" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["state"]=="PROVISIONED"' "$T/pc16.1.json"

write_manifest "$T/sim/odca-root.pem"
expect_rc 0 "device retry puts pc19 back" "$AMTPROV" -m "$M" device retry pc19.contoso.com
"$AMTPROVD" -m "$M" --once=60 2>"$T/amtprovd2.log"
check "no sanitizer report (amtprovd, run 2)" no_sanitizer_reports "$T/amtprovd2.log"
"$AMTPROV" -m "$M" --json device show pc19.contoso.com >"$T/pc19.2.json"
check "R-PROV-07: with the device's ODCA root configured, pc19 is PROVISIONED" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["state"], d.get("last_error")) if d["state"]!="PROVISIONED" else None; assert d["state"]=="PROVISIONED"' "$T/pc19.2.json"
check "the transport verified the chain to odca_roots and pinned its leaf" \
  grep -q "$NET.19: accepted AMT On-Die CA chain (verified to odca_roots), leaf SHA-256" "$T/amtprovd2.log"
"$AMTSIM" dump --control "$T/sim/control.sock" pc19 >"$T/pc19.dump.json"
check "pc19 is post-provisioning and serves its web server certificate now" python3 - "$T/pc19.dump.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["provisioning_state"] == "post" and d["tls_remote"]["enabled"], d["tls_remote"]
PY
check "after activation pc19 serves the certificate amtprov installed" bash -c "
  echo | openssl s_client -connect $NET.19:16993 2>/dev/null | openssl x509 -noout -subject | grep -q 'pc19.contoso.com'"

write_manifest ""
"$AMTSIM" agent --state-dir "$T/sim" --device pc20 >"$T/pc20.agent.json" 2>>"$T/agent.err"
"$AMTPROV" -m "$M" device add --from-json "$T/pc20.agent.json" >/dev/null
"$AMTPROVD" -m "$M" --once=60 2>"$T/amtprovd3.log"
check "no sanitizer report (amtprovd, run 3)" no_sanitizer_reports "$T/amtprovd3.log"
check "without odca_roots, pc20 (AMT 19) is PROVISIONED on the chain's shape" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="PROVISIONED", d' \
  <("$AMTPROV" -m "$M" --json device show pc20.contoso.com)
check "... and the log says the chain was not verified to a root" \
  grep -q "$NET.20: accepted AMT On-Die CA chain (shape only: odca_roots not set), leaf SHA-256" "$T/amtprovd3.log"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
