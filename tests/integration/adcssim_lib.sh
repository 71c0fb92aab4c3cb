# SPDX-License-Identifier: Apache-2.0
# Shared by the tests that run adcssim, the AD CS test server (docs/adcssim.md): start it
# on loopback and wait until it serves its CA certificate. Source after lib.sh.

ADCSSIM="$AMTPROV_BUILD_DIR/adcssim/adcssim"
ADCSSIM_SEED="$AMTPROV_SOURCE_DIR/adcssim/examples/seed.json"
ADCSSIM_CA_NAME="Contoso%20Issuing%20CA"   # the seed's CA name, as it appears in URLs

# adcssim_start DIR SEED IP HTTPS-PORT HTTP-PORT CA-PEM [SERVE-OPTIONS...]: runs `adcssim
# serve` with its state in DIR (logs DIR.out/DIR.err, or $ADCSSIM_LOG.out/.err: a second
# server on the same DIR), waits until it serves its CA certificate over HTTP and writes it
# to CA-PEM. Sets ADCSSIM_PID (also in PIDS, so the server is stopped however the test
# ends). Returns non-zero when it does not come up.
adcssim_start() {
  local dir=$1 seed=$2 ip=$3 https=$4 http=$5 pem=$6 log=${ADCSSIM_LOG:-$1}
  shift 6
  [ -x "$ADCSSIM" ] || { echo "adcssim not built: $ADCSSIM" >&2; return 1; }
  "$ADCSSIM" serve --dir "$dir" --seed "$seed" --listen "$ip:$https" --http-listen "$ip:$http" \
    "$@" >"$log.out" 2>"$log.err" &
  ADCSSIM_PID=$!
  PIDS+=("$ADCSSIM_PID")
  wait_for 20 curl -sf -o "$pem.der" "http://$ip:$http/CertEnroll/$ADCSSIM_CA_NAME.crt" &&
    openssl x509 -inform DER -in "$pem.der" -out "$pem"
}

# adcssim_requests DIR: adcssim's request database (`admin list --json`) on stdout.
adcssim_requests() { "$ADCSSIM" admin --dir "$1" list --json; }
