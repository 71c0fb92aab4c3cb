#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs amtprov's dependencies from Debian 12 packages. Safe to re-run: when everything
# is already installed it does nothing.
# Usage: scripts/install-deps.sh [demo|all] [--print]
#   demo  what scripts/demo.sh needs: the build (without the test suites) and the demo's
#         own tools; no server package, nothing that starts a service
#   all   (default, scripts/test.sh) the demo's packages and the test-only ones
#   --print  list the packages, one a line, and install nothing
set -euo pipefail

what=all print=""
for a in "$@"; do
  case "$a" in
    demo|all) what=$a ;;
    --print) print=1 ;;
    *) echo "usage: scripts/install-deps.sh [demo|all] [--print]" >&2; exit 2 ;;
  esac
done

DEMO_PACKAGES=(
  build-essential cmake pkg-config
  libssl-dev openssl          # all PKI and TLS (the demo makes its PKI with the openssl CLI)
  libxml2-dev                 # WS-Management, legacy SOAP, CEP/CES messages (amt-transport, amtsim, ca-mscert)
  libltdl-dev                 # plugin loading
  libjansson-dev              # manifests, JSON
  libsqlite3-dev              # the site database
  libpq-dev                   # the site database on PostgreSQL (several amtprovd hosts); a build dependency, no server
  libevent-dev                # the engine's event loop
  libcurl4-openssl-dev        # HTTPS + Digest client for the AMT transport
  libmicrohttpd-dev           # small HTTP servers: ca-local's CRL endpoint
  libldap-dev                 # directory-ad: Active Directory accounts over LDAPS/StartTLS (OpenLDAP's libldap)
  python3                     # the demo reads amtprov's --json output
)

# Only for scripts/test.sh: test suites, real third-party peers, fuzzing. Never installed by
# the demo; the services some of them bring are disabled below.
TEST_PACKAGES=(
  git
  libcunit1-dev               # unit tests
  sqlite3                     # tests inspect the site database
  curl                        # tests: a real TLS + Digest client against amtsim
  scep                        # tests: a real SCEP CA (scepserver) for ca-external
  amtterm libsoap-lite-perl liblwp-protocol-https-perl   # tests: amttool, a real legacy AMT SOAP client
  freeradius eapoltest        # tests: a real RADIUS server and 802.1X supplicant (R-8021X-07)
  python3-cryptography        # tests: read a credstore-file or credstore-pg record with its key (test_e2e_recovery, test_multihost_pg)
  python3-yaml python3-jsonschema  # tests: real API answers checked against docs/api.openapi.yaml
  python3-prometheus-client   # tests: the Prometheus client library's own parser reads GET /metrics (test_metrics_fleet)
  chromium                    # tests: headless Chromium renders the status page (GET /) and keeps a screenshot (test_status_page)
  systemd                     # tests: systemd-analyze checks the shipped amtprovd@.service
  libnss-wrapper              # tests: amtprovd's system resolver answers from a hosts file (test_api_authz)
  clang libclang-rt-14-dev    # tests: libFuzzer harnesses (tests/fuzz); the runtime is only a Recommends of clang
  libkrb5-dev                 # adcssim: Kerberos (HTTP Negotiate) CEP/CES endpoints, MIT GSSAPI acceptor
  krb5-kdc krb5-admin-server krb5-user  # tests: a test KDC (kadmin.local, kinit) for adcssim's Negotiate
  libxml2-utils               # tests: xmllint validates adcssim's replies against the XSDs
  samba samba-ad-dc samba-ad-provision winbind  # tests: a throwaway Samba AD DC (adcssim's Kerberos test, directory-ad)
  ldap-utils                  # tests: ldapsearch/ldapmodify check directory-ad's accounts as an AD administrator would
  ldb-tools                   # tests: ldbsearch/ldbmodify on the Samba DC's sam.ldb (test_e2e_kerberos_samba)
  postgresql                  # tests: a private PostgreSQL server (initdb + pg_ctl) for the shared site database
  strace                      # benchmarks only: bench_provision.sh counts amtprovd's fsyncs per device and thread
)

PACKAGES=("${DEMO_PACKAGES[@]}")
[ "$what" = all ] && PACKAGES+=("${TEST_PACKAGES[@]}")
if [ -n "$print" ]; then printf '%s\n' "${PACKAGES[@]}"; exit 0; fi

# Debian enables the services of some packages the tests install (FreeRADIUS, the MIT KDC,
# Samba, PostgreSQL): the tests start their own instances on loopback, so the system ones are disabled
# and stopped, never left listening on the machine's interfaces.
disable_test_services() {
  command -v systemctl >/dev/null 2>&1 || return 0
  local svc
  for svc in freeradius krb5-kdc krb5-admin-server samba-ad-dc smbd nmbd winbind postgresql; do
    if systemctl is-enabled "$svc" >/dev/null 2>&1; then
      $SUDO systemctl disable "$svc" >/dev/null 2>&1 ||
        echo "install-deps: could not disable $svc.service; disable it by hand" >&2
    fi
    if systemctl is-active "$svc" >/dev/null 2>&1; then
      $SUDO systemctl stop "$svc" >/dev/null 2>&1 ||
        echo "install-deps: could not stop $svc.service; stop it by hand" >&2
    fi
  done
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tests only: a standard OpenAPI 3 validator (swagger-cli) checks docs/api.openapi.yaml. It
# comes from npm, pinned, into .test-tools/ of the source tree (never global); node and npm
# themselves come from Debian when the machine has none.
OPENAPI_VALIDATOR="@apidevtools/swagger-cli@4.0.4"
tools_dir="$(cd "$(dirname "$0")/.." && pwd)/.test-tools/openapi"
if [ "$what" = all ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
disable_test_services
if [ "$what" = all ] && [ ! -x "$tools_dir/node_modules/.bin/swagger-cli" ]; then
  echo "install-deps: installing $OPENAPI_VALIDATOR into $tools_dir (npm)" >&2
  mkdir -p "$tools_dir"
  npm install --silent --no-audit --no-fund --prefix "$tools_dir" "$OPENAPI_VALIDATOR" >/dev/null
fi
