#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end on legacy firmware (R-PROV-10, R-PROV-11, R-PROV-12, R-PROV-06, R-8021X): simulated
# AMT 8.1, 6.2 and 6.0 devices (and a 10.0 one for 802.1X) are provisioned by amtprovd through
# the real plugins (amt-transport, ca-local, credstore-file, radius-8021x). The first stage
# speaks the legacy EOI SOAP services (AMT < 9), over TLS 1.0/1.1 as that firmware does (no
# tls_modern_override: amt-transport's legacy_tls lets it connect); the second stage speaks
# WS-Man. Everything is checked on the devices through amtsim's dump and state: time,
# host/domain, key + certificate installed and TLS on with it, a new admin password (stored
# encrypted), the MEBx password set by policy, state post. Keys (issue 17, item 12): from AMT
# 6.2 the web server and 802.1X keys are generated inside AMT (key_source auto) and their
# certificates go in over WS-Man; the 6.0 device, which has no GenerateKeyPair, gets keys made
# by amtprov (legacy SetTLSKeyAndCertificate) and a status 8125 naming it, its version and the
# missing feature. 802.1X below AMT 11: the wired profile is AMT_8021XProfile, its client
# certificate and RADIUS root bound by references in the Put (AMT_8021xCredentialContext).
TEST_NAME=e2e_legacy
. "$(dirname "$0")/lib.sh"

AMTSIM="$AMTPROV_BUILD_DIR/sim/amtsim"
PLUGINS="$AMTPROV_BUILD_DIR/plugins"
# A loopback /24 of our own (claim_net, lib.sh).
claim_net

pki="$T/pki"
make_prov_pki "$pki"   # sets ROOT_HASH (lib.sh)

mkdir -p "$T/sim"
cat >"$T/fleet.json" <<JSON
{ "key_pool": 2, "keygen_latency_ms": 20,
  "devices": [
    { "id": "pc8", "address": "$NET.8", "amt_version": "8.1.40", "provisioning_state": "in",
      "host_name": "oldname", "domain_name": "old.example", "dhcp_domain": "contoso.com",
      "clock_offset": -86400,
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "pc6", "address": "$NET.6", "amt_version": "6.2.61", "provisioning_state": "in",
      "host_name": "pc6", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "pc60", "address": "$NET.60", "amt_version": "6.0.30", "provisioning_state": "in",
      "host_name": "pc60", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] },
    { "id": "pc10", "address": "$NET.10", "amt_version": "10.0.55", "provisioning_state": "in",
      "host_name": "pc10", "domain_name": "contoso.com", "dhcp_domain": "contoso.com",
      "root_hashes": [ { "name": "lab root", "algo": "sha256", "hash": "$ROOT_HASH" } ] }
  ] }
JSON
"$AMTSIM" serve --fleet "$T/fleet.json" --state-dir "$T/sim" --quiet 2>"$T/amtsim.log" &
PIDS+=("$!")
check "amtsim serves the legacy fleet" wait_for 20 test -S "$T/sim/control.sock"

# The devices really are legacy: they answer EOI SOAP, and only below TLS 1.2.
soap_core_version() { # address: GetCoreVersion over plain HTTP with the empty admin password
  curl -s --max-time 10 --digest -u admin: -H 'Content-Type: text/xml' \
    -H 'SOAPAction: "http://schemas.intel.com/platform/client/SecurityAdministration/2004/01#GetCoreVersion"' \
    --data '<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><h:GetCoreVersion xmlns:h="http://schemas.intel.com/platform/client/SecurityAdministration/2004/01"/></SOAP-ENV:Body></SOAP-ENV:Envelope>' \
    "http://$1:16992/SecurityAdministrationService"
}
check "AMT 8.1 answers legacy SOAP GetCoreVersion" bash -c "$(declare -f soap_core_version); soap_core_version $NET.8 | grep -q '<sai:Version>8.1.40</sai:Version>'"
check "AMT 8.1 refuses a TLS 1.2 client (its firmware speaks TLS 1.0/1.1 only)" \
  bash -c "! openssl s_client -connect $NET.8:16993 -tls1_2 </dev/null >/dev/null 2>&1"

mkdir -p "$T/site"
cat >"$T/site/site.json" <<JSON
{
  "manifest_version": 1,
  "site": { "name": "e2e-legacy", "service_point_fqdn": "oob.contoso.com", "dns_suffix": "contoso.com" },
  "plugin_path": ["$PLUGINS"],
  "plugins": {
    "amt": {"plugin": "amt-transport", "config": {"legacy_tls": true}},
    "lab-ca": {"plugin": "ca-local", "config": {"crl_listen": "$NET.250:8080"}},
    "creds": {"plugin": "credstore-file"},
    "dot1x": {"plugin": "radius-8021x"}
  },
  "credentials": {"store": "creds", "mebx_password": "site/mebx"},
  "certificates": {"web_server": {"ca": "lab-ca", "template": "AMTWebServer", "key_source": "auto"}},
  "provisioning_certificate": {"certificate": "$pki/chain.pem", "key": "$pki/prov.key"},
  "amt": {"transport": "amt", "mebx_password_policy": "if-default",
          "serial_over_lan": true, "ide_redirection": false, "ping": true},
  "ieee8021x": {
    "plugin": "dot1x",
    "wired": {"name": "lan", "eap": "eap-tls", "server_ca": "$pki/root.pem",
              "server_name": "radius.contoso.com", "client_certificate": {"ca": "lab-ca"}}
  }
}
JSON
"$AMTPROV" -m "$T/site/site.json" db init >/dev/null
MEBX='Mebx!Legacy8'
expect_rc 0 "the MEBx password is stored as a credential" \
  "$AMTPROV" -m "$T/site/site.json" cred set site/mebx --stdin <<<"$MEBX"
ALL="pc8 pc6 pc60 pc10"
for id in $ALL; do
  "$AMTSIM" agent --state-dir "$T/sim" --device "$id" >"$T/$id.agent.json" 2>>"$T/agent.err"
done
# pc8's firmware still carries a factory host/domain name; its OS reports the real FQDN.
python3 - "$T/pc8.agent.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); a["fqdn"] = "pc8.contoso.com"; json.dump(a, open(sys.argv[1], "w"))
PY
check "R-PROV-02/03: the legacy devices register as their agents report them" bash -c "
  for id in $ALL; do '$AMTPROV' -m '$T/site/site.json' device add --from-json '$T/'\$id.agent.json >/dev/null || exit 1; done"

expect_rc 0 "amtprovd provisions the legacy fleet" "$AMTPROVD" -m "$T/site/site.json" --once=120 2>"$T/amtprovd.log"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
"$AMTPROV" -m "$T/site/site.json" --json device list >"$T/devices.json"
check "every legacy device is PROVISIONED" \
  python3 -c 'import json,sys; s=[x["state"] for x in json.load(open(sys.argv[1]))]; print(s) if set(s)!={"PROVISIONED"} else None; assert set(s)=={"PROVISIONED"} and len(s)==4' "$T/devices.json"
grep -E "FAILED|error" "$T/amtprovd.log" | head -5 >&2

for id in $ALL; do "$AMTSIM" dump --control "$T/sim/control.sock" "$id" >"$T/$id.dump.json"; done
audit_has() { # device, text: the device's own audit shows the step happened
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; assert any(sys.argv[2] in e["event"] for e in a), sys.argv[2]' "$T/$1.dump.json" "$2"
}
audit_lacks() {
  ! audit_has "$@" 2>/dev/null
}
for id in pc8 pc6 pc60; do
  check "R-PROV-07: $id accepted the provisioning certificate over TLS < 1.2" audit_has "$id" "client certificate accepted"
  check "R-PROV-10 (1): $id's time was set through legacy SOAP" audit_has "$id" "legacy SOAP SetHighAccuracyTimeSynch: StatusCode 0"
  check "R-PROV-10 (2): $id's host name was set through legacy SOAP" audit_has "$id" "legacy SOAP SetHostName: StatusCode 0"
  check "R-PROV-10 (2): $id's domain name was set through legacy SOAP" audit_has "$id" "legacy SOAP SetDomainName: StatusCode 0"
  check "R-PROV-10 (4): $id's admin password was set through legacy SOAP" audit_has "$id" "legacy SOAP SetAdminAclEntry: StatusCode 0"
  check "R-PROV-10 (5): $id's MEBx password was set (policy if-default)" audit_has "$id" "legacy SOAP SetMEBxPassword: StatusCode 0"
  check "R-PROV-10 (6): $id committed through legacy SOAP" audit_has "$id" "legacy SOAP CommitChanges: StatusCode 0"
  check "R-PROV-10: $id's first stage used no WS-Man write" audit_lacks "$id" "SetAdminAclEntryEx"
  check "R-PROV-11 (2): $id's second stage ran over WS-Man (SOL on, IDER off)" audit_has "$id" "SOL on, IDER off"
done
# Keys (R-PROV-06, issue 17 item 12): inside AMT from 6.2, made by amtprov on 6.0.
for id in pc8 pc6; do
  check "R-PROV-06: $id (AMT >= 6.2) generated its web server key inside AMT" audit_has "$id" "GenerateKeyPair: key handle"
  check "R-PROV-06: ... and signed the request with it (GeneratePKCS10RequestEx)" audit_has "$id" "GeneratePKCS10RequestEx: key handle"
  check "R-PROV-10 (3): $id's certificate went in over WS-Man, without a key from amtprov" audit_lacks "$id" "SetTLSKeyAndCertificate"
  check "R-PROV-10 (3): $id's TLS credential context was created over WS-Man" audit_has "$id" "TLS credential context: certificate handle"
  check "R-PROV-06: no key of $id's left amtprov" audit_lacks "$id" "AddKey: key handle"
done
check "R-PROV-10 (3): pc60 (AMT 6.0) got amtprov's key and certificate in one legacy call" audit_has pc60 "legacy SOAP SetTLSKeyAndCertificate: StatusCode 0"
check "R-PROV-10 (3): pc60's TLS was switched on through legacy SOAP" audit_has pc60 "legacy SOAP SetTlsEnabled: StatusCode 0"
check "R-PROV-06: pc60 was never asked for GenerateKeyPair, which AMT 6.0 lacks" audit_lacks pc60 "GenerateKeyPair"
check "R-PROV-06: status 8125 names pc60, its AMT version and the missing GenerateKeyPair" \
  grep -qE "\[pc60\.contoso\.com\] status 8125 FIRMWARE_FEATURE_MISSING: .*AMT 6.0.30 cannot generate keys inside AMT \(GenerateKeyPair" "$T/amtprovd.log"
check "R-PROV-06: a device that can generate keys gets no such status" bash -c "! grep -E '\[(pc8|pc6|pc10)\.contoso\.com\] status 8125 ' '$T/amtprovd.log'"
check "R-PROV-10 (6): every device is post-provisioning" \
  python3 -c 'import json,sys; assert all(json.load(open(f))["provisioning_state"]=="post" for f in sys.argv[1:])' "$T"/pc8.dump.json "$T"/pc6.dump.json "$T"/pc60.dump.json "$T"/pc10.dump.json
check "R-PROV-10 (1): pc8's clock (a day behind) is now right" python3 - "$T/pc8.dump.json" <<'PY'
import json, sys
assert abs(json.load(open(sys.argv[1]))["clock_offset"]) <= 5
PY
check "R-PROV-10 (2): host name and domain match the device records" \
  python3 -c 'import json,sys; d=[json.load(open(f)) for f in sys.argv[1:]]; assert sorted(x["host_name"]+"."+x["domain_name"] for x in d)==["pc6.contoso.com","pc8.contoso.com"], [x["host_name"]+"."+x["domain_name"] for x in d]' "$T"/pc8.dump.json "$T"/pc6.dump.json
"$AMTPROV" -m "$T/site/site.json" --json cert list --purpose web-server >"$T/certs.json"
check "R-PROV-10 (3): TLS is on with the certificate amtprov recorded, key held by the device" python3 - "$T/certs.json" "$T"/pc8.dump.json "$T"/pc6.dump.json "$T"/pc60.dump.json "$T"/pc10.dump.json <<'PY'
import base64, hashlib, json, sys
recorded = {c["sha256"].upper() for c in json.load(open(sys.argv[1]))}
for f in sys.argv[2:]:
    d = json.load(open(f))
    t = d["tls_remote"]
    assert t["enabled"] and t["cert_handle"], (f, t)
    cert = [c for c in d["certificates"] if c.get("handle") == t["cert_handle"]][0]
    der = base64.b64decode(cert["der"]) if "der" in cert else base64.b64decode(
        "".join(l for l in cert["pem"].splitlines() if "-----" not in l))
    assert hashlib.sha256(der).hexdigest().upper() in recorded, f
    assert len(d["keys"]) >= 1, f
PY
check "R-PROV-10 (3): pc8 serves that certificate on 16993 after the commit" bash -c "
  echo | openssl s_client -connect $NET.8:16993 -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>/dev/null \
    | openssl x509 -noout -subject | grep -q 'pc8.contoso.com'"
check "R-PROV-10 (4): the empty admin password no longer works" bash -c "
  code=\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --digest -u admin: -H 'Content-Type: text/xml' --data '<x/>' http://$NET.6:16992/SecurityAdministrationService)
  [ \"\$code\" = 401 ]"
# amtsim writes the devices' state files within a second of a change: the checks wait for it.
cat >"$T/admin_changed.py" <<'PY'
import hashlib, json, sys
for id in ("pc8", "pc6", "pc60", "pc10"):
    s = json.load(open(f"{sys.argv[1]}/{id}.json"))
    empty = hashlib.md5(f'{s["admin_user"]}:{s["realm"]}:'.encode()).hexdigest()
    assert s["admin_ha1"] != empty, id
PY
check "R-PROV-10 (4): the admin digest changed on the devices" wait_for 10 python3 "$T/admin_changed.py" "$T/sim"
cat >"$T/mebx_set.py" <<'PY'
import json, sys
for id in ("pc8", "pc6", "pc60"):
    s = json.load(open(f"{sys.argv[1]}/{id}.json"))
    assert s["mebx_password"] == sys.argv[2] and not s["mebx_password_default"], id
PY
check "R-PROV-10 (5): the MEBx password on the devices is the site's" \
  wait_for 10 python3 "$T/mebx_set.py" "$T/sim" "$MEBX"
# 802.1X below AMT 11 (issue 17 item 12): AMT_8021XProfile, certificates by reference.
"$AMTPROV" -m "$T/site/site.json" --json cert list --purpose 8021x-client >"$T/certs8021x.json"
for id in $ALL; do
  check "R-8021X-04: $id's wired profile was written as AMT_8021XProfile with its client certificate and RADIUS root" \
    audit_has "$id" "AMT_8021XProfile Put: enabled, protocol 0, client certificate"
  check "R-8021X: $id was not sent IPS_IEEE8021xSettings (AMT < 11)" audit_lacks "$id" "IPS_IEEE8021xSettings"
done
check "R-8021X-04: each device's profile is bound to the client certificate amtprov recorded for it, through AMT_8021xCredentialContext" \
  python3 - "$T/certs8021x.json" "$T" $ALL <<'PY'
import base64, hashlib, json, sys
certs = {c["sha256"].upper(): c for c in json.load(open(sys.argv[1])) if c["status"] == "active"}
for id in sys.argv[3:]:
    d = json.load(open(f"{sys.argv[2]}/{id}.dump.json"))
    x = d["ieee8021x"]
    assert x["enabled"] and x["protocol"] == 0 and x["client_cert_handle"] and x["root_cert_handle"], (id, x)
    cert = [c for c in d["certificates"] if c.get("handle") == x["client_cert_handle"]][0]
    der = base64.b64decode(cert["der"]) if "der" in cert else base64.b64decode(
        "".join(l for l in cert["pem"].splitlines() if "-----" not in l))
    rec = certs.get(hashlib.sha256(der).hexdigest().upper())
    assert rec and f"{id}.contoso.com" in rec["subject"] and rec["profile"] == "lan", (id, rec)
    ctx = {(c["type"], c["cert_handle"], c["providing"]) for c in d["credential_contexts"]}
    prof = "Intel(r) AMT 802.1x Profile 0"
    assert ("802.1X", x["client_cert_handle"], prof) in ctx and ("802.1X", x["root_cert_handle"], prof) in ctx, (id, ctx)
PY
for id in pc8 pc6; do
  check "R-PROV-06: $id's 802.1X key was generated inside AMT too (two GenerateKeyPair)" \
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audit"]; n=sum("GenerateKeyPair: key handle" in e["event"] for e in a); assert n>=2, n' "$T/$id.dump.json"
done
check "R-PROV-06: pc60's 802.1X key was made by amtprov and added (AddKey)" audit_has pc60 "AddKey: key handle"
"$AMTPROV" -m "$T/site/site.json" --json cred list >"$T/creds.json"
check "R-PROV-12: each device's admin password is a credential-store record" \
  python3 -c 'import json,sys; n=json.dumps(json.load(open(sys.argv[1]))); assert "device/pc8.contoso.com/admin" in n and "device/pc6.contoso.com/admin" in n and ".pending" not in n, n' "$T/creds.json"
check "R-PROV-12: the credential store holds no clear-text secret" \
  bash -c "f=\$(find '$T/site/state/plugins/creds' -type f | head -1); test -s \"\$f\" && ! grep -qaF '$MEBX' \"\$f\""
check "no secret in amtprovd's log" bash -c "! grep -q 'PRIVATE KEY' '$T/amtprovd.log' && ! grep -qF '$MEBX' '$T/amtprovd.log'"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"

finish
