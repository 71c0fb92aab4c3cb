# SPDX-License-Identifier: Apache-2.0
# Shared by test_e2e_recovery.sh and test_e2e_random_kill.sh: a provisioning PKI, an amtsim
# fleet of N devices (fleet N FAULTS_JSON; sim_start, sim_stop), a site with amt-transport,
# ca-local and credstore-file (site [MAX_IN_FLIGHT [ENGINE_JSON_MEMBERS,]]), registration (register N), and q/qca
# to query the site database and ca-local's. Source after lib.sh.

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
qca() { sqlite3 -batch -noheader "$T/site/state/plugins/lab-ca/issuance.db" "$1"; }

pki="$T/pki"
make_prov_pki "$pki"

SIM_PID=""
fleet() { # N, faults JSON for every device
  { echo "{ \"key_pool\": 4, \"keygen_latency_ms\": 20, \"faults\": $2, \"devices\": ["
    for ((i = 1; i <= $1; i++)); do
      printf '%s{"id": "pc%d", "address": "%s.%d", "amt_version": "12.0.45", "provisioning_state": "in", "host_name": "pc%d", "domain_name": "contoso.com", "dhcp_domain": "contoso.com", "root_hashes": [{"name": "root", "algo": "sha256", "hash": "%s"}]}\n' \
        "$([ "$i" -gt 1 ] && echo ,)" "$i" "$NET" "$i" "$i" "$ROOT_HASH"
    done
    echo "] }"; } >"$T/fleet.json"
}
sim_start() {
  "$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>>"$T/amtsim.log" &
  SIM_PID=$!; PIDS+=("$SIM_PID")
  wait_for 20 test -S "$T/sim/control.sock"
}
sim_stop() { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; rm -f "$T/sim/control.sock"; }
# site: a fresh state each time, so a new lab-ca: 2048-bit CA keys, as 3072-bit ones (the
# default, which other tests keep) cost seconds of CPU per site on a loaded machine.
site() {
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{ "manifest_version": 1,
  "site": { "name": "rec", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "amt": {"plugin": "amt-transport"},
               "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080", "key_bits": 2048}},
               "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "serial_over_lan": true},
  "engine": {${2:-}"max_in_flight": ${1:-8}, "retry": {"base_seconds": 1, "max_seconds": 2, "max_attempts": 5}} }
JSON
  rm -rf "$T/site/state"; "$AMTPROV" -m "$T/site/site.json" db init >/dev/null
}
register() { # N
  for ((i = 1; i <= $1; i++)); do
    "$AMTSIM" agent --state-dir "$T/sim" --device "pc$i" >"$T/agent$i.json" &&
      "$AMTPROV" -m "$T/site/site.json" device add --from-json "$T/agent$i.json" >/dev/null || return 1
  done
}

