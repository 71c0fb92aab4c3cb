# SPDX-License-Identifier: Apache-2.0
# Sourced by the monitoring tests (test_metrics_fleet.sh, test_status_page.sh) after lib.sh:
# a simulated fleet of six devices, two of which fail for real reasons (R-PC-04: no root
# hash in pc5's firmware; R-PROV-05: pc6 reports a wrong OTP), registered by their agents in
# a site whose API has an administrator token ($TOKEN) and a monitoring token ($MONITOR).
# Sets URL, M, O, E, pki; start amtprovd with start_daemon and wait for fleet_settled.
# With METRICS_LISTENER=1 set before sourcing, the site also has a metrics listener
# (monitoring.metrics_listen) at $METRICS_URL asking for the token $METRICS_TOKEN.
AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
IP="$NET.200"
PORT=$((20000 + $$ % 20000))
URL="https://$IP:$PORT"
METRICS_URL="http://$NET.201:$PORT/metrics"
METRICS_TOKEN="met-$(openssl rand -hex 24)"
MONITORING_JSON=""
[ "${METRICS_LISTENER:-0}" = 1 ] && MONITORING_JSON=',
  "monitoring": { "metrics_listen": "'"$NET.201:$PORT"'", "metrics_tokens": ["api/metrics-token"] }' 
M="$T/site/site.json"
O="$T/out"; E="$T/err"
TOKEN="tok-$(openssl rand -hex 24)"          # an administrator's
MONITOR="mon-$(openssl rand -hex 24)"        # the Prometheus server's

pki="$T/pki"
make_prov_pki "$pki"
make_api_cert "$pki" "$IP"

mkdir -p "$T/sim"
{
  echo '{ "key_pool": 4, "keygen_latency_ms": 10, "devices": ['
  for i in 1 2 3 4 5 6; do
    hashes="[{\"name\": \"lab root\", \"algo\": \"sha256\", \"hash\": \"$ROOT_HASH\"}]"; faults='{}'
    [ "$i" -eq 5 ] && hashes='[]'                  # R-PC-04: the root is not in the firmware
    [ "$i" -eq 6 ] && faults='{"wrong_otp": true}' # R-PROV-05: the OTP does not match
    printf '%s{"id": "pc%d", "address": "%s.%d", "amt_version": "12.0.45", "provisioning_state": "in", "host_name": "pc%d", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "root_hashes": %s, "faults": %s}\n' \
      "$([ "$i" -gt 1 ] && echo ,)" "$i" "$NET" "$i" "$i" "$hashes" "$faults"
  done
  echo '] }'
} >"$T/fleet.json"
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the fleet" wait_for 20 test -S "$T/sim/control.sock"

mkdir -p "$T/site"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "metrics", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport"},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"}
  },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true},
  "api": { "listen": "$IP:$PORT", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "admin_tokens": ["api/admin-token"], "monitor_tokens": ["api/monitor-token"],
           "registration_keys": ["api/registration-key"] }$MONITORING_JSON
}
JSON
"$AMTPROV" -m "$M" db init >/dev/null
"$AMTPROV" -m "$M" cred set api/admin-token --stdin <<<"$TOKEN"
"$AMTPROV" -m "$M" cred set api/monitor-token --stdin <<<"$MONITOR"
"$AMTPROV" -m "$M" cred set api/metrics-token --stdin <<<"$METRICS_TOKEN"
openssl rand -hex 32 | "$AMTPROV" -m "$M" cred set api/registration-key --stdin
for i in 1 2 3 4 5 6; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "pc$i" >"$T/pc$i.agent.json" 2>>"$T/agent.err"
  "$AMTPROV" -m "$M" device add --from-json "$T/pc$i.agent.json" >/dev/null
done
check "six devices registered" test "$("$AMTPROV" -m "$M" --json device list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 6

up() { curl -s --cacert "$pki/api.pem" "$URL/v1/health" >/dev/null; }
fleet_settled() { # every device PROVISIONED or FAILED
  "$AMTPROV" -m "$M" --json device list | python3 -c '
import json, sys
assert all(d["state"] in ("PROVISIONED", "FAILED") for d in json.load(sys.stdin))'
}
