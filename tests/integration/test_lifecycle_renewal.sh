#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# "Evaluate Provisioned AMT Computer Certificates" (R-WS-03, R-WS-04, R-REV-02c), on a test
# clock (no sleeping): a web server certificate at 43 days is left alone; at 42 days it is
# renewed (new key generated inside AMT, certificate installed, TLS context replaced,
# committed, the superseded certificate and key deleted from AMT's store), the
# old serial is on ca-local's CRL with reason Superseded and recorded revoked, and the
# device (amtsim) serves the new certificate. A device reached over wireless is not
# renewed: it is reported (8206) and retried at the next run.
TEST_NAME=lifecycle_renewal
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lifecycle_lib.sh"

make_provisioning_pki
check "amtsim serves two devices" start_fleet pc1 pc2
write_site '"maintenance": {"evaluate_certificates": {"interval_days": 7, "renew_within_days": 42}}'
check "both devices register" register pc1 pc2
check "amtprovd provisions them" daemon_once
check "both are PROVISIONED" bash -c "[ \"\$(state_of pc1.contoso.com)\$(state_of pc2.contoso.com)\" = PROVISIONEDPROVISIONED ]"

old1=$(cert_field pc1.contoso.com active serial); old1_sha=$(cert_field pc1.contoso.com active sha256)
old2=$(cert_field pc2.contoso.com active serial)
na1=$(cert_field pc1.contoso.com active not_after); na2=$(cert_field pc2.contoso.com active not_after)
check "one active web server certificate each" test -n "$old1" -a -n "$old2"
check "amtsim serves the recorded certificate before renewal" bash -c "[ \"\$(served_sha256 $NET.1)\" = '$old1_sha' ]"
first=$na1; [ "$na2" -lt "$first" ] && first=$na2
last=$na1; [ "$na2" -gt "$last" ] && last=$na2

# pc2 is now reached over wireless only (R-WS-04): no wired address on record.
sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "UPDATE devices SET wireless_capable = 1, wired_ip = '' WHERE fqdn = 'pc2.contoso.com'"

# 43 days left: nothing to renew.
set_clock $((first - 43 * 86400))
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "R-WS-03: the task runs at 43 days" daemon_once
check "R-WS-03: at 43 days the certificate is left alone" bash -c "[ \"\$(cert_field pc1.contoso.com active serial)\" = '$old1' ]"
"$AMTPROV" -m "$SITE" --json task list >"$T/tasks.json"
check "task list records the run, its result and the next run (7 days later)" python3 - "$T/tasks.json" "$(now)" <<'PY'
import json, sys, time
t = {x["name"]: x for x in json.load(open(sys.argv[1]))}["evaluate-certificates"]
iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))  # --json times: ISO 8601
now = int(sys.argv[2])
assert t["last_run"] == iso(now) and t["last_result"] == "OK" and t["next_run"] == iso(now + 7 * 86400), t
assert t["title"] == "Evaluate Provisioned AMT Computer Certificates" and not t["requested"], t
assert "0 due for renewal" in t["last_detail"], t
PY

# 42 days left: renewed (on demand: the weekly run is not due yet).
set_clock $((last - 42 * 86400))
"$AMTPROV" -m "$SITE" task run evaluate-certificates >/dev/null
check "R-WS-03: amtprovd runs the requested task and renews" daemon_once
check "the renewed device is PROVISIONED again" bash -c "[ \"\$(state_of pc1.contoso.com)\" = PROVISIONED ]"
new1=$(cert_field pc1.contoso.com active serial); new1_sha=$(cert_field pc1.contoso.com active sha256)
check "R-WS-03: at 42 days pc1 has a new active certificate" bash -c "[ -n '$new1' ] && [ '$new1' != '$old1' ]"
check "R-REV-02c: the old certificate is recorded revoked, reason Superseded (4)" python3 - <<PY
import json, subprocess
c = json.loads(subprocess.check_output(["$AMTPROV", "-m", "$SITE", "--json", "cert", "list", "--device", "pc1.contoso.com", "--status", "revoked"]))
assert [x["serial"] for x in c] == ["$old1"] and c[0]["revocation_reason"] == 4, c
PY
check "R-REV-02c: the old serial is on ca-local's CRL with reason Superseded" crl_has "$old1" "Superseded"
check "the new serial is not on the CRL" bash -c "! crl_has '$new1' ''"
check "R-WS-03: amtsim now serves the new certificate (openssl s_client)" bash -c "[ \"\$(served_sha256 $NET.1)\" = '$new1_sha' ]"
"$AMTSIM" dump --control "$T/sim/control.sock" pc1 >"$T/pc1.dump.json"
check "AMT has exactly one TLS credential context, bound to the new certificate" python3 - "$T/pc1.dump.json" "$new1_sha" <<'PY'
import base64, hashlib, json, sys
d = json.load(open(sys.argv[1]))
h = d["tls_remote"]["cert_handle"]
cert = [c for c in d["certificates"] if c.get("handle") == h][0]
der = base64.b64decode(cert["der"]) if "der" in cert else base64.b64decode("".join(l for l in cert["pem"].splitlines() if "-----" not in l))
assert hashlib.sha256(der).hexdigest().upper() == sys.argv[2], "TLS bound to another certificate"
assert d["tls_remote"]["enabled"]
assert sum(1 for e in d["audit"] if "TLS credential context removed" in e["event"]) == 1, "old context not deleted once"
PY
check "R-PROV-06: the renewal key was generated inside AMT (key_source auto on AMT 12), no AddKey" python3 - "$T/pc1.dump.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
count = lambda t: sum(t in e["event"] for e in d["audit"])
assert count("GenerateKeyPair: key handle") == 2 and count("AddKey") == 0, d["audit"]
PY
check "the superseded certificate and key pair are gone from AMT's store" python3 - "$T/pc1.dump.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["certificates"]) == 1 and len(d["keys"]) == 1, (d["certificates"], d["keys"])
PY
check "status 8205 (certificate renewed) for pc1" bash -c "'$AMTPROV' -m '$SITE' status --id 8205 --device pc1.contoso.com | grep -q 'renewed'"

# R-WS-04: pc2 (wireless) keeps its certificate; reported, and retried at the next run.
check "R-WS-04: pc2 over wireless is not renewed" bash -c "[ \"\$(cert_field pc2.contoso.com active serial)\" = '$old2' ] && [ \"\$(state_of pc2.contoso.com)\" = PROVISIONED ]"
check "R-WS-04: status 8206 reports it" bash -c "'$AMTPROV' -m '$SITE' status --id 8206 --device pc2.contoso.com | grep -q 'wireless'"
set_clock $((last - 35 * 86400))
check "the next weekly run (schedule, no request) runs" daemon_once
check "R-WS-04: retried a week later and reported again" bash -c "[ \"\$('$AMTPROV' -m '$SITE' --json status --id 8206 --device pc2.contoso.com | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')\" = 2 ]"
check "R-WS-03: the renewed pc1 is not renewed again" bash -c "[ \"\$(cert_field pc1.contoso.com active serial)\" = '$new1' ]"
check "amtprovd warned loudly about the test clock" grep -q "TEST CLOCK" "$T/amtprovd.1.log"
check "no sanitizer report (amtsim)" no_sanitizer_reports "$T/amtsim.log"
finish
