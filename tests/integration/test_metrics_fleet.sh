#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GET /metrics (docs/operations.md "Monitoring", issue 16): amtprovd provisions a simulated
# fleet through the real plugins, two devices failing for real reasons (R-PC-04 no root
# hash, R-PROV-05 wrong OTP); the scrape, parsed by the Prometheus client library's own
# parser, says what the site database says: devices by state (every step recorded,
# R-PROV-13), outcomes by reason, web server certificates by days to expiry (R-WS-01) and
# issued by the CA, AMT commits, step histograms. Only an administrator token or a
# monitoring token (api.monitor_tokens) reads it; a monitoring token reads nothing else.
# 'amtprov device list --watch' follows the same run: its readings end on the database's
# counts, with every outcome counted.
# The lease gauges count device and task leases by host id as the database holds them (two
# other hosts' leases, one live and one run out, are written in for the scrape). The
# separate metrics listener (monitoring.metrics_listen, plain HTTP on a loopback address)
# serves GET /metrics and nothing else, behind its own token; after a reload without
# monitoring.metrics_tokens it serves the loopback address unauthenticated.
TEST_NAME=metrics_fleet
. "$(dirname "$0")/lib.sh"
METRICS_LISTENER=1

. "$(dirname "$0")/monitoring_lib.sh"

# amtprov device list --watch (issue 16 item 8), from before amtprovd starts until the
# fleet has settled: one JSON reading per line.
"$AMTPROV" -m "$M" --json device list --watch=0.2 >"$T/watch.jsonl" 2>"$T/watch.err" &
WATCH_PID=$!
PIDS+=("$WATCH_PID")
AMTPROV_HOST_ID=mhost start_daemon "$T/amtprovd.log" -m "$M" -l debug
check "amtprovd serves the API" wait_for 20 up
check "the fleet settles (PROVISIONED or FAILED)" wait_for 120 fleet_settled

watch_settled() { tail -n 1 "$T/watch.jsonl" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["on_the_way"] == 0 and d["states"].get("PROVISIONED") == 4' ; }
check "the watch sees the fleet settle" wait_for 30 watch_settled
kill "$WATCH_PID"; wait "$WATCH_PID" 2>/dev/null
"$AMTPROV" -m "$M" --json device list >"$T/devices-now.json"
check "the watch's last reading is the database's count by state, and it counted every outcome" \
  python3 - "$T/watch.jsonl" "$T/devices-now.json" <<'PY'
import collections, json, sys
readings = [json.loads(l) for l in open(sys.argv[1])]
db = collections.Counter(d["state"] for d in json.load(open(sys.argv[2])))
last = readings[-1]
assert last["states"] == dict(db), (last["states"], db)
assert last["total"] == 6 and last["provisioned"] == 4 and last["failed"] == 2, last
assert readings[0]["provisioned"] == 0, readings[0]
got = [r["provisioned"] for r in readings]
assert got == sorted(got), got
assert all(r["provisioned_per_second"] >= 0 for r in readings)
PY
expect_rc 0 "device list --watch --count 2 prints two readings" run_cli "$O" "$E" -m "$M" device list --watch=0.1 --count 2
check "... each with the count by state" test "$(grep -c '^  PROVISIONED  *4 ' "$O")" = 2
check "... and the throughput line" grep -q 'provisioned 0, failed 0 since the watch began' "$O"
expect_rc 2 "--count without --watch is a usage error" run_cli "$O" "$E" -m "$M" device list --count 2
expect_rc 2 "--watch=0 is a usage error" run_cli "$O" "$E" -m "$M" device list --watch=0
expect_rc 2 "--watch with --state is a usage error" run_cli "$O" "$E" -m "$M" device list --watch --state failed

c() { curl -s -o "$O" -D "$T/headers" -w '%{http_code}' --cacert "$pki/api.pem" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got $1, want $2: $(head -c 300 "$O")" >&2; return 1; }; }
check "GET /metrics without a credential is 401" is "$(c "$URL/metrics")" 401
"$AMTPROV" -m "$M" enroll-secret --fqdn pc1.contoso.com >"$T/pc1.secret"
check "GET /metrics with a host's enrollment secret is 403" \
  is "$(c -H "Authorization: Bearer $(cat "$T/pc1.secret")" "$URL/metrics")" 403
check "POST /metrics is 405" is "$(c -X POST -H "Authorization: Bearer $TOKEN" "$URL/metrics")" 405
check "GET /metrics with the administrator token is 200" \
  is "$(c -H "Authorization: Bearer $TOKEN" "$URL/metrics")" 200
cp "$O" "$T/metrics.txt"
check "the content type is the exposition format 0.0.4" \
  grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers"
# A monitoring token (api.monitor_tokens) reads the metrics and nothing else.
MON=(-H "Authorization: Bearer $MONITOR")
check "GET /metrics with a monitoring token is 200" is "$(c "${MON[@]}" "$URL/metrics")" 200
check "... the same families" bash -c "diff <(grep '^# TYPE' '$O') <(grep '^# TYPE' '$T/metrics.txt')"
check "a monitoring token does not read a device (403)" is "$(c "${MON[@]}" "$URL/v1/devices/pc1.contoso.com")" 403
check "... nor register one (403)" is "$(c -X POST -H 'Content-Type: application/json' "${MON[@]}" \
  --data-binary '{"fqdn":"pc9.contoso.com","uuid":"11111111-2222-4333-8444-000000000009","amt_version":"11.8.50"}' "$URL/v1/devices")" 403
check "... nor block one (403)" is "$(c -X POST "${MON[@]}" "$URL/v1/devices/pc1.contoso.com/block")" 403
check "... and nothing changed" bash -c "'$AMTPROV' -m '$M' device show pc1.contoso.com | grep -q PROVISIONED && ! '$AMTPROV' -m '$M' device show pc9.contoso.com >/dev/null 2>&1"
check "the start line counts the monitoring token" grep -q "1 administrator token, 1 monitoring token" "$T/amtprovd.log"

# Other hosts' leases as a shared database would hold them: h-live works on pc5 and runs
# the evaluate task; h-dead's lease on pc6 ran out (it died). Written once amtprovd's
# scheduler has made the task's record and run it (its first tick creates the row: before
# that the UPDATE would find no row), and checked to have taken.
ev_ran() { [ "$(sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "SELECT count(*) FROM maintenance_tasks WHERE name = 'evaluate-certificates' AND last_run > 0 AND lease_owner = ''")" = 1 ]; }
check "the scheduler ran evaluate-certificates once" wait_for 20 ev_ran
sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "UPDATE devices SET lease_owner = 'h-live', lease_until = strftime('%s','now') + 3600 WHERE fqdn = 'pc5.contoso.com'; UPDATE devices SET lease_owner = 'h-dead', lease_until = 1 WHERE fqdn = 'pc6.contoso.com'; UPDATE maintenance_tasks SET lease_owner = 'h-live', lease_until = strftime('%s','now') + 3600 WHERE name = 'evaluate-certificates'"
check "the other hosts' leases are in the database" test "$(sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "SELECT (SELECT count(*) FROM devices WHERE lease_owner IN ('h-live', 'h-dead')) || '/' || (SELECT count(*) FROM maintenance_tasks WHERE lease_owner = 'h-live')")" = 2/1
check "GET /metrics with the administrator token is 200 (with the leases)" \
  is "$(c -H "Authorization: Bearer $TOKEN" "$URL/metrics")" 200
cp "$O" "$T/metrics.txt"
check "the lease gauges count device and task leases by host" /usr/bin/python3 - "$T/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
dev = {(s.labels["host"], s.labels["lease"]): s.value for s in fams["amtprov_device_leases"].samples}
assert dev == {("h-live", "live"): 1, ("h-live", "expired"): 0, ("h-dead", "live"): 0, ("h-dead", "expired"): 1}, dev
tasks = {s.labels["host"]: s.value for s in fams["amtprov_task_leases"].samples}
assert tasks == {"h-live": 1}, tasks
PY

# The separate metrics listener: GET /metrics only, behind its own token.
m() { curl -s -o "$O" -D "$T/headers" -w '%{http_code}' "$@"; }
check "metrics listener: GET /metrics without a token is 401" is "$(m "$METRICS_URL")" 401
check "... with the administrator's API token is 401 (its own tokens only)" \
  is "$(m -H "Authorization: Bearer $TOKEN" "$METRICS_URL")" 401
check "... with its token is 200" is "$(m -H "Authorization: Bearer $METRICS_TOKEN" "$METRICS_URL")" 200
check "... in the exposition format 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers"
check "... with the same families as the API's" bash -c "diff <(grep '^# TYPE' '$O') <(grep '^# TYPE' '$T/metrics.txt')"
check "... which the Prometheus parser reads, leases included" /usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
f = {x.name for x in text_string_to_metric_families(open(sys.argv[1]).read())}
assert {"amtprov_devices", "amtprov_device_leases", "amtprov_task_leases"} <= f, f' "$O"
check "... nothing else is served there (404)" \
  is "$(m -H "Authorization: Bearer $METRICS_TOKEN" "${METRICS_URL%/metrics}/v1/devices/pc1.contoso.com")" 404
check "... POST /metrics is 405" is "$(m -X POST -H "Authorization: Bearer $METRICS_TOKEN" "$METRICS_URL")" 405
check "the token is not logged" bash -c "! grep -q '$METRICS_TOKEN' '$T/amtprovd.log'"
# Without metrics_tokens (a loopback address): unauthenticated after a reload.
python3 - "$M" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); del m["monitoring"]["metrics_tokens"]
json.dump(m, open(sys.argv[1], "w"))
PY
kill -HUP "$DAEMON_PID"
open_metrics() { [ "$(m "$METRICS_URL")" = 200 ]; }
check "after a reload without metrics_tokens the loopback listener needs no token" wait_for 20 open_metrics
check "... and says so at start" grep -q 'GET /metrics on http://.*(unauthenticated, loopback)' "$T/amtprovd.log"

"$AMTPROV" -m "$M" --json device list >"$T/devices.json"
"$AMTPROV" -m "$M" --json cert list >"$T/certs.json"
check "the scrape parses and matches the database" /usr/bin/python3 - "$T/metrics.txt" "$T/devices.json" "$T/certs.json" "$AMTPROV_SOURCE_DIR/include/amtprov/error.h" <<'PY'
import collections, datetime, json, re, sys, time
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
devices = json.load(open(sys.argv[2]))
certs = json.load(open(sys.argv[3]))
fams = {f.name: f for f in text_string_to_metric_families(text)}
def samples(name, suffix=""):
    fam = fams[name]
    return [(s.labels, s.value) for s in fam.samples if s.name == name + suffix]
def value(name, suffix="", **labels):
    got = [v for l, v in samples(name, suffix) if all(l.get(k) == v2 for k, v2 in labels.items())]
    return sum(got)
errors = []
def want(what, got, expected):
    if got != expected:
        errors.append("%s: scraped %r, database %r" % (what, got, expected))

# Devices by state (a gauge): every state present, equal to the database's count.
by_state = collections.Counter(d["state"] for d in devices)
want("states known", set(by_state) - {l["state"] for l, _ in samples("amtprov_devices")}, set())
for l, v in samples("amtprov_devices"):
    want("amtprov_devices{state=%s}" % l["state"], v, by_state.get(l["state"], 0))
want("four devices provisioned", by_state["PROVISIONED"], 4)

# Outcomes: one per device, failures by the reason the database holds.
want("provisioned outcomes", value("amtprov_provisioning_outcomes", "_total", outcome="provisioned"), 4)
failed = collections.Counter(d["last_error_code"] for d in devices if d["state"] == "FAILED")
want("two failed", sum(failed.values()), 2)
names = {l["reason"]: v for l, v in samples("amtprov_provisioning_outcomes", "_total") if l["outcome"] == "failed"}
want("failure reasons", sum(names.values()), 2)
# The reason label is the status name of each device's last_error_code (E_VERIFY ...).
status_name = {int(v): k for k, v in re.findall(r"AMTPROV_(E_[A-Z_]+) = (\d+)", open(sys.argv[4]).read())}
for code, n in failed.items():
    want("failed with %s" % status_name[code], names.get(status_name[code], 0), n)

# Certificates: active web server certificates by days to expiry, as cert list says.
now = time.time()
active = [c for c in certs if c["status"] == "active" and c["purpose"] == "web-server"]
want("active web server certificates", len(active), 4)
groups = [("expired", 0), ("7", 7), ("30", 30), ("40", 40), ("90", 90), ("365", 365), ("later", None)]
expect = collections.Counter()
for c in active:
    for label, days in groups:
        # --json times are ISO 8601 UTC ("2027-12-07T15:55:21Z")
        na = datetime.datetime.strptime(c["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        if days is None or na - now < days * 86400:
            expect[label] += 1
            break
for label, _ in groups:
    want("web-server certificates within %s" % label,
         value("amtprov_certificates", purpose="web-server", expires_within_days=label), expect[label])
want("revocation queue", value("amtprov_revocation_queue_length"),
     sum(1 for c in certs if c["status"] == "revoke-pending"))

# The CA issued one certificate per provisioned device; AMT committed each of them.
want("CA submits answered ISSUED",
     value("amtprov_ca_call_duration_seconds", "_count", instance="lab-ca", op="submit", answer="ISSUED"),
     len([c for c in certs if c["purpose"] == "web-server"]))
want("AMT commits", value("amtprov_amt_calls", "_total", op="commit", result="OK"), 4)
# Every device was asked its setup state (the one without the root hash refuses the TLS
# handshake: that call is counted with its result too).
want("setup state reads", value("amtprov_amt_calls", "_total", op="get_setup_state"), 6)

# Step histograms: buckets cumulative, +Inf equal to _count; each provisioned device ran
# its first stage once.
want("first stages", value("amtprov_step_duration_seconds", "_count", step="NEED_FIRST_STAGE", outcome="ok"), 4)
series = collections.defaultdict(list)
for l, v in samples("amtprov_step_duration_seconds", "_bucket"):
    key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
    series[key].append((float(l["le"]), v))
for key, b in series.items():
    b.sort()
    if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
        errors.append("buckets not cumulative: %r" % (key,))
    cnt = value("amtprov_step_duration_seconds", "_count", **dict(key))
    if b[-1][0] != float("inf") or b[-1][1] != cnt:
        errors.append("+Inf bucket is not _count: %r" % (key,))
for e in errors:
    print(e, file=sys.stderr)
assert not errors
PY
check "every family has HELP and TYPE lines" python3 - "$T/metrics.txt" <<'PY'
import re, sys
typed = set()
for line in open(sys.argv[1]):
    m = re.match(r"# TYPE (\S+) (counter|gauge|histogram)$", line)
    if m:
        typed.add(m.group(1))
    elif not line.startswith("#"):
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, line
PY
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
finish
