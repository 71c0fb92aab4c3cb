#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo: builds amtprov and provisions a fleet of simulated Intel AMT devices (amtsim)
# through amtprovd with the real plugins: the embedded CA (ca-local), the encrypted
# credential store (credstore-file) and the AMT transport. A few devices fail for real
# reasons (namespace mismatch, root hash missing in the firmware, wrong one-time password),
# to show amtprov's diagnostics. Each simulated computer registers itself the way a real one
# does: amtprov-agent talks to its (simulated) MEI, sets the one-time password in the
# firmware and registers with amtprovd's API under the host's own enrollment secret. Then it
# prints what happened and where to look next.
# With --ca mscert the certificates come from a Microsoft enterprise CA instead: adcssim,
# the AD CS test server, through the ca-mscert plugin (CEP/CES, revocation through WinRM).
usage() {
  cat <<'EOF'
Usage: scripts/demo.sh [--ca local|mscert] [DEVICES]
  DEVICES        fleet size, default 12, at most 200
  --ca local     the embedded CA, ca-local (default)
  --ca mscert    a Microsoft enterprise CA: adcssim (docs/adcssim.md) with the ca-mscert
                 plugin (docs/ca-mscert.md): CEP/CES with a UsernameToken, the AMTWebServer
                 template, revocation through WinRM certutil -revoke
EOF
}
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ca=local
n=12
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0;;
    --ca) [ $# -ge 2 ] || { usage >&2; exit 2; }; ca=$2; shift 2;;
    --ca=*) ca=${1#--ca=}; shift;;
    *) n=$1; shift;;
  esac
done
case "$ca" in local|mscert) ;; *) echo "demo: --ca must be local or mscert" >&2; exit 2;; esac
case "$n" in ''|*[!0-9]*) usage >&2; exit 2;; esac
if [ "$n" -lt 1 ] || [ "$n" -gt 200 ]; then echo "demo: DEVICES must be 1..200" >&2; exit 2; fi

# Tests run the demo on their own build, directory and loopback net (test_demo_hints).
build=${AMTPROV_DEMO_BUILD:-}
if [ -z "$build" ]; then
  # Only what the demo needs: no test-only package, no server that a package would start.
  bash scripts/install-deps.sh demo
  echo "== building amtprov (without the test suites, in build-demo/)"
  build="$root/build-demo"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMTPROV_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
fi
amtprov="$build/tools/amtprov"
amtprovd="$build/tools/amtprovd"
amtsim="$build/sim/amtsim"
agent="$build/agent/amtprov-agent"

demo=${AMTPROV_DEMO_DIR:-$root/demo-site}
rm -rf "$demo"
mkdir -p "$demo/pki" "$demo/sim"
chmod 700 "$demo"
net=${AMTPROV_DEMO_NET:-127.77.$(( $$ % 200 + 20 ))}
sim_pid=""
adcs_pid=""
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  [ -n "$adcs_pid" ] && kill "$adcs_pid" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== a provisioning certificate (CN = service point, AMT OID), as an admin would buy one"
. "$root/scripts/lab-pki.sh"
pki="$demo/pki"
lab_prov_pki "$pki" 2048 sha256 365 "Contoso Provisioning Root" || { echo "demo: cannot make the lab PKI (openssl)" >&2; exit 1; }
root_hash=$LAB_ROOT_HASH
# amtprovd's API (where the agents register) on loopback, with its own TLS certificate.
api_ip="$net.241"
api_url="https://$api_ip:8443"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/api.key" -out "$pki/api.pem" \
  -subj "/CN=amtprov api" -days 30 -sha256 -addext "subjectAltName=IP:$api_ip" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$pki/api.key"

echo "== a fleet of $n simulated AMT devices on $net.0/24 (amtsim)"
versions=("11.8.50" "12.0.45" "16.1.25" "15.0.30")
{
  echo '{ "key_pool": 8, "keygen_latency_ms": 50, "devices": ['
  for ((i = 1; i <= n; i++)); do
    v=${versions[$((i % 4))]}
    domain="contoso.com"; hashes="[{\"name\": \"Contoso root\", \"algo\": \"sha256\", \"hash\": \"$root_hash\"}]"
    faults="{}"
    # Three devices that fail for real reasons (when the fleet is big enough to spare them).
    if [ "$n" -ge 6 ]; then
      [ "$i" -eq 4 ] && domain="northwindtraders.com"      # AMT's DHCP domain outside the namespace (R-PC-05)
      [ "$i" -eq 5 ] && hashes="[]"                         # root hash not in firmware (R-PC-04)
      [ "$i" -eq 6 ] && faults='{"wrong_otp": true}'        # OTP mismatch (R-PROV-05)
    fi
    # "pre": Not Provisioned; the device's agent sets the OTP and starts remote configuration.
    printf '  %s{"id": "pc%03d", "address": "%s.%d", "amt_version": "%s", "provisioning_state": "pre", "host_name": "pc%03d", "domain_name": "%s", "dhcp_domain": "%s", "root_hashes": %s, "faults": %s}\n' \
      "$([ "$i" -gt 1 ] && echo ,)" "$i" "$net" "$i" "$v" "$i" "$domain" "$domain" "$hashes" "$faults"
  done
  echo '] }'
} >"$demo/fleet.json"
"$amtsim" serve --fleet "$demo/fleet.json" --state-dir "$demo/sim" --mei-dir "$demo/mei" --quiet \
  2>"$demo/amtsim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -S "$demo/sim/control.sock" ] && [ -S "$demo/mei/pc$(printf %03d "$n").sock" ] && break; sleep 0.1; done

if [ "$ca" = mscert ]; then
  echo "== an AD CS enterprise CA on $net.240 (adcssim: CEP, CES, WinRM, CRL over HTTP)"
  adcs_url="https://$net.240:8443"
  crl_url="http://$net.240:8080/CertEnroll/Contoso%20Issuing%20CA.crl"
  "$build/adcssim/adcssim" serve --dir "$demo/adcs" --seed "$root/adcssim/examples/seed.json" \
    --listen "$net.240:8443" --http-listen "$net.240:8080" >"$demo/adcssim.log" 2>&1 &
  adcs_pid=$!
  for _ in $(seq 100); do
    curl -sf -o "$demo/adcs-ca.der" "http://$net.240:8080/CertEnroll/Contoso%20Issuing%20CA.crt" && break
    sleep 0.1
  done
  openssl x509 -inform DER -in "$demo/adcs-ca.der" -out "$demo/adcs-ca.pem"
  ca_instance='"adcs":   { "plugin": "ca-mscert", "config": {
                "cep_url": "'$adcs_url'/ADPolicyProvider_CEP_UsernamePassword/service.svc/CEP",
                "ca_bundle": "'$demo'/adcs-ca.pem", "username": "sccm-site", "password": "adcs/enroll",
                "web_server_template": "AMTWebServer", "client_8021x_template": "AMT8021XClient",
                "winrm_url": "'$adcs_url'/wsman", "winrm_username": "sccm-site",
                "winrm_password": "adcs/winrm", "ca_config": "ca.contoso.com\\Contoso Issuing CA" } }'
  ca_name=adcs
else
  ca_instance='"lab-ca": { "plugin": "ca-local", "config": { "crl_listen": "'$net'.250:8080" } }'
  ca_name=lab-ca
fi

cat >"$demo/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "contoso-lab", "service_point_fqdn": "oob.contoso.com",
            "dns_suffix": "contoso.com", "description": "amtprov demo site",
            "fqdn_patterns": ["pc*.contoso.com"] },
  "plugin_path": ["$build/plugins"],
  "plugins": {
    "amt":    { "plugin": "amt-transport" },
    $ca_instance,
    "creds":  { "plugin": "credstore-file" }
  },
  "credentials": { "store": "creds" },
  "certificates": { "web_server": { "ca": "$ca_name", "template": "AMTWebServer" } },
  "provisioning_certificate": { "certificate": "$pki/chain.pem", "key": "$pki/prov.key" },
  "amt": { "transport": "amt", "serial_over_lan": true, "ide_redirection": false, "ping": true },
  "api": { "listen": "$api_ip:8443", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "registration_keys": ["api/registration-key"],
           "address_check": "allow_list", "address_allow": ["$net.0/24"] }
}
JSON
echo "== site manifest $demo/site.json"
"$amtprov" -m "$demo/site.json" manifest check
"$amtprov" -m "$demo/site.json" db init
if [ "$ca" = mscert ]; then
  echo "== the site account's enrollment and WinRM passwords, into the credential store"
  printf 'Site-Secret-1' | "$amtprov" -m "$demo/site.json" cred set adcs/enroll --stdin 2>/dev/null
  printf 'Site-Secret-1' | "$amtprov" -m "$demo/site.json" cred set adcs/winrm --stdin 2>/dev/null
  echo "== the CA's enrollment policy and template rules (R-CA-01..04), one test certificate"
  "$amtprov" -m "$demo/site.json" plugin test --purpose web-server adcs | sed 's/^/  /' || true
  echo "  (that test certificate is revoked at once, Cessation of Operation: it is on the CRL below)"
fi
echo "== the provisioning certificate, checked before anything is touched (R-PC-01..08)"
"$amtprov" -m "$demo/site.json" cert check --now "$(date +%s)" | tail -n 6 || true

echo "== each host's enrollment secret (amtprov enroll-secret), handed to it as a 0600 file"
openssl rand -hex 32 | "$amtprov" -m "$demo/site.json" cred set api/registration-key --stdin >/dev/null
mkdir -p "$demo/hosts"
chmod 700 "$demo/hosts"
for ((i = 1; i <= n; i++)); do
  id=$(printf 'pc%03d' "$i")
  install -m 600 /dev/null "$demo/hosts/$id.secret"
  "$amtprov" -m "$demo/site.json" enroll-secret --fqdn "$id.contoso.com" >"$demo/hosts/$id.secret"
done

echo "== amtprovd starts; its API listens on $api_url"
"$amtprovd" -m "$demo/site.json" --log-level warning 2>"$demo/amtprovd.log" &
daemon_pid=$!
for _ in $(seq 300); do
  curl -s --cacert "$pki/api.pem" "$api_url/v1/health" >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || { echo "demo: amtprovd stopped; see $demo/amtprovd.log" >&2; exit 1; }
  sleep 0.1
done

echo "== each computer's amtprov-agent registers it over its MEI (OTP set in the firmware,"
echo "   its SHA-256, UUID, AMT version, wired IP: R-PROV-01..03) and waits; amtprovd provisions"
start=$(date +%s%N)
agent_pids=()
for ((i = 1; i <= n; i++)); do
  id=$(printf 'pc%03d' "$i")
  "$agent" --mei "$demo/mei/$id.sock" register --server "$api_url" --fqdn "$id.contoso.com" \
    --secret-file "$demo/hosts/$id.secret" --ca-bundle "$pki/api.pem" \
    --manufacturer "Contoso Labs" --model "vPro demo" --wait --interval 1 --timeout 600 \
    >"$demo/hosts/$id.agent.out" 2>"$demo/hosts/$id.agent.err" &
  agent_pids+=("$!")
done
agents_ok=0
for p in "${agent_pids[@]}"; do wait "$p" && agents_ok=$((agents_ok + 1)); done
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
echo "   $agents_ok of $n agents saw their computer provisioned (their output: $demo/hosts/)"
kill "$daemon_pid" 2>/dev/null
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""

echo
"$amtprov" -m "$demo/site.json" report
echo
provisioned=$("$amtprov" -m "$demo/site.json" device list --state PROVISIONED | grep -c contoso || true)
printf "%d of %d devices provisioned in %d.%03d s.\n" "$provisioned" "$n" $((ms / 1000)) $((ms % 1000))
# After provisioning: the lifecycle (docs/lifecycle.md), on three provisioned devices.
mapfile -t done_list < <("$amtprov" -m "$demo/site.json" device list --state PROVISIONED |
                         awk 'NR > 1 && /contoso/ {print $2}' | sort | tail -n 3)
if [ "${#done_list[@]}" -eq 3 ]; then
  upd=${done_list[0]} blk=${done_list[1]} unp=${done_list[2]}
  echo
  echo "== after provisioning (docs/lifecycle.md): update $upd, block $blk, unprovision $unp"
  "$amtprov" -m "$demo/site.json" device update "$upd" >/dev/null
  "$amtprov" -m "$demo/site.json" device block "$blk" >/dev/null
  "$amtprov" -m "$demo/site.json" device unprovision "$unp" >/dev/null
  # "Evaluate Provisioned AMT Computer Certificates" on demand (R-WS-03): nothing is due yet.
  "$amtprov" -m "$demo/site.json" task run evaluate-certificates >/dev/null
  "$amtprovd" -m "$demo/site.json" --once=120 --log-level warning 2>>"$demo/amtprovd.log" || true
  for d in "$upd" "$blk" "$unp"; do
    state=$("$amtprov" -m "$demo/site.json" --json device show "$d" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || echo "?")
    certs=$("$amtprov" -m "$demo/site.json" cert list --device "$d" | awk 'NR > 1 {print $2 " " $4}' | tr '\n' ' ')
    printf '  %-20s now %-14s certificate: %s\n' "$d" "$state" "$certs"
  done
  if [ "$ca" = mscert ]; then
    echo "  the CA's CRL ($crl_url) lists:"
    crl() { curl -sf "$crl_url" | openssl crl -inform DER -noout -text; }
  else
    echo "  the CA's CRL ($demo/state/plugins/lab-ca/crl.pem) lists:"
    crl() { openssl crl -in "$demo/state/plugins/lab-ca/crl.pem" -noout -text; }
  fi
  crl |
    awk '/Serial Number:/ {s=$3} /Superseded|Key Compromise|Unspecified|Cessation/ {gsub(/^ +/, ""); print "    " s "  " $0}'
  "$amtsim" dump --control "$demo/sim/control.sock" "${unp%%.*}" >"$demo/sim/${unp%%.*}.dump.json"
  echo "  (update keeps the web server certificate, R-REV-03; block and unprovision revoke it"
  echo "   as Superseded, R-REV-02; the unprovisioned device is back in AMT state pre:"
  echo "   $demo/sim/${unp%%.*}.dump.json)"
  echo
  # The revocation queue ran at that amtprovd's start, before the unprovision step revoked
  # its own device's certificate: one more on-demand run, so its detail counts both.
  "$amtprov" -m "$demo/site.json" task run revocation-queue >/dev/null
  "$amtprovd" -m "$demo/site.json" --once=30 --log-level warning 2>>"$demo/amtprovd.log" || true
  "$amtprov" -m "$demo/site.json" task list
fi

# The simulator stops with the demo: keep what the firmware held, so the hints below still
# work afterwards.
"$amtsim" dump --control "$demo/sim/control.sock" pc001 >"$demo/sim/pc001.dump.json"
failed_dev=$("$amtprov" -m "$demo/site.json" device list --state FAILED | awk 'NR > 1 {print $2; exit}')
cat <<EOF

Where to look next (these work after the demo has ended):
${failed_dev:+  $amtprov -m $demo/site.json device show $failed_dev   # why it failed; audit trail
}  $amtprov -m $demo/site.json cert list                        # every certificate issued
  $amtprov -m $demo/site.json status --severity warning        # status messages (8111, 8112, ...)
  cat $demo/hosts/pc001.agent.out $demo/hosts/pc001.agent.err   # what pc001's agent said
  less $demo/sim/pc001.dump.json   # what pc001's firmware held (amtsim dump, saved at the end)
  less $demo/amtprovd.log
EOF
if [ "$ca" = mscert ]; then
  echo "  $build/adcssim/adcssim admin --dir $demo/adcs list --json   # the CA's request database"
fi
