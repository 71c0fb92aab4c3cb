#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Authorization of the registration API (docs/api.md "Who may do what", docs/design.md
# "Threat model"): a host registers only itself (R-PROV-02/03). Each refusal is checked with
# the site database dumped before and after: wrong scope (an enrollment secret on every
# administrator operation, and on another device's status) 403; another host's FQDN or a
# UUID the secret is not bound to 403; a forged or garbage secret 401; a wired IP the FQDN
# does not resolve to 403 (amtprovd's system resolver is Debian's libnss-wrapper with a
# hosts file of the test); a name outside site.fqdn_patterns, or the service point's own,
# refused at registration and when minting (R-PC-05). Nothing changes in the database.
TEST_NAME=api_authz
. "$(dirname "$0")/lib.sh"

PLUGINS="$AMTPROV_BUILD_DIR/plugins"
claim_net
IP="$NET.10"
PORT=$((20000 + $$ % 20000))
URL="https://$IP:$PORT"
O="$T/out"; E="$T/err"
M="$T/site/site.json"
DB="$T/site/state/site.db"
ADMIN="adm-$(openssl rand -hex 24)"
REGKEY="$(openssl rand -hex 32)"
U1=11111111-2222-4333-8444-000000000001
U2=11111111-2222-4333-8444-000000000002
U3=11111111-2222-4333-8444-000000000003

# The system resolver amtprovd sees: pc1 and pc2 resolve to addresses of our own net; pc3
# is in no hosts file. nss_wrapper answers getaddrinfo() from the file (libnss-wrapper).
NSS_WRAPPER_LIB=$(ls /usr/lib/*/libnss_wrapper.so 2>/dev/null | head -n 1)
[ -n "$NSS_WRAPPER_LIB" ] || { echo "libnss-wrapper is not installed (scripts/install-deps.sh)" >&2; exit 1; }
printf '%s pc1.contoso.com\n%s pc2.contoso.com\n' "$NET.21" "$NET.22" >"$T/hosts"

pki="$T/pki"; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/api.key" -out "$pki/api.pem" \
  -subj "/CN=amtprov api" -days 30 -sha256 -addext "subjectAltName=IP:$IP" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$pki/api.key"
mkdir -p "$T/site"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "authz", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com",
            "fqdn_patterns": ["pc*.contoso.com", "oob.contoso.com"] },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "api": { "listen": "$IP:$PORT", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "admin_tokens": ["api/admin-token"], "registration_keys": ["api/registration-key"] }
}
JSON
"$AMTPROV" -m "$M" cred set api/admin-token --stdin <<<"$ADMIN" >/dev/null
"$AMTPROV" -m "$M" cred set api/registration-key --stdin <<<"$REGKEY" >/dev/null
"$AMTPROV" -m "$M" db init >/dev/null

# --- minting (amtprov enroll-secret)
expect_rc 0 "enroll-secret for pc1" run_cli "$T/pc1.secret" "$E" -m "$M" enroll-secret --fqdn PC1.contoso.com
expect_rc 0 "enroll-secret for pc2 bound to its UUID (--json)" run_cli "$O" "$E" -m "$M" --json enroll-secret --fqdn pc2.contoso.com --uuid "$U2"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["secret"]+"\n"); assert d["fqdn"]=="pc2.contoso.com" and d["uuid"]==sys.argv[3] and d["key"]=="api/registration-key", d' "$O" "$T/pc2.secret" "$U2"
check "... --json names the FQDN, UUID and key" test -s "$T/pc2.secret"
expect_rc 0 "enroll-secret for pc3" run_cli "$T/pc3.secret" "$E" -m "$M" enroll-secret --fqdn pc3.contoso.com
check "the secret is the lower-cased FQDN and an HMAC-SHA256 under the registration key" python3 - "$T/pc1.secret" "$REGKEY" <<'PY'
import hashlib, hmac, sys
s = open(sys.argv[1]).read().strip()
prefix, fqdn, uuid, mac = s.split("_")
want = hmac.new(sys.argv[2].encode(), b"amtprov enrollment secret v1\0" + fqdn.encode() + b"\0" + uuid.encode(), hashlib.sha256).hexdigest()
assert prefix == "amtprov-e1" and fqdn == "pc1.contoso.com" and uuid == "" and mac == want, s
PY
expect_rc 1 "R-PC-05: no secret for a name outside site.fqdn_patterns" run_cli "$O" "$E" -m "$M" enroll-secret --fqdn www.contoso.com
check "... saying why" grep -q "matches none of the site's fqdn_patterns" "$E"
expect_rc 1 "no secret for the service point's own name" run_cli "$O" "$E" -m "$M" enroll-secret --fqdn oob.contoso.com
check "... saying why" grep -q "the site's service point" "$E"
expect_rc 1 "no secret for a name outside the DNS suffix" run_cli "$O" "$E" -m "$M" enroll-secret --fqdn pc1.fabrikam.com
expect_rc 2 "enroll-secret needs --fqdn" run_cli "$O" "$E" -m "$M" enroll-secret

# --- amtprovd with the system resolver under nss_wrapper. Under the sanitizers: ASan must
# not insist on coming first among preloaded libraries (it is linked, nss_wrapper is
# preloaded), and nss_wrapper must not open libc with RTLD_DEEPBIND, which ASan refuses.
LOG="$T/amtprovd.log"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
  LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_HOSTS="$T/hosts" start_daemon "$LOG" -m "$M" -l debug
up() { curl -s --cacert "$pki/api.pem" "$URL/v1/health" >/dev/null; }
check "amtprovd serves the API" wait_for 20 up

c() { curl -s -o "$O" -w '%{http_code}' --cacert "$pki/api.pem" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got $1, want $2: $(cat "$O" 2>/dev/null)" >&2; return 1; }; }
dev_json() { # fqdn uuid ip
  printf '{"fqdn":"%s","uuid":"%s","amt_version":"12.0.45","wired_ip":"%s","otp_hash":"%s"}' \
    "$1" "$2" "$3" "$(printf otp | sha256sum | cut -d' ' -f1)"
}
post() { # body credential
  c -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $2" --data-binary "$1" "$URL/v1/devices"
}
S1=$(cat "$T/pc1.secret"); S2=$(cat "$T/pc2.secret"); S3=$(cat "$T/pc3.secret")
jq_is() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert eval(sys.argv[2]), d' "$O" "$1"; }
# The whole database as SQL text; every refusal must leave it as it was.
dump() { sqlite3 "$DB" .dump; }
same_db() { dump >"$T/after.sql"; cmp -s "$T/before.sql" "$T/after.sql" || { diff "$T/before.sql" "$T/after.sql" | head -20 >&2; return 1; }; }

# --- pc1 registers itself, from the address DNS gives its name
check "pc1's secret registers pc1 at the address its name resolves to: 201" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.21")" "$S1")" 201
waiting() { "$AMTPROV" -m "$M" device list 2>/dev/null | grep pc1.contoso.com | grep -q NEED_DEVICE_CHECK; }
check "pc1 waits in NEED_DEVICE_CHECK (no transport)" wait_for 10 waiting
check "pc1 reads its own status" is "$(c -H "Authorization: Bearer $S1" "$URL/v1/devices/pc1.contoso.com")" 200
check "... and by its UUID" is "$(c -H "Authorization: Bearer $S1" "$URL/v1/devices/$U1")" 200
sleep 1
dump >"$T/before.sql"
sleep 1
check "the database is still (nothing else writes meanwhile)" same_db

# --- 401: no valid credential
garbage="amtprov-e1_pc1.contoso.com__$(printf '0%.0s' {1..64})"
check "a garbage enrollment secret is 401" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.21")" "$garbage")" 401
check "... naming the reason" jq_is 'd["reason"]=="the enrollment secret does not verify"'
forged=$(python3 - <<'PY'
import hashlib, hmac, os
k = os.urandom(32).hex().encode()
print("amtprov-e1_pc1.contoso.com__" + hmac.new(k, b"amtprov enrollment secret v1\0pc1.contoso.com\0", hashlib.sha256).hexdigest())
PY
)
check "a secret minted under another key is 401" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.21")" "$forged")" 401
moved="amtprov-e1_pc2.contoso.com__${S1##*_}"
check "pc1's MAC under pc2's name is 401" is "$(post "$(dev_json pc2.contoso.com $U2 "$NET.22")" "$moved")" 401
check "a malformed secret is 401" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.21")" "amtprov-e1_pc1.contoso.com")" 401
check "... WWW-Authenticate says invalid_token" bash -c "curl -s -D - -o /dev/null --cacert '$pki/api.pem' -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer amtprov-e1_x' --data-binary '{}' '$URL/v1/devices' | grep -qi 'error=\"invalid_token\"'"
check "a wrong administrator token is 401" is "$(c -X POST -H "Authorization: Bearer ${ADMIN}x" "$URL/v1/devices/pc1.contoso.com/block")" 401
check "nothing changed in the database after the 401s" same_db

# --- 403: the secret is good, the request is not its to make
check "another host's FQDN (pc1's secret, pc2's report) is 403" is "$(post "$(dev_json pc2.contoso.com $U2 "$NET.22")" "$S1")" 403
check "... naming the field and whose secret it is" jq_is 'd["field"]=="fqdn" and d["scope"]=="register" and "is for pc1.contoso.com" in d["reason"]'
check "a UUID the secret is not bound to is 403" is "$(post "$(dev_json pc2.contoso.com $U3 "$NET.22")" "$S2")" 403
check "... field uuid" jq_is 'd["field"]=="uuid"'
for op in block unblock unprovision update credentials; do
  check "wrong scope: an enrollment secret cannot $op, not even its own device (403)" \
    is "$(c -X POST -H "Authorization: Bearer $S1" "$URL/v1/devices/pc1.contoso.com/$op")" 403
done
check "... saying an administrator token is needed" jq_is '"administrator token" in d["reason"] and d["scope"]=="register"'
check "wrong scope: reading another device is 403" is "$(c -H "Authorization: Bearer $S3" "$URL/v1/devices/pc1.contoso.com")" 403
check "... and so is a device that does not exist (no oracle)" is "$(c -H "Authorization: Bearer $S3" "$URL/v1/devices/nosuch.contoso.com")" 403
check "its own name before it registered is 404" is "$(c -H "Authorization: Bearer $S3" "$URL/v1/devices/pc3.contoso.com")" 404
check "nothing changed in the database after the scope refusals" same_db

# --- the address is not taken on the host's word
check "a wired IP its FQDN does not resolve to is 403" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.99")" "$S1")" 403
check "... saying what the resolver gives" jq_is 'd["field"]=="wired_ip" and "is not an address of pc1.contoso.com" in d["reason"] and "'"$NET.21"'" in d["reason"]'
check "a name that does not resolve is 403" is "$(post "$(dev_json pc3.contoso.com $U3 "$NET.23")" "$S3")" 403
check "... saying so" jq_is '"does not resolve" in d["reason"]'
check "nothing changed in the database after the address refusals" same_db

# --- the site's name policy (R-PC-05): refused for every credential, the administrator's too
check "an FQDN outside site.fqdn_patterns is 403, even from an administrator" is "$(post "$(dev_json www.contoso.com $U3 "$NET.23")" "$ADMIN")" 403
check "... a name refusal" jq_is 'd["result"]=="name" and d["field"]=="fqdn" and "fqdn_patterns" in d["reason"]'
check "the service point's name is refused although a pattern lists it" is "$(post "$(dev_json oob.contoso.com $U3 "$NET.23")" "$ADMIN")" 403
check "a name outside the DNS suffix (and the patterns) is refused" is "$(post "$(dev_json pc1.fabrikam.com $U3 "$NET.23")" "$ADMIN")" 403
expect_rc 1 "device add applies the same policy (exit 1)" run_cli "$O" "$E" -m "$M" device add --fqdn www.contoso.com --uuid "$U3" --amt-version 12.0.45
check "nothing changed in the database after the name refusals" same_db

# --- and what is allowed still works
check "pc2 registers with its UUID-bound secret at its address: 201" is "$(post "$(dev_json pc2.contoso.com $U2 "$NET.22")" "$S2")" 201
check "pc1 re-registers itself: 200" is "$(post "$(dev_json pc1.contoso.com $U1 "$NET.21")" "$S1")" 200
check "the administrator blocks pc1: 202" is "$(c -X POST -H "Authorization: Bearer $ADMIN" "$URL/v1/devices/pc1.contoso.com/block")" 202
check "the administrator reads any device" is "$(c -H "Authorization: Bearer $ADMIN" "$URL/v1/devices/pc2.contoso.com")" 200
# R-ACC-02 (issue 17 item 7): the administrator's credential reveal; pc2 is not provisioned,
# so there is no password to reveal, and nothing is audited.
check "R-ACC-02: credentials of a device with no admin password: 404 saying why" is "$(c -X POST -H "Authorization: Bearer $ADMIN" "$URL/v1/devices/pc2.contoso.com/credentials")" 404
check "... naming its state" jq_is '"no AMT admin password on record (device is " in d["error"]'
check "R-ACC-02: no reveal was audited or announced (8120)" \
  test "$(sqlite3 "$DB" "select count(*) from audit where action='credentials.reveal'")/$(sqlite3 "$DB" "select count(*) from status_messages where msg_id=8120")" = 0/0
check "the refusals were logged with the secret's FQDN, never a secret" bash -c \
  "grep -q 'enrollment secret of pc1.contoso.com) refused' '$LOG' && ! grep -qF -- '${S1##*_}' '$LOG' && ! grep -qF -- '$REGKEY' '$LOG' && ! grep -qF -- '$ADMIN' '$LOG'"

kill -TERM "$DAEMON_PID"
check "amtprovd stops cleanly" wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$LOG"
finish
