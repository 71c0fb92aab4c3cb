#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The registration API (docs/api.md): amtprovd serves HTTPS on loopback; a host agent
# registers its own device with the enrollment secret an administrator minted for it
# (R-PROV-02/03), a provisioned device is refused (R-PROV-01), a known device registers
# again (docs/states.md), an administrator token does the device operations, and nothing
# is written without a credential. The refusals of each scope: test_api_authz.sh.
TEST_NAME=api
. "$(dirname "$0")/lib.sh"

PLUGINS="$AMTPROV_BUILD_DIR/plugins"
# An address of our own (claim_net, lib.sh), so parallel test runs do not collide.
claim_net
IP="$NET.10"
PORT=$((20000 + $$ % 20000))
URL="https://$IP:$PORT"
O="$T/out"; E="$T/err"
M="$T/site/site.json"
TOKEN="tok-$(openssl rand -hex 24)"          # an administrator's token
REGKEY="$(openssl rand -hex 32)"             # the site registration key

# --- a server certificate for $IP
pki="$T/pki"; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/api.key" -out "$pki/api.pem" \
  -subj "/CN=amtprov api" -days 30 -sha256 -addext "subjectAltName=IP:$IP" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 600 "$pki/api.key"

mkdir -p "$T/site"
cat >"$M" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "api", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": { "creds": {"plugin": "credstore-file"} },
  "credentials": {"store": "creds"},
  "api": { "listen": "$IP:$PORT", "certificate": "$pki/api.pem", "key": "$pki/api.key",
           "admin_tokens": ["api/admin-token"], "registration_keys": ["api/registration-key"],
           "address_allow": ["10.0.0.0/24"], "max_body": 4096 }
}
JSON

# --- the token and the key go into the credential store; they are never echoed
expect_rc 0 "cred set --stdin stores the token" run_cli "$O" "$E" -m "$M" cred set api/admin-token --stdin <<<"$TOKEN"
expect_rc 0 "cred set stores the registration key" run_cli "$O" "$E" -m "$M" cred set api/registration-key --stdin <<<"$REGKEY"
check "cred set does not print the secret" bash -c "! grep -qF -- '$TOKEN' '$O' '$E'"
printf '%s\n' "$TOKEN" >"$T/token"; chmod 600 "$T/token"
printf 'another-secret-value-1234\n' >"$T/other"
expect_rc 0 "cred set --from-file" run_cli "$O" "$E" -m "$M" cred set other --from-file "$T/other"
expect_rc 0 "cred list" run_cli "$O" "$E" -m "$M" cred list
check "cred list shows the names only" bash -c "grep -qx 'api/admin-token' '$O' && grep -qx other '$O' && ! grep -q 'another-secret' '$O'"
# secret FQDN: the host's enrollment secret (amtprov enroll-secret), also in $T/FQDN.secret
secret() { "$AMTPROV" -m "$M" enroll-secret --fqdn "$1" | tee "$T/$1.secret"; chmod 600 "$T/$1.secret"; }
H1=(-H "Authorization: Bearer $(secret pc1.contoso.com)")
H2=(-H "Authorization: Bearer $(secret pc2.contoso.com)")
H3=(-H "Authorization: Bearer $(secret pc3.contoso.com)")
H9=(-H "Authorization: Bearer $(secret pc9.contoso.com)")
for h in pc7 pc8 pc10 pc11 pc12; do secret $h.contoso.com >/dev/null; done
check "enroll-secret prints a secret for the FQDN" grep -q '^amtprov-e1_pc1.contoso.com__[0-9a-f]\{64\}$' "$T/pc1.contoso.com.secret"
expect_rc 2 "cred set needs --from-file or --stdin" run_cli "$O" "$E" -m "$M" cred set x

"$AMTPROV" -m "$M" db init >/dev/null
LOG="$T/amtprovd.log"
start_daemon "$LOG" -m "$M" -l debug
up() { curl -s --cacert "$pki/api.pem" "$URL/v1/health" >/dev/null; }
check "amtprovd serves the API" wait_for 20 up

# c ARGS...: curl through TLS; prints the status code, body to $O
c() { curl -s -o "$O" -w '%{http_code}' --cacert "$pki/api.pem" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got $1, want $2: $(cat "$O" 2>/dev/null)" >&2; return 1; }; }
dev_json() { # fqdn uuid [state]
  printf '{"fqdn":"%s","uuid":"%s","amt_version":"11.8.50","wired_ip":"10.0.0.5","otp_hash":"%s","provisioning_state":"%s","wireless":true,"manufacturer":"Contoso","model":"OptiBox 7"}' \
    "$1" "$2" "$(printf otp | sha256sum | cut -d' ' -f1)" "${3:-pre}"
}
post() { # body [token-args...]
  local b=$1; shift
  c -X POST -H 'Content-Type: application/json' "$@" --data-binary "$b" "$URL/v1/devices"
}
ndev() { "$AMTPROV" -m "$M" device list 2>/dev/null | grep -c contoso.com; }
AUTH=(-H "Authorization: Bearer $TOKEN")

check "health works without authentication" is "$(c "$URL/v1/health")" 200
check "health says only ok" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"status": "ok"}' "$O"
# schema_ok METHOD PATH STATUS: the answer in $O matches docs/api.openapi.yaml (issue 17).
schema_ok() {
  python3 "$AMTPROV_SOURCE_DIR/tests/integration/openapi_check.py" \
    "$AMTPROV_SOURCE_DIR/docs/api.openapi.yaml" "$1" "$2" "$3" "$O"
}
check "the health answer matches the OpenAPI document" schema_ok GET /v1/health 200

D1=$(dev_json pc1.contoso.com 11111111-2222-4333-8444-000000000001)
check "POST without a token is 401" is "$(c -D "$T/h" -X POST -H 'Content-Type: application/json' --data-binary "$D1" "$URL/v1/devices")" 401
check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$T/h"
check "no device was created" is "$(ndev)" 0
check "wrong token is 401" is "$(post "$D1" -H "Authorization: Bearer ${TOKEN}x")" 401
check "Basic credentials are 401" is "$(post "$D1" -u "a:$TOKEN")" 401
check "still no device" is "$(ndev)" 0
check "GET of a device without a token is 401" is "$(c "$URL/v1/devices/pc1.contoso.com")" 401
check "the refusal was logged" grep -q "api: POST /v1/devices from .* refused: wrong bearer token" "$LOG"

check "pc1's enrollment secret: 201 Created" is "$(post "$D1" "${H1[@]}")" 201
check "the answer names the device and its state" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["fqdn"]=="pc1.contoso.com" and d["state"]=="REGISTERED" and d["id"]>0' "$O"
check "the 201 answer matches the OpenAPI document" schema_ok POST /v1/devices 201
check "the device appears in device list" bash -c "'$AMTPROV' -m '$M' device list | grep -q pc1.contoso.com"
past_registered() { "$AMTPROV" -m "$M" device list 2>/dev/null | grep pc1.contoso.com | grep -q NEED_DEVICE_CHECK; }
check "provisioning starts at once (waits in NEED_DEVICE_CHECK without a transport)" wait_for 10 past_registered
check "GET /v1/devices/{fqdn} shows its state (its own secret)" is "$(c "${H1[@]}" "$URL/v1/devices/pc1.contoso.com")" 200
check "the device answer matches the OpenAPI document" schema_ok GET '/v1/devices/{device}' 200
check "... without the OTP hash" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="NEED_DEVICE_CHECK" and "otp_hash" not in d and "last_error" in d' "$O"
check "... its state_since in ISO 8601 UTC, as the CLI's --json (issue 17)" python3 -c 'import json,re,sys; d=json.load(open(sys.argv[1])); assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["state_since"]), d' "$O"
check "GET by UUID (administrator)" is "$(c "${AUTH[@]}" "$URL/v1/devices/11111111-2222-4333-8444-000000000001")" 200
check "GET by UUID (its own secret)" is "$(c "${H1[@]}" "$URL/v1/devices/11111111-2222-4333-8444-000000000001")" 200
check "GET of an unknown device is 404" is "$(c "${AUTH[@]}" "$URL/v1/devices/nosuch.contoso.com")" 404
check "status 8100 was recorded" bash -c "'$AMTPROV' -m '$M' status --id 8100 | grep -q pc1.contoso.com"

# Re-registration (docs/states.md): the same FQDN and UUID again is the agent running again.
check "the same device again is a re-registration: 200" is "$(post "$D1" "${H1[@]}")" 200
check "... saying so, with the state it left" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="re-registered" and d["previous_state"] in ("NEED_DEVICE_CHECK","REGISTERED") and d["state"]=="REGISTERED", d' "$O"
check "status 8113 was recorded" bash -c "'$AMTPROV' -m '$M' status --id 8113 | grep -q pc1.contoso.com"
check "its UUID under another FQDN is 409 naming the field" is "$(post "$(dev_json pc9.contoso.com 11111111-2222-4333-8444-000000000001)" "${H9[@]}")" 409
check "... field fqdn, an identity conflict, status 8114" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["field"]=="fqdn" and d["result"]=="identity" and d["status"]==8114, d' "$O"
check "... naming neither the other device nor its state to the host" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["fqdn"]=="pc9.contoso.com" and "pc1" not in json.dumps(d) and "state" not in d, d' "$O"
check "its FQDN with another UUID is 409, field uuid" is "$(post "$(dev_json pc1.contoso.com 11111111-2222-4333-8444-0000000000ff)" "${H1[@]}")" 409
check "... and the API takes no 'replace'" is "$(post '{"fqdn":"pc1.contoso.com","uuid":"11111111-2222-4333-8444-0000000000ff","amt_version":"11.8.50","replace":true}' "${H1[@]}")" 400

D2=$(dev_json pc2.contoso.com 11111111-2222-4333-8444-000000000002 post)
check "R-PROV-01: a provisioned (post) device is 422" is "$(post "$D2" "${H2[@]}")" 422
check "R-PROV-01: the answer says why" grep -q "already provisioned" "$O"
check "R-PROV-01: status 8101 recorded" bash -c "'$AMTPROV' -m '$M' status --id 8101 | grep -q pc2.contoso.com"
D3=$(dev_json pc3.contoso.com 11111111-2222-4333-8444-000000000003 in)
check "'in' (remote configuration pending) is accepted" is "$(post "$D3" "${H3[@]}")" 201

check "malformed JSON is 400" is "$(post '{"fqdn": ' "${AUTH[@]}")" 400
check "... naming the problem" grep -q "malformed JSON at line" "$O"
check "duplicate keys are 400" is "$(post '{"fqdn":"a.contoso.com","fqdn":"b.contoso.com"}' "${AUTH[@]}")" 400
check "a bad UUID is 400 naming the field" is "$(post "$(dev_json pc4.contoso.com nope)" "${AUTH[@]}")" 400
check "... field is uuid" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["field"]=="uuid"' "$O"
check "an unknown key is 400" is "$(post '{"fqdn":"pc5.contoso.com","uuid":"11111111-2222-4333-8444-000000000005","amt_version":"11.8.50","color":"red"}' "${AUTH[@]}")" 400
check "a bad OTP hash is 400 without echoing it" bash -c "[ \"\$(curl -s -o '$O' -w '%{http_code}' --cacert '$pki/api.pem' -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer $TOKEN' --data-binary '{\"fqdn\":\"pc6.contoso.com\",\"uuid\":\"11111111-2222-4333-8444-000000000006\",\"amt_version\":\"11.8.50\",\"otp_hash\":\"zz-secret-zz\"}' '$URL/v1/devices')\" = 400 ] && ! grep -q zz-secret-zz '$O'"
check "the 400 answer matches the OpenAPI document" schema_ok POST /v1/devices 400
check "a form body is 415" is "$(c -X POST "${AUTH[@]}" -d 'fqdn=x' "$URL/v1/devices")" 415
head -c 8000 /dev/zero | tr '\0' ' ' >"$T/big"
printf '{}' >>"$T/big"
check "an oversized body is 413" is "$(c -X POST -H 'Content-Type: application/json' "${AUTH[@]}" --data-binary @"$T/big" "$URL/v1/devices")" 413
check "an unknown path is 404" is "$(c "${AUTH[@]}" "$URL/v1/nothing")" 404
check "PUT on a device is 405" is "$(c -X PUT "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com")" 405
# DELETE /v1/devices/{device} ('amtprov device delete', docs/lifecycle.md)
check "DELETE with an enrollment secret is 403" is "$(c -X DELETE "${H3[@]}" "$URL/v1/devices/pc3.contoso.com")" 403
check "DELETE ?force=maybe is 400" is "$(c -X DELETE "${AUTH[@]}" "$URL/v1/devices/pc3.contoso.com?force=maybe")" 400
check "DELETE of a device in provisioning is 409 without force" is "$(c -X DELETE "${AUTH[@]}" "$URL/v1/devices/pc3.contoso.com")" 409
check "... saying what to do" grep -q "device unprovision pc3.contoso.com" "$O"
check "DELETE ?force=true deletes it: 200" is "$(c -X DELETE "${AUTH[@]}" "$URL/v1/devices/pc3.contoso.com?force=true")" 200
check "the DELETE answer matches the OpenAPI document" schema_ok DELETE '/v1/devices/{device}' 200
check "... naming the record its history is kept under" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["record"].endswith(":pc3.contoso.com") and d["state"]=="NEED_DEVICE_CHECK" and d["directory_account_left"] is None, d' "$O"
check "the deleted device is 404" is "$(c "${AUTH[@]}" "$URL/v1/devices/pc3.contoso.com")" 404
check "status 8121 names the API caller" bash -c "'$AMTPROV' -m '$M' status --id 8121 | grep -q 'deleted by api:'"
check "GET /metrics counts the record apart from the devices" is "$(c "${AUTH[@]}" "$URL/metrics")" 200
check "... amtprov_devices_deleted 1, and no 'unknown' state" bash -c "grep -qx 'amtprov_devices_deleted 1' '$O' && ! grep -q 'state=\"unknown\"' '$O'"
check "GET /v1/devices is 405" is "$(c "${AUTH[@]}" "$URL/v1/devices")" 405
check "POST /v1/health is 405" is "$(c -X POST "$URL/v1/health")" 405

# --- amtprov device register: the host agent's client
expect_rc 0 "device register round trip (pc7's enrollment secret)" run_cli "$O" "$E" device register --url "$URL" \
  --token-file "$T/pc7.contoso.com.secret" --cacert "$pki/api.pem" --fqdn pc7.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000007 --amt-version 12.0.45 --wired-ip 10.0.0.7
check "device register prints the result" grep -q "registered pc7.contoso.com" "$O"
check "the registered device is in the database" bash -c "'$AMTPROV' -m '$M' device list | grep -q pc7.contoso.com"
dev_json pc8.contoso.com 11111111-2222-4333-8444-000000000008 >"$T/agent.json"
expect_rc 0 "device register --from-json (host agent output)" run_cli "$O" "$E" device register \
  --url "$URL/" --token-file "$T/pc8.contoso.com.secret" --cacert "$pki/api.pem" --from-json "$T/agent.json"
expect_rc 0 "device register of a known device re-registers it (exit 0)" run_cli "$O" "$E" device register \
  --url "$URL" --token-file "$T/pc8.contoso.com.secret" --cacert "$pki/api.pem" --from-json "$T/agent.json"
check "... saying so" grep -q "re-registered pc8.contoso.com" "$O"
expect_rc 1 "device register with another device's UUID exits 1" run_cli "$O" "$E" device register \
  --url "$URL" --token-file "$T/pc12.contoso.com.secret" --cacert "$pki/api.pem" --fqdn pc12.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000008 --amt-version 12.0.45
check "... saying why" grep -q "belongs to another registered device" "$E"
expect_rc 1 "device register of another host's FQDN exits 1" run_cli "$O" "$E" device register \
  --url "$URL" --token-file "$T/pc12.contoso.com.secret" --cacert "$pki/api.pem" --fqdn pc13.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000013 --amt-version 12.0.45
check "... saying whose secret it is" grep -q "enrollment secret is for pc12.contoso.com" "$E"
expect_rc 2 "device register --replace is a usage error (administrators only)" run_cli "$O" "$E" \
  device register --url "$URL" --token-file "$T/pc8.contoso.com.secret" --from-json "$T/agent.json" --replace
dev_json pc10.contoso.com 11111111-2222-4333-8444-000000000010 post >"$T/post.json"
expect_rc 1 "device register of a provisioned device exits 1 (R-PROV-01)" run_cli "$O" "$E" \
  device register --url "$URL" --token-file "$T/pc10.contoso.com.secret" --cacert "$pki/api.pem" --from-json "$T/post.json"
check "... saying why" grep -q "already provisioned" "$E"
expect_rc 1 "device register with a wrong token exits 1" run_cli "$O" "$E" device register \
  --url "$URL" --token-file "$T/other" --cacert "$pki/api.pem" --fqdn pc11.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000011 --amt-version 12.0.45
expect_rc 1 "device register without the CA (unverified server) exits 1" run_cli "$O" "$E" \
  device register --url "$URL" --token-file "$T/pc11.contoso.com.secret" --fqdn pc11.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000011 --amt-version 12.0.45
expect_rc 2 "device register refuses http://" run_cli "$O" "$E" device register \
  --url "http://$IP:$PORT" --token-file "$T/pc11.contoso.com.secret" --fqdn pc11.contoso.com \
  --uuid 11111111-2222-4333-8444-000000000011 --amt-version 12.0.45
expect_rc 2 "device register checks input locally" run_cli "$O" "$E" device register \
  --url "$URL" --token-file "$T/pc11.contoso.com.secret" --fqdn "bad host" \
  --uuid 11111111-2222-4333-8444-000000000011 --amt-version 12.0.45

# --- device operations (docs/api.md): the same requests as 'amtprov device OP'
op() { c -X POST "$@"; }
check "an operation without a token is 401" is "$(op "$URL/v1/devices/pc1.contoso.com/block")" 401
check "GET on an operation is 405" is "$(c "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/block")" 405
check "an unknown operation is 404" is "$(op "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/explode")" 404
check "an operation on an unknown device is 404" is "$(op "${AUTH[@]}" "$URL/v1/devices/nobody.contoso.com/block")" 404
check "update of a device that is not PROVISIONED is 409 saying why" \
  is "$(op "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/update")" 409
check "the 409 names the state" grep -q "only a PROVISIONED device is updated" "$O"
check "R-REV-02d: block is 202 Accepted" is "$(op "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/block")" 202
check "block answers the new state" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="BLOCKED" and d["blocked"] and d["operation"]=="block", d' "$O"
check "blocking twice is 409" is "$(op "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/block")" 409
check "unblock of a device that never got a certificate frees it" is "$(op "${AUTH[@]}" "$URL/v1/devices/pc1.contoso.com/unblock")" 202
check "unblock answers UNPROVISIONED" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="UNPROVISIONED" and not d["blocked"], d' "$O"
check "the audit trail names the API caller" bash -c "'$AMTPROV' -m '$M' device show pc1.contoso.com | grep -q 'api:'"

# --- transport security
check "plain HTTP to the port fails" bash -c "! curl -s -m 5 -o /dev/null 'http://$IP:$PORT/v1/health'"
check "TLS 1.1 is refused" bash -c "! curl -s -m 5 -o /dev/null --cacert '$pki/api.pem' --tlsv1.1 --tls-max 1.1 '$URL/v1/health'"
check "TLS 1.2 works" bash -c "curl -s -m 5 -o /dev/null --cacert '$pki/api.pem' --tlsv1.2 --tls-max 1.2 '$URL/v1/health'"

# --- secrets never reach the log
check "the token never appears in the log" bash -c "! grep -qF -- '$TOKEN' '$LOG'"
check "the registration key never appears in the log" bash -c "! grep -qF -- '$REGKEY' '$LOG'"
check "no enrollment secret appears in the log" bash -c "! grep -qF -- \"\$(cut -d_ -f4 '$T/pc1.contoso.com.secret')\" '$LOG'"
check "the OTP hash never appears in the log" bash -c "! grep -qF -- '$(printf otp | sha256sum | cut -d' ' -f1)' '$LOG'"

kill -TERM "$DAEMON_PID"
check "amtprovd stops cleanly" wait "$DAEMON_PID"
check "no sanitizer report" no_sanitizer_reports "$LOG"
finish
