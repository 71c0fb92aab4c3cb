#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the committed seed corpora in tests/fuzz/corpus/ (docs/fuzzing.md): real
# amt-transport <-> amtsim exchanges (make_corpus), SCEP CertReps and credential-store files
# made by the harnesses themselves, the manifest fixtures and examples, and registration API
# bodies and paths like those tests/integration/test_api.sh sends. Hand-added seeds in other
# files of a corpus directory are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${AMTPROV_FUZZ_BUILD_DIR:-$root/build-fuzz}
out=$root/tests/fuzz/corpus
bin=$build/tests/fuzz

FUZZ_BUILD_ONLY=1 scripts/fuzz.sh
export ASAN_OPTIONS=detect_leaks=1
mkdir -p "$out"
rm -f "$out"/fuzz_transport_*/amt* "$out"/fuzz_transport_*/crl-* "$out"/fuzz_sim_*/amt*
"$bin/make_corpus" "$out"
mkdir -p "$out/fuzz_scep_reply" "$out/fuzz_credstore_file" "$out/fuzz_manifest" \
  "$out/fuzz_api_request" "$out/fuzz_amt_signed"
FUZZ_SCEP_SEEDS=$out/fuzz_scep_reply "$bin/fuzz_scep_reply" -runs=0 >/dev/null 2>&1
FUZZ_AMT_SIGNED_SEEDS=$out/fuzz_amt_signed "$bin/fuzz_amt_signed" -runs=0 >/dev/null 2>&1
FUZZ_CS_SEEDS=$out/fuzz_credstore_file "$bin/fuzz_credstore_file" -runs=0 >/dev/null 2>&1
for f in tests/fixtures/manifests/*.json examples/manifests/*.json; do
  cp "$f" "$out/fuzz_manifest/$(basename "$(dirname "$f")")-$(basename "$f")"
done

# fuzz_api_request: byte 0 even = a POST /v1/devices body, odd = a request target.
n=0
body() { n=$((n + 1)); { printf '\0'; printf '%s' "$1"; } >"$out/fuzz_api_request/body-$n"; }
path() { n=$((n + 1)); { printf '\1'; printf '%s' "$1"; } >"$out/fuzz_api_request/path-$n"; }
body '{"fqdn":"pc1.contoso.com","uuid":"4c4c4544-0042-3510-8052-b4c04f4e3132","amt_version":"11.8.50","wired_ip":"10.0.0.5","otp_hash":"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12","provisioning_state":"pre","wireless":true,"manufacturer":"Contoso","model":"OptiBox 7"}'
body '{"fqdn":"pc2.contoso.com","uuid":"00000000-0000-4000-8000-000000000002","amt_version":"16.1.25","wired_ip":"fe80::1","provisioning_state":"in"}'
body '{"fqdn":"pc3.contoso.com","uuid":"00000000-0000-4000-8000-000000000003","amt_version":"6.2","provisioning_state":"post","otp_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}'
body '{"fqdn":"pc1.contoso.com","fqdn":"pc9.contoso.com","uuid":"x","amt_version":1}'
body '{"fqdn":"-bad-.contoso.com","uuid":"4C4C4544-0042-3510-8052-B4C04F4E3132","amt_version":"11.8.50.3.1","unknown":null}'
path '/v1/devices/pc1.contoso.com'
path '/v1/devices/pc1.contoso.com/unprovision'
path '/v1/devices/pc1%2Econtoso.com/block?x=1#f'
path 'https://amtprov.example:8443/v1/devices/%70c1/update'
path '/v1/devices//unblock'
du -sh "$out"
