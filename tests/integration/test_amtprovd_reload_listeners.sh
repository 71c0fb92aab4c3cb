#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGHUP on the demo's own kind of site: ca-local serves its CRL over HTTP (crl_listen),
# and a reload hands that port over from the running instance to the new one instead of
# failing with "address in use" (status 8003). Reloaded twice, the CRL is fetched after
# each; a reload whose new configuration cannot start keeps the running one serving.
# README: "SIGHUP reloads" (R-REV-01: the CRL must stay reachable).
TEST_NAME=amtprovd_reload_listeners
. "$(dirname "$0")/lib.sh"

claim_net
q() { sqlite3 -batch -noheader "$T/site/state/site.db" "$1"; }
q_is() { [ "$(q "$2")" = "$1" ]; }
crl_ok() { # crl_ok URL: the answer is a DER CRL signed by the lab CA's issuer
  curl -sf --max-time 5 -o "$T/crl.der" "$1" &&
    openssl crl -inform DER -in "$T/crl.der" -noout -issuer >/dev/null 2>&1
}

make_prov_pki "$T/pki"
write_manifest() { # write_manifest CRL_LISTEN
  mkdir -p "$T/site"
  cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "reload", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$AMTPROV_BUILD_DIR/plugins"],
  "plugins": {
    "amt":    { "plugin": "amt-transport" },
    "lab-ca": { "plugin": "ca-local", "config": { "crl_listen": "$1" } },
    "creds":  { "plugin": "credstore-file" }
  },
  "credentials": { "store": "creds" },
  "certificates": { "web_server": { "ca": "lab-ca", "template": "AMTWebServer" } },
  "provisioning_certificate": { "certificate": "$T/pki/chain.pem", "key": "$T/pki/prov.key" },
  "amt": { "transport": "amt" }
}
JSON
}
URL="http://$NET.250:8080/lab-ca.crl"
write_manifest "$NET.250:8080"
"$AMTPROV" -m "$T/site/site.json" db init >/dev/null
start_daemon "$T/daemon.log" -m "$T/site/site.json" --log-level info
check "amtprovd serves the CRL on crl_listen" wait_for 20 crl_ok "$URL"

for n in 1 2; do
  kill -HUP "$DAEMON_PID"
  check "reload $n is applied (status 8002 x$n)" \
    wait_for 20 q_is "$n" "select count(*) from status_messages where msg_id=8002"
  check "reload $n did not fail (no status 8003)" \
    q_is 0 "select count(*) from status_messages where msg_id=8003"
  check "the CRL is served after reload $n" wait_for 20 crl_ok "$URL"
  check "amtprovd runs after reload $n" kill -0 "$DAEMON_PID"
done
check "a CRL port on 127.x is not called 'not loopback'" bash -c "! grep -q 'not loopback' '$T/daemon.log'"
check "no 'address in use' in the log" bash -c "! grep -qi 'address in use\|cannot serve the CRL' '$T/daemon.log'"

# A new configuration whose CRL port is taken by someone else: the reload fails (8003) and
# the running CA starts again on its own port.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8081)); s.listen(1); open(sys.argv[2], "w").close(); time.sleep(600)
' "$NET.250" "$T/blocker.ready" &
PIDS+=("$!")
check "a blocker holds $NET.250:8081" wait_for 10 test -e "$T/blocker.ready"
write_manifest "$NET.250:8081"
kill -HUP "$DAEMON_PID"
check "a reload that cannot start its CA is reported (status 8003)" \
  wait_for 20 q_is 1 "select count(*) from status_messages where msg_id=8003"
check "the 8003 message names the CRL port" \
  test -n "$(q "select text from status_messages where msg_id=8003 and text like '%port 8081%'")"
check "amtprovd keeps running after the failed reload" kill -0 "$DAEMON_PID"
check "the running configuration serves its CRL again" wait_for 20 crl_ok "$URL"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"; rc=$?
check "SIGTERM stops amtprovd with exit 0" test "$rc" -eq 0
check "no sanitizer report" no_sanitizer_reports "$T/daemon.log"
finish
