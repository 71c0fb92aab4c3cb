#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The status page (GET /, docs/operations.md "Monitoring", issue 16 item 7), opened in
# headless Chromium through a one-time login link: after amtprovd provisions a simulated
# fleet (two devices failing for real reasons, R-PC-04 and R-PROV-05), the rendered page
# shows the devices by state as the database holds them (R-PROV-13) and each failed device
# with its reason; a failure text holding <script> and an <img onerror> is shown as text and
# runs nothing. The page loads nothing from elsewhere under a strict CSP; the session cookie
# reads, never writes; the link works once. A screenshot is kept as a CI artifact.
TEST_NAME=status_page
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/monitoring_lib.sh"

CHROMIUM=$(command -v chromium || true)
check "chromium is installed (scripts/install-deps.sh all)" test -n "$CHROMIUM"
start_daemon "$T/amtprovd.log" -m "$M" -l debug
check "amtprovd serves the API" wait_for 20 up
check "the fleet settles (PROVISIONED or FAILED)" wait_for 120 fleet_settled

# A failure text as a hostile device or peer could make it: markup that would run if the
# page ever put it into the document as HTML. (Written into the stored reason directly: no
# component of ours produces it.)
XSS='<script>document.title="pwned"</script><img src=x onerror="document.title=1">'
sqlite3 -cmd '.timeout 5000' "$T/site/state/site.db" "UPDATE devices SET last_error = '$XSS ' || last_error WHERE fqdn = 'pc6.contoso.com'"
check "the hostile reason is stored" bash -c "'$AMTPROV' -m '$M' device show pc6.contoso.com | grep -qF '<script>'"

c() { curl -s -o "$O" -D "$T/headers" -w '%{http_code}' --cacert "$pki/api.pem" "$@"; }
is() { [ "$1" = "$2" ] || { echo "got $1, want $2: $(head -c 300 "$O")" >&2; return 1; }; }
ADMIN=(-H "Authorization: Bearer $TOKEN")
check "GET / without a credential is 401" is "$(c "$URL/")" 401
check "GET /v1/status without a credential is 401" is "$(c "$URL/v1/status")" 401
check "a monitoring token does not open the page (403)" is "$(c -H "Authorization: Bearer $MONITOR" "$URL/")" 403
check "GET / with the administrator token is 200" is "$(c "${ADMIN[@]}" "$URL/")" 200
check "... HTML" grep -qi '^Content-Type: text/html; charset=utf-8' "$T/headers"
check "... under a strict CSP: nothing by default, script and style by hash, no inline allowance" \
  python3 - "$T/headers" <<'PY'
import sys
csp = [l.split(":", 1)[1].strip() for l in open(sys.argv[1]) if l.lower().startswith("content-security-policy:")]
assert len(csp) == 1, csp
d = dict((p.strip().split(" ", 1) + [""])[:2] for p in csp[0].split(";"))
assert d["default-src"] == "'none'" and d["connect-src"] == "'self'" and d["frame-ancestors"] == "'none'", d
assert d["script-src"].startswith("'sha256-") and d["style-src"].startswith("'sha256-"), d
assert "unsafe" not in csp[0] and "http" not in csp[0], csp
PY
check "... no external asset (no URL with a scheme or //host in the page)" \
  bash -c "! grep -qiE '(src|href)=|https?:|//[a-z]' '$O'"
check "GET /v1/status answers the fleet as JSON" is "$(c "${ADMIN[@]}" "$URL/v1/status")" 200
check "... the failure texts as they are stored (JSON strings)" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); f={x["fqdn"]: x for x in d["failures"]}; assert d["total"]==6 and d["states"]["PROVISIONED"]==4 and sys.argv[2] in f["pc6.contoso.com"]["reason"], d' "$O" "$XSS"
check "... its times in ISO 8601 UTC (null: never), as the CLI's --json (issue 17)" \
  python3 -c 'import json,re,sys; d=json.load(open(sys.argv[1])); iso=lambda v: isinstance(v,str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",v); assert iso(d["generated_at"]) and all(iso(f["state_since"]) for f in d["failures"]) and all(iso(c["not_after"]) for c in d["expiring"]) and all(t["last_run"] is None or iso(t["last_run"]) for t in d["tasks"]), d' "$O"
check "... and the answer matches the OpenAPI document" python3 "$AMTPROV_SOURCE_DIR/tests/integration/openapi_check.py" \
  "$AMTPROV_SOURCE_DIR/docs/api.openapi.yaml" GET /v1/status 200 "$O"

check "POST /v1/sessions with a monitoring token is 403" is "$(c -X POST -H "Authorization: Bearer $MONITOR" "$URL/v1/sessions")" 403
link() { c -X POST "${ADMIN[@]}" "$URL/v1/sessions" >/dev/null && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["login_url"])' "$O"; }
L1=$(link)
check "an administrator gets a one-time login link" bash -c "[[ '$L1' =~ ^/login\?t=[0-9a-f]{64}$ ]]"

# Chromium trusts exactly the API's certificate (its key's SPKI hash), and runs with its
# sandbox: as root it would need --no-sandbox, so it runs as nobody.
SPKI=$(openssl x509 -in "$pki/api.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
# Its home is a directory of its own that nobody can reach ($T is root's, 0700), removed at
# the end like $T.
B=$(mktemp -d "${TMPDIR:-/tmp}/amtprov-it-browser-XXXXXX")
trap 'rm -rf "$B"; cleanup' EXIT
chmod 777 "$B"
ART="$AMTPROV_BUILD_DIR/test-artifacts"; mkdir -p "$ART"
SHOT="$ART/status-page.png"; rm -f "$SHOT"
browser() { # ARGS...: headless chromium, as nobody when we are root
  local as=()
  [ "$(id -u)" = 0 ] && as=(runuser -u nobody --)
  timeout 120 "${as[@]}" env HOME="$B" "$CHROMIUM" --headless --user-data-dir="$B/profile" \
    --ignore-certificate-errors-spki-list="$SPKI" --virtual-time-budget=15000 \
    --disable-gpu --no-first-run "$@" 2>>"$T/chromium.log"
}
(cd "$B" && browser --dump-dom "$URL$L1") >"$T/dom.html"
check "Chromium renders the page (sandboxed)" grep -q '<h1>amtprov: <span id="site">metrics</span>' "$T/dom.html"
"$AMTPROV" -m "$M" --json device list >"$T/devices.json"
check "the page shows the devices by state as the database holds them" \
  python3 - "$T/dom.html" "$T/devices.json" <<'PY'
import collections, html.parser, json, sys
db = collections.Counter(d["state"] for d in json.load(open(sys.argv[2])))
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.rows = {}; s.cur = None; s.cells = []; s.tags = []
    def handle_starttag(s, tag, a):
        s.tags.append(tag)
        a = dict(a)
        if tag == "tr" and (a.get("id") or "").startswith("state-"):
            s.cur = a["id"][6:]; s.cells = []
    def handle_endtag(s, tag):
        if tag == "tr" and s.cur:
            s.rows[s.cur] = s.cells; s.cur = None
    def handle_data(s, d):
        if s.cur is not None and d.strip():
            s.cells.append(d.strip())
p = P(); p.feed(open(sys.argv[1]).read())
got = {k: int(v[1]) for k, v in p.rows.items()}
assert got == dict(db), (got, db)
assert got.get("PROVISIONED") == 4 and got.get("FAILED") == 2, got
PY
check "each failed device is shown with its reason and what to do" python3 - "$T/dom.html" "$T/devices.json" <<'PY'
import html, json, sys
dom = open(sys.argv[1]).read()
body = dom[dom.index('id="failures"'):]
for d in json.load(open(sys.argv[2])):
    if d["state"] == "FAILED":
        assert d["fqdn"] in body, d["fqdn"]
        assert html.escape(d["last_error"], quote=False) in body, d["last_error"]
# What to do follows the reason: pc5's firmware lacks the root (R-PC-04), pc6's OTP differs.
rows = body.split("<tr>")
pc5 = [r for r in rows if "pc5.contoso.com" in r][0]
pc6 = [r for r in rows if "pc6.contoso.com" in r][0]
assert "R-PC-04" in pc5 and "device retry" in pc5, pc5
assert "run the host agent again" in pc6 and "new OTP" in pc6, pc6
PY
check "the hostile reason is text: escaped in the DOM, no element made of it, nothing ran" \
  bash -c "grep -qF '&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;&lt;img src=x' '$T/dom.html' &&
           ! grep -qF '<img' '$T/dom.html' && [ \"\$(grep -c '<script' '$T/dom.html')\" = 1 ] &&
           grep -qF '<title>amtprov status</title>' '$T/dom.html'"
check "the certificates are on the expiry timeline" bash -c "grep -A1000 'id=\"expiring\"' '$T/dom.html' | grep -q 'web-server'"
check "the page shows the ISO times as dates (not 'Invalid Date' or epoch 1970)" \
  bash -c "grep -qE '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC' '$T/dom.html' && ! grep -qE 'Invalid|1970-01-01' '$T/dom.html'"
check "the maintenance tasks are listed" bash -c "grep -A1000 'id=\"tasks\"' '$T/dom.html' | grep -q 'revocation-queue'"
check "the page's script was not refused by its own CSP" bash -c "! grep -qi 'Content Security Policy' '$T/chromium.log'"

check "a used login link does not open a session again (401)" is "$(c "$URL$L1")" 401
L2=$(link)
check "a login link answers 303 to / with a Secure, HttpOnly, SameSite=Strict cookie" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -c '$T/jar' -D '$T/h2' --cacert '$pki/api.pem' '$URL$L2')\" = 303 ] &&
           grep -qi '^Set-Cookie: amtprov_session=[0-9a-f]\{64\}; Path=/; Max-Age=28800; Secure; HttpOnly; SameSite=Strict' '$T/h2' &&
           grep -qi '^Location: /' '$T/h2'"
check "the session reads the status" is "$(c -b "$T/jar" "$URL/v1/status")" 200
check "the session does not register a device (401)" is "$(c -b "$T/jar" -X POST -H 'Content-Type: application/json' \
  --data-binary '{"fqdn":"pc9.contoso.com","uuid":"11111111-2222-4333-8444-000000000009","amt_version":"11.8.50"}' "$URL/v1/devices")" 401
check "... nor block one (401)" is "$(c -b "$T/jar" -X POST "$URL/v1/devices/pc1.contoso.com/block")" 401
check "... nor read the metrics or a device (401)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -b '$T/jar' --cacert '$pki/api.pem' '$URL/metrics')\" = 401 ] &&
  [ \"\$(curl -s -o /dev/null -w '%{http_code}' -b '$T/jar' --cacert '$pki/api.pem' '$URL/v1/devices/pc1.contoso.com')\" = 401 ]"
SESSION=$(awk '$6 == "amtprov_session" {print $7}' "$T/jar")
check "no login link or session secret reaches the log" bash -c "[ -n '$SESSION' ] &&
  ! grep -qE '${L1#*=}|${L2#*=}|$SESSION' '$T/amtprovd.log'"

L3=$(link)
(cd "$B" && browser --screenshot="$B/shot.png" --window-size=1280,1600 "$URL$L3" >/dev/null)
cp "$B/shot.png" "$SHOT" 2>/dev/null
check "a screenshot of the page is kept ($SHOT)" python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); assert d[:8]==b"\x89PNG\r\n\x1a\n" and len(d)>10000' "$SHOT"
echo "status page screenshot: $SHOT"
check "no sanitizer report (amtprovd)" no_sanitizer_reports "$T/amtprovd.log"
finish
