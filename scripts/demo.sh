#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo: builds amtprov, creates a lab site in ./demo-site, registers a fleet of devices
# the way their host agents would (R-PROV-02/03), runs amtprovd over them and prints what
# happened. Usage: scripts/demo.sh [DEVICES]   (default 12)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n=${1:-12}
case "$n" in ''|*[!0-9]*) echo "usage: scripts/demo.sh [DEVICES]" >&2; exit 2;; esac

bash scripts/install-deps.sh
echo "== building amtprov"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
amtprov="$root/build/tools/amtprov"
amtprovd="$root/build/tools/amtprovd"

site="$root/demo-site"
rm -rf "$site"
mkdir -p "$site"
chmod 700 "$site"
cat >"$site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": {
    "name": "contoso-lab",
    "service_point_fqdn": "oob.contoso.com",
    "dns_suffix": "contoso.com",
    "description": "amtprov demo site"
  },
  "plugin_path": ["$root/build/plugins"],
  "maintenance": {
    "evaluate_certificates": { "interval_days": 7, "renew_within_days": 42 },
    "provisioning_certificate_check": { "interval_hours": 24, "warning_days": 40, "error_days": 15 }
  }
}
JSON
echo "== site manifest $site/site.json"
"$amtprov" -m "$site/site.json" manifest check
"$amtprov" -m "$site/site.json" db init

echo "== registering $n devices as their host agents would (OTP hash, AMT version, wired IP)"
for ((i = 1; i <= n; i++)); do
  otp=$(head -c 16 /dev/urandom | sha256sum | cut -d' ' -f1)
  major=$(( (i % 4 == 0) ? 8 : (i % 3 == 0) ? 16 : 11 ))
  "$amtprov" -m "$site/site.json" device add --fqdn "$(printf 'pc%03d.contoso.com' "$i")" \
    --uuid "$(printf '4c4c4544-0000-4000-8000-%012d' "$i")" --amt-version "$major.0.$((i + 10))" \
    --wired-ip "10.20.0.$i" --otp-hash "$otp" >/dev/null
done
echo "== a device whose AMT is already provisioned is refused (R-PROV-01):"
"$amtprov" -m "$site/site.json" device add --fqdn pc999.contoso.com \
  --uuid 4c4c4544-0000-4000-8000-999999999999 --amt-version 12.0.20 --provisioning-state post || true

echo "== running amtprovd until no work is due"
start=$(date +%s%N)
"$amtprovd" -m "$site/site.json" --once --log-level notice
end=$(date +%s%N)

echo
echo "== devices"
"$amtprov" -m "$site/site.json" device list
echo
echo "== status messages"
"$amtprov" -m "$site/site.json" status
echo
ms=$(( (end - start) / 1000000 ))
printf "amtprovd took %d.%03d s for %d devices.\n" $((ms / 1000)) $((ms % 1000)) "$n"
cat <<EOF2

Every device went from REGISTERED to NEED_DEVICE_CHECK. That is where provisioning
stops today: the OTP check, the certificate and the AMT configuration steps need the AMT
transport and the simulator, which are still to come.

Where to look next:
  $amtprov -m $site/site.json device show pc001.contoso.com   # state and audit trail
  $amtprov -m $site/site.json --json device list              # machine-readable
  $amtprov status catalog                                     # every status message ID
  sqlite3 $site/state/site.db .tables                         # the site database
EOF2
