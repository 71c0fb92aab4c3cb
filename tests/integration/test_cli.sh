#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The amtprov command line as a user meets it: help, exit codes, manifest errors with their
# JSON paths, database creation and corruption, device registration (R-PROV-01/02/03),
# status messages, plugin loading errors that name the file.
TEST_NAME=cli
. "$(dirname "$0")/lib.sh"

O="$T/out"; E="$T/err"
json_ok() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }

# --- help, version, usage errors
expect_rc 0 "--help exits 0" run_cli "$O" "$E" --help
check "--help prints usage on stdout" grep -q "Usage: amtprov" "$O"
# Every subcommand answers -h/--help on stdout with exit 0, with no manifest needed.
for sub in "device -h" "device block -h" "device update --help" "device list -h" \
           "task -h" "task list -h" "task run -h" "cert list -h" "status -h" "cred -h" \
           "enroll-secret -h"; do
  # shellcheck disable=SC2086
  expect_rc 0 "'$sub' exits 0 without a manifest" \
    bash -c 'env -u AMTPROV_MANIFEST "$0" "${@:3}" >"$1" 2>"$2"' "$AMTPROV" "$O" "$E" $sub
  check "'$sub' prints its usage on stdout, nothing on stderr" \
    bash -c "grep -q 'Usage: amtprov' '$O' && ! [ -s '$E' ]"
done
expect_rc 0 "--version exits 0" run_cli "$O" "$E" --version
expect_rc 2 "no command is a usage error (exit 2)" run_cli "$O" "$E"
expect_rc 2 "unknown command is a usage error" run_cli "$O" "$E" frobnicate
check "unknown command is named on stderr" grep -q "frobnicate" "$E"
expect_rc 2 "no manifest is a usage error" env -u AMTPROV_MANIFEST "$AMTPROV" device list >"$O" 2>"$E"

# --- manifest check
expect_rc 0 "minimal example manifest is valid" \
  run_cli "$O" "$E" -m "$AMTPROV_SOURCE_DIR/examples/manifests/minimal.json" manifest check
# The lab example names certificate files it does not ship: without them it is not valid,
# and the error names the JSON path of each missing file.
mkdir -p "$T/lab"
cp "$AMTPROV_SOURCE_DIR/examples/manifests/lab-site.json" "$T/lab/site.json"
expect_rc 3 "manifest check refuses a missing provisioning certificate and key" \
  run_cli "$O" "$E" -m "$T/lab/site.json" manifest check --no-plugins
check "a missing file is named with its JSON path" \
  bash -c "grep -q '/provisioning_certificate/certificate: .*certs/prov-chain.pem: No such file' '$E' &&
           grep -q '/provisioning_certificate/key: .*certs/prov.key' '$E' &&
           grep -q '/ieee8021x/wired/server_ca: .*radius-ca.pem' '$E'"
check "a refused manifest check does not say valid" bash -c "! grep -q valid '$O'"
mkdir -p "$T/lab/certs"
touch "$T/lab/certs/prov-chain.pem" "$T/lab/certs/prov.key" "$T/lab/certs/radius-ca.pem"
chmod 000 "$T/lab/certs/prov.key"
if [ -r "$T/lab/certs/prov.key" ]; then
  echo "# running as root: the unreadable-file case cannot be tested"
else
  expect_rc 3 "manifest check refuses an unreadable key file" \
    run_cli "$O" "$E" -m "$T/lab/site.json" manifest check --no-plugins
  check "the unreadable file is named with its JSON path" \
    grep -q '/provisioning_certificate/key: .*Permission denied' "$E"
fi
chmod 600 "$T/lab/certs/prov.key"
expect_rc 0 "lab example manifest is valid once its files exist (plugins not loaded)" \
  run_cli "$O" "$E" -m "$T/lab/site.json" manifest check --no-plugins
mkdir -p "$T/bad"
printf '{"manifest_version": 1,\n "site": {"name": "x",,}}\n' >"$T/bad/syntax.json"
expect_rc 3 "malformed JSON manifest exits 3" run_cli "$O" "$E" -m "$T/bad/syntax.json" manifest check
check "malformed JSON error names the file and line" grep -q "syntax.json.*2" "$E"
cat >"$T/bad/many.json" <<'JSON'
{"manifest_version": 1,
 "site": {"name": "x", "service_point_fqdn": "not a host", "dns_suffix": "contoso.com", "colour": "red"},
 "engine": {"max_in_flight": 0}}
JSON
expect_rc 3 "invalid manifest exits 3" run_cli "$O" "$E" -m "$T/bad/many.json" manifest check
check "every error is reported with its JSON path (3 at once)" \
  bash -c "grep -q '/site/service_point_fqdn' '$E' && grep -q '/site/colour' '$E' && grep -q '/engine/max_in_flight' '$E'"
check "invalid manifest creates no state" test ! -e "$T/bad/state"
expect_rc 0 "manifest check --json" run_cli "$O" "$E" --json \
  -m "$AMTPROV_SOURCE_DIR/examples/manifests/minimal.json" manifest check --no-plugins
check "manifest check --json is JSON" json_ok "$O"

# --- database
make_site
M="$T/site/site.json"
expect_rc 4 "commands on a missing database exit 4" run_cli "$O" "$E" -m "$M" device list
check "missing database error says how to create it" grep -q "amtprov db init" "$E"
expect_rc 0 "db init creates the database" run_cli "$O" "$E" -m "$M" db init
check "database is owner-only (0600)" test "$(stat -c %a "$T/site/state/site.db")" = 600
expect_rc 0 "db init is idempotent" run_cli "$O" "$E" -m "$M" db init
expect_rc 0 "db check passes on a good database" run_cli "$O" "$E" -m "$M" db check

# --- devices (R-PROV-01/02/03)
OTP=$(printf 'otp' | sha256sum | cut -d' ' -f1)
expect_rc 0 "device add registers a device" run_cli "$O" "$E" -m "$M" device add \
  --fqdn PC1.Contoso.com --uuid 11111111-2222-4333-8444-555555555555 --amt-version 11.8.50 \
  --wired-ip 10.0.0.5 --otp-hash "$OTP" --wireless
expect_rc 1 "a known FQDN with another UUID is refused (exit 1)" run_cli "$O" "$E" -m "$M" device add \
  --fqdn pc1.contoso.com --uuid 11111111-2222-4333-8444-555555555556 --amt-version 11.8.50
check "the refusal names the field and the way to confirm" bash -c "grep -q '(uuid)' '$E' && grep -q -- '--replace' '$E'"
expect_rc 2 "a bad FQDN is a usage error" run_cli "$O" "$E" -m "$M" device add \
  --fqdn "bad host" --uuid 11111111-2222-4333-8444-555555555557 --amt-version 11.8.50
expect_rc 2 "a bad UUID is a usage error" run_cli "$O" "$E" -m "$M" device add \
  --fqdn pc2.contoso.com --uuid nope --amt-version 11.8.50
expect_rc 1 "R-PROV-01: a provisioned device is refused" run_cli "$O" "$E" -m "$M" device add \
  --fqdn pc3.contoso.com --uuid 11111111-2222-4333-8444-555555555558 --amt-version 12.0.1 \
  --provisioning-state post
check "R-PROV-01: refusal says why" grep -q "already provisioned" "$E"
cat >"$T/agent.json" <<'JSON'
{"fqdn": "pc4.contoso.com", "uuid": "11111111-2222-4333-8444-555555555559",
 "amt_version": "16.1.25", "wired_ip": "10.0.0.9", "provisioning_state": "pre"}
JSON
expect_rc 0 "device add --from-json (host agent output)" run_cli "$O" "$E" -m "$M" device add --from-json "$T/agent.json"
expect_rc 0 "device list --json" run_cli "$O" "$E" -m "$M" --json device list
check "device list --json is JSON with 2 devices" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==2 and d[0]["fqdn"]=="pc1.contoso.com" and d[0]["state"]=="REGISTERED" and d[0]["wireless_capable"]' "$O"
expect_rc 0 "device show by UUID" run_cli "$O" "$E" -m "$M" device show 11111111-2222-4333-8444-555555555555
check "device show prints the audit trail" grep -q "device.add" "$O"
expect_rc 1 "device show of an unknown device exits 1" run_cli "$O" "$E" -m "$M" device show nosuch.contoso.com
expect_rc 1 "device retry of a non-FAILED device exits 1" run_cli "$O" "$E" -m "$M" device retry pc1.contoso.com
check "retry refusal names the state" grep -q "REGISTERED" "$E"
# Issue 17: report shows whole FQDNs (they are pasted into device show), and --state takes
# any case.
LONG=a-very-long-workstation-name-0001.contoso.com
expect_rc 0 "device add with a 45-character FQDN" run_cli "$O" "$E" -m "$M" device add \
  --fqdn "$LONG" --uuid 11111111-2222-4333-8444-55555555555a --amt-version 16.1.25
expect_rc 0 "report" run_cli "$O" "$E" -m "$M" report
check "report prints the whole FQDN" grep -q "^$LONG " "$O"
expect_rc 0 "device list --state registered (lower case) is accepted" \
  run_cli "$O" "$E" -m "$M" device list --state registered
check "... and lists the REGISTERED devices" grep -q "$LONG" "$O"
expect_rc 2 "device list --state of an unknown state is a usage error" \
  run_cli "$O" "$E" -m "$M" device list --state nosuchstate
# amtprov device delete (docs/lifecycle.md "Deleting a device")
expect_rc 0 "device delete --help" run_cli "$O" "$E" device delete --help
check "... names its options and exit status 6" bash -c "grep -q -- --revoke '$O' && grep -q -- --force '$O' && grep -q '6 busy' '$O'"
expect_rc 2 "device delete without a device is a usage error" run_cli "$O" "$E" -m "$M" device delete
expect_rc 1 "device delete of an unknown device exits 1" run_cli "$O" "$E" -m "$M" device delete nosuch.contoso.com
expect_rc 0 "device delete of a REGISTERED device (a mistyped registration)" run_cli "$O" "$E" -m "$M" device delete "$LONG"
check "... says what it is kept as" grep -q "kept as deleted-[0-9]*:$LONG" "$O"
check "report leaves the deleted device out" bash -c "'$AMTPROV' -m '$M' report | grep -vq '^$LONG ' && ! '$AMTPROV' -m '$M' report | grep -q '^$LONG '"
expect_rc 0 "the same FQDN and UUID can be added again" run_cli "$O" "$E" -m "$M" device add \
  --fqdn "$LONG" --uuid 11111111-2222-4333-8444-55555555555a --amt-version 16.1.25
expect_rc 0 "amtprovd --help" bash -c '"$0" --help >"$1"' "$AMTPROVD" "$O"
check "amtprovd --help says what exit status 6 is" grep -q "6 (busy" "$O"

# --- status messages
expect_rc 0 "status lists registrations" run_cli "$O" "$E" -m "$M" status --id 8100
check "status 8100 recorded per registration (3, and the deleted name added again)" test "$(grep -c DEVICE_REGISTERED "$O")" -eq 4
expect_rc 0 "status --severity error" run_cli "$O" "$E" -m "$M" --json status --severity error
check "R-PROV-01 refusal stored as status 8101, the identity refusal as 8114" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [m["msg_id"] for m in d]==[8101, 8114], d' "$O"
expect_rc 0 "status catalog" run_cli "$O" "$E" status catalog
check "catalog has 7210 and 7211 (R-PC-06)" bash -c "grep -q '^ 7210 warning' '$O' && grep -q '^ 7211 error' '$O'"
expect_rc 0 "cert list on an empty site" run_cli "$O" "$E" -m "$M" cert list --expiring-within 42

# --- plugins
expect_rc 0 "plugin show loads a plugin" run_cli "$O" "$E" plugin show --plugin-dir "$TEST_PLUGINS" fake-ca-issued
check "plugin show prints kind and capabilities" bash -c "grep -q 'kind *ca' '$O' && grep -q 'ca:revoke' '$O'"
expect_rc 5 "plugin show of a foreign-ABI plugin exits 5" run_cli "$O" "$E" plugin show --plugin-dir "$TEST_PLUGINS" bad-abi-major
check "ABI error names the file" grep -q "bad-abi-major.so" "$E"
# With -m, the manifest's plugin_path is searched (issue 17); $M names $TEST_PLUGINS.
expect_rc 0 "plugin show NAME -m site.json finds the plugin in the manifest's plugin_path" \
  run_cli "$O" "$E" -m "$M" plugin show fake-ca-issued
check "... and shows it" grep -q "ca:revoke" "$O"
expect_rc 0 "plugin show (text) ..." run_cli "$O" "$E" plugin show --plugin-dir "$TEST_PLUGINS" fake-ca-issued
check "... prints each configuration key's help text" grep -q "validity_days .*validity of issued certificates" "$O"
# plugin test: the CA contract check of amtprovd, on demand (docs/plugin-guide.md 13).
expect_rc 0 "plugin test: a CA that keeps the contract passes (WAIT_WITH_DELAY, poll, ISSUED, revoke)" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --no-crl-check \
  --config '{"delay_seconds": 1}' fake-ca-wait-delay
check "plugin test prints every answer" bash -c "grep -q 'web-server *submit *WAIT_WITH_DELAY' '$O' && grep -q 'web-server *poll *ISSUED' '$O' && grep -q '802.1x-client *revoke *ISSUED' '$O'"
expect_rc 1 "plugin test: a web server certificate without a CRL distribution point fails" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --purpose web-server --config '{}' fake-ca-issued
check "plugin test names the rule" grep -q "contract rule 'crl'" "$O"
expect_rc 1 "plugin test: a REJECTED answer fails" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --config '{}' fake-ca-rejected
expect_rc 0 "plugin test --json" run_cli "$O" "$E" -j plugin test --plugin-dir "$TEST_PLUGINS" \
  --purpose 802.1x-client --config '{}' fake-ca-issued
check "plugin test --json gives calls and the contract result" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r[0]["purpose"] == "802.1x-client" and r[0]["ok"] and r[0]["contract"]["ok"], r
assert [c["call"] for c in r[0]["calls"]] == ["submit", "revoke"], r
' "$O"
expect_rc 2 "plugin test with an unknown purpose exits 2" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --purpose nope --config '{}' fake-ca-issued
expect_rc 3 "plugin test with a bad configuration exits 3" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --config '{"nosuch": 1}' fake-ca-issued
expect_rc 5 "plugin test of a missing plugin exits 5" \
  run_cli "$O" "$E" plugin test --plugin-dir "$TEST_PLUGINS" --config '{}' no-such-ca
make_site '"plugins": {"lab-ca": {"plugin": "no-such-ca"}}, "certificates": {"web_server": {"ca": "lab-ca"}}'
expect_rc 5 "a missing plugin exits 5" run_cli "$O" "$E" -m "$M" manifest check
check "missing plugin error names it and the directories searched" \
  bash -c "grep -q 'no-such-ca' '$E' && grep -q '$TEST_PLUGINS' '$E'"

# --- credentials: set, list, rotate (R-ACC-02) through the real credstore-file plugin
make_site '"plugins": {"creds": {"plugin": "credstore-file"}}, "credentials": {"store": "creds"}'
export AMTPROV_PLUGIN_PATH="$AMTPROV_BUILD_DIR/plugins"   # where credstore-file is built
# manifest check creates nothing: no state directory, no credential-store key (R-ACC-02).
tree_sum() { (cd "$1" && find . -printf '%p %y %m %s\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum); }
tree_sum "$T/site" >"$T/tree.before"
expect_rc 0 "manifest check with the credential store loaded" run_cli "$O" "$E" -m "$M" manifest check
check "manifest check on a new site creates no plugin state directory and no key file" test ! -e "$T/site/state/plugins/creds"
tree_sum "$T/site" >"$T/tree.after"
check "manifest check leaves a new site's tree byte-identical" cmp -s "$T/tree.before" "$T/tree.after"
printf 's3cret-value\n' >"$T/secret"
expect_rc 0 "cred set stores a secret" run_cli "$O" "$E" -m "$M" cred set site/mebx --from-file "$T/secret"
check "cred set never prints the value" bash -c "! grep -q s3cret '$O' '$E'"
KEYFILE="$T/site/state/plugins/creds/credentials.key"
cp "$KEYFILE" "$T/key.before"
expect_rc 0 "cred rotate re-encrypts under a new key" run_cli "$O" "$E" -m "$M" cred rotate
check "the key file changed" bash -c "! cmp -s '$KEYFILE' '$T/key.before'"
expect_rc 0 "cred list after rotation" run_cli "$O" "$E" -m "$M" cred list
check "the record is still there" grep -qx "site/mebx" "$O"
check "no secret in the store file in clear" bash -c "! grep -qa s3cret '$T/site/state/plugins/creds/credentials.store'"
rm -f "$T/site/state/plugins/creds/credentials.store.lock"
tree_sum "$T/site" >"$T/tree.before"
expect_rc 0 "manifest check on a site with a credential store" run_cli "$O" "$E" -m "$M" manifest check
tree_sum "$T/site" >"$T/tree.after"
check "manifest check leaves an existing site's tree byte-identical (no lock file either)" \
  cmp -s "$T/tree.before" "$T/tree.after"
unset AMTPROV_PLUGIN_PATH

# --- a corrupt database is refused and left untouched
make_site
head -c 16384 /dev/urandom >"$T/site/state/site.db"
cp "$T/site/state/site.db" "$T/corrupt.copy"
expect_rc 4 "a corrupt database exits 4" run_cli "$O" "$E" -m "$M" device list
check "corrupt database error names the file" grep -q "site.db" "$E"
expect_rc 4 "device add on a corrupt database exits 4" run_cli "$O" "$E" -m "$M" device add \
  --fqdn pc9.contoso.com --uuid 11111111-2222-4333-8444-555555555550 --amt-version 11.8.50
check "the corrupt database is unchanged" cmp -s "$T/site/state/site.db" "$T/corrupt.copy"

finish
