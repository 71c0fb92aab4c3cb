/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The status page (api_status.h): its HTML, the JSON it reads, and the login links and
 * sessions a browser uses instead of a bearer header.
 *
 * What devices report (names, failure texts) reaches the page only as JSON strings that the
 * script puts into the document with textContent, never as markup; and the CSP allows no
 * script but the page's own (by hash), so even a mistake there could not run injected code.
 */
#include "api_status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ca_contract.h"
#include "device_state.h"
#include "manifest.h"
#include "store.h"
#include "util.h"

#define MAX_FAILURES 200
#define MAX_EXPIRING 50
#define MAX_SESSIONS 64
#define DIGEST 32

/* ---- the page ------------------------------------------------------------------------- */

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
	"h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}"
	"table{border-collapse:collapse;background:#fff}"
	"td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
	"th{background:#eee}.n{text-align:right}.bad{color:#a00}.ok{color:#060}"
	"#meta{color:#666}#error{color:#a00;font-weight:bold}"
	"meter{width:12em}";

static const char script[] =
	"'use strict';"
	"function el(tag,text,cls){const e=document.createElement(tag);"
	"if(text!==undefined&&text!==null)e.textContent=String(text);if(cls)e.className=cls;return e;}"
	"function row(cells){const tr=el('tr');for(const c of cells){"
	"if(c instanceof Node){const td=el('td');td.appendChild(c);tr.appendChild(td);}"
	"else tr.appendChild(el('td',c));}return tr;}"
	"function fill(id,rows,empty,cols){const t=document.getElementById(id);"
	"t.replaceChildren();if(!rows.length){const tr=row([empty]);"
	"tr.firstChild.colSpan=cols;t.appendChild(tr);}for(const r of rows)t.appendChild(r);}"
	"function when(s){return s?s.replace('T',' ').replace('Z',' UTC'):'never';}"
	"function show(d){"
	"document.getElementById('site').textContent=d.site;"
	"document.getElementById('meta').textContent=d.total+' devices; as of '+when(d.generated_at);"
	"fill('states',Object.keys(d.states).map(s=>{const r=row([s,d.states[s]]);"
	"r.lastChild.className='n';r.id='state-'+s;return r;}),'no devices',2);"
	"fill('failures',d.failures.map(f=>row([f.fqdn,f.reason,f.code,f.attempts,f.what_to_do,when(f.state_since)])),"
	"'no failed device',6);"
	"document.getElementById('failed-total').textContent=d.failed_total;"
	"fill('expiring',d.expiring.map(c=>{const m=el('meter');m.min=0;m.max=400;m.low=40;"
	"m.optimum=400;m.value=Math.max(0,c.days_left);"
	"const s=el('span');s.appendChild(m);s.appendChild(el('span',' '+c.days_left+' days',c.days_left<=40?'bad':''));"
	"return row([when(c.not_after),s,c.fqdn,c.purpose,c.serial]);}),'no active certificate',5);"
	"document.getElementById('active-total').textContent=d.active_certificates;"
	"fill('tasks',d.tasks.map(t=>row([t.name,when(t.last_run),t.last_result,t.last_detail,when(t.next_run)])),"
	"'no task has run',5);"
	"document.getElementById('error').textContent='';}"
	"async function refresh(){try{const r=await fetch('/v1/status',{credentials:'same-origin',"
	"cache:'no-store'});if(!r.ok)throw new Error('HTTP '+r.status+(r.status===401?"
	"': the session has ended; open a new login link':''));show(await r.json());}"
	"catch(e){document.getElementById('error').textContent='Not refreshed: '+e.message;}}"
	"refresh();setInterval(refresh,5000);";

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width\">"
	"<title>amtprov status</title><style>";
static const char page_mid[] =
	"</style></head><body>"
	"<h1>amtprov: <span id=\"site\"></span></h1><div id=\"meta\">loading...</div>"
	"<div id=\"error\"></div>"
	"<h2>Devices by state</h2><table><thead><tr><th>state</th><th>devices</th></tr></thead>"
	"<tbody id=\"states\"></tbody></table>"
	"<h2>Failures (<span id=\"failed-total\"></span>)</h2><table><thead><tr><th>device</th>"
	"<th>reason</th><th>status</th><th>attempts</th><th>what to do</th><th>since</th></tr>"
	"</thead><tbody id=\"failures\"></tbody></table>"
	"<h2>Certificates by expiry (<span id=\"active-total\"></span> active)</h2><table><thead>"
	"<tr><th>expires</th><th>days left</th><th>device</th><th>purpose</th><th>serial</th></tr>"
	"</thead><tbody id=\"expiring\"></tbody></table>"
	"<h2>Maintenance tasks</h2><table><thead><tr><th>task</th><th>last run</th>"
	"<th>result</th><th>detail</th><th>next run</th></tr></thead><tbody id=\"tasks\"></tbody>"
	"</table><script>";
static const char page_tail[] = "</script></body></html>\n";

static pthread_once_t page_once = PTHREAD_ONCE_INIT;
static char *page, *csp;

/* 'sha256-<base64>' of @p text into @p out. */
static int csp_hash(const char *text, char *out, size_t size)
{
	unsigned char md[DIGEST];
	unsigned char b64[64];
	unsigned int len = 0;

	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1 || len != DIGEST)
		return -1;
	EVP_EncodeBlock(b64, md, DIGEST);
	return snprintf(out, size, "'sha256-%s'", b64) >= (int)size ? -1 : 0;
}

static void page_init(void)
{
	char hs[80], hc[80];
	size_t n = strlen(page_head) + strlen(style) + strlen(page_mid) + strlen(script) +
		   strlen(page_tail) + 1;

	page = malloc(n);
	if (page)
		snprintf(page, n, "%s%s%s%s%s", page_head, style, page_mid, script, page_tail);
	if (csp_hash(style, hs, sizeof(hs)) || csp_hash(script, hc, sizeof(hc)))
		return;
	csp = malloc(512);
	if (csp)
		snprintf(csp, 512,
			 "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "
			 "img-src 'none'; base-uri 'none'; form-action 'none'; "
			 "frame-ancestors 'none'",
			 hc, hs);
}

const char *api_status_page(void)
{
	pthread_once(&page_once, page_init);
	return page;
}

const char *api_status_csp(void)
{
	pthread_once(&page_once, page_init);
	return csp;
}

/* ---- the JSON ------------------------------------------------------------------------- */

/* What an operator does about a failure: by what the reason names first (the steps cite
 * the rule that failed), else by its status code; the first thing to check and the command
 * that starts the device again. */
static const struct {
	const char *names;
	const char *advice;
} by_reason[] = {
	{"R-PROV-05",
	 "The one-time password the device holds is not the one its agent registered "
	 "(R-PROV-05): run the host agent again so the device registers with a new OTP."},
	{"provisioning TLS handshake",
	 "The device refused the provisioning certificate (R-PROV-07): check that its firmware "
	 "holds the provisioning root's hash (R-PC-04; amtprov cert check lists the root "
	 "thumbprints) and that its DNS suffix is the certificate's (R-PC-05); then amtprov "
	 "device retry."},
	{"R-PC-05",
	 "The device is outside the service point's DNS namespace (R-PC-05): correct its DNS "
	 "suffix or the site's, then run the host agent again."},
	{"R-PC-04",
	 "The device's firmware does not hold the provisioning root's hash (R-PC-04): use a "
	 "provisioning certificate from a root it holds, or add the hash in the MEBx; then "
	 "amtprov device retry."},
};

static const char *what_to_do(int code, const char *reason)
{
	for (size_t i = 0; i < sizeof(by_reason) / sizeof(by_reason[0]); i++)
		if (strstr(reason, by_reason[i].names))
			return by_reason[i].advice;
	switch (code) {
	case AMTPROV_E_VERIFY:
		return "A certificate or hash check failed: check that the device's firmware holds "
		       "the provisioning root (R-PC-04) and the certificate (amtprov cert check); "
		       "then amtprov device retry.";
	case AMTPROV_E_AUTH:
		return "The device's one-time password or credentials did not match (R-PROV-05): "
		       "run the host agent again so the device registers with a new OTP.";
	case AMTPROV_E_DENIED:
		return "Refused by the device, the CA or the site's policy: read the reason, fix "
		       "the policy or the device (namespace, R-PC-05), then amtprov device retry.";
	case AMTPROV_E_UNREACHABLE:
	case AMTPROV_E_TIMEOUT:
	case AMTPROV_E_IO:
		return "The device or the CA did not answer after every retry: check the network "
		       "and that the computer is on, then amtprov device retry.";
	case AMTPROV_E_STATE:
		return "The device is not in the state the step needs (already provisioned?): "
		       "check amtprov device show; unprovision or register it again.";
	case AMTPROV_E_CONFIG:
		return "A site configuration problem: amtprov manifest check, fix, reload "
		       "amtprovd, then amtprov device retry.";
	default:
		return "See amtprov device show for the audit trail; fix the cause, then amtprov "
		       "device retry.";
	}
}

json_t *api_json_time(int64_t t)
{
	char buf[32];

	return t ? json_string(util_fmt_time(t, buf, sizeof(buf))) : json_null();
}

struct status_ctx {
	struct store *st;
	int64_t now;
	json_t *states, *failures;
	int64_t total, failed_total;
	struct store_cert soon[MAX_EXPIRING]; /* active, soonest first */
	size_t n_soon;
	int64_t active;
};

static int add_state(void *ctx, const char *state, int64_t n)
{
	struct status_ctx *c = ctx;

	if (strcmp(state, STORE_DEVICE_DELETED) == 0)
		return 0; /* deleted devices are not in the inventory */
	json_object_set_new(c->states, state, json_integer(n));
	c->total += n;
	return 0;
}

static int add_failure(void *ctx, const struct store_device *d)
{
	struct status_ctx *c = ctx;

	if (c->failed_total++ >= MAX_FAILURES)
		return 0;
	json_array_append_new(c->failures,
			      json_pack("{s:s,s:o,s:s,s:s,s:i,s:s}", "fqdn", d->fqdn, "state_since",
					api_json_time(d->state_since), "code",
					amtprov_status_name(d->last_error_code), "reason",
					d->last_error, "attempts", d->attempts, "what_to_do",
					what_to_do(d->last_error_code, d->last_error)));
	return 0;
}

static int add_cert(void *ctx, const struct store_cert *x)
{
	struct status_ctx *c = ctx;
	size_t i;

	c->active++;
	if (c->n_soon == MAX_EXPIRING && x->not_after >= c->soon[MAX_EXPIRING - 1].not_after)
		return 0;
	for (i = c->n_soon < MAX_EXPIRING ? c->n_soon : MAX_EXPIRING - 1;
	     i > 0 && c->soon[i - 1].not_after > x->not_after; i--)
		c->soon[i] = c->soon[i - 1];
	c->soon[i] = *x;
	if (c->n_soon < MAX_EXPIRING)
		c->n_soon++;
	return 0;
}

static int add_task(void *ctx, const struct store_task *t)
{
	json_t *tasks = ctx;

	json_array_append_new(tasks, json_pack("{s:s,s:o,s:s,s:s,s:o}", "name", t->name,
					       "last_run", api_json_time(t->last_run), "last_result",
					       amtprov_status_name(t->last_result), "last_detail",
					       t->last_detail, "next_run", api_json_time(t->next_run)));
	return 0;
}

int api_status_json(struct site *site, int64_t now, json_t **out, struct amtprov_error *err)
{
	struct status_ctx *c = calloc(1, sizeof(*c));
	struct store_cert_filter active = {.status = STORE_CERT_ACTIVE};
	json_t *expiring = json_array(), *tasks = json_array();
	const struct manifest *m = site_manifest(site);
	int rc;

	*out = NULL;
	if (!c || !expiring || !tasks) {
		free(c);
		json_decref(expiring);
		json_decref(tasks);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	c->st = site_store(site);
	c->now = now;
	c->states = json_object();
	c->failures = json_array();
	rc = store_device_count_by_state(c->st, add_state, c, err);
	if (rc == AMTPROV_OK)
		rc = store_device_list(c->st, device_state_name(DS_FAILED), add_failure, c, err);
	if (rc == AMTPROV_OK)
		rc = store_cert_list(c->st, &active, add_cert, c, err);
	if (rc == AMTPROV_OK)
		rc = store_task_list(c->st, add_task, tasks, err);
	for (size_t i = 0; rc == AMTPROV_OK && i < c->n_soon; i++) {
		const struct store_cert *x = &c->soon[i];
		struct store_device d;
		struct amtprov_error derr;

		amtprov_error_clear(&derr);
		if (!x->device_id || store_device_get(c->st, x->device_id, &d, &derr) != AMTPROV_OK)
			snprintf(d.fqdn, sizeof(d.fqdn), "%s",
				 x->device_id ? "(unknown device)" : "(site)");
		json_array_append_new(expiring,
				      json_pack("{s:s,s:s,s:s,s:o,s:I}", "fqdn", d.fqdn, "purpose",
						ca_contract_purpose_name((uint32_t)x->purpose),
						"serial", x->serial_hex, "not_after",
						api_json_time(x->not_after), "days_left",
						(json_int_t)((x->not_after - now) / 86400)));
	}
	if (rc == AMTPROV_OK) {
		*out = json_pack("{s:s,s:o,s:I,s:O,s:O,s:I,s:O,s:I,s:O}", "site",
				 m->site_name ? m->site_name : "", "generated_at", api_json_time(now),
				 "total", (json_int_t)c->total, "states", c->states, "failures",
				 c->failures, "failed_total", (json_int_t)c->failed_total, "expiring",
				 expiring, "active_certificates", (json_int_t)c->active, "tasks",
				 tasks);
		if (!*out)
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	}
	json_decref(c->states);
	json_decref(c->failures);
	json_decref(expiring);
	json_decref(tasks);
	free(c);
	return rc;
}

/* ---- login links and sessions --------------------------------------------------------- */

struct entry {
	unsigned char digest[DIGEST];
	int64_t expires; /* 0: free */
	int is_session;  /* else a one-time login link */
};

struct api_sessions {
	struct entry e[MAX_SESSIONS];
};

struct api_sessions *api_sessions_new(void)
{
	return calloc(1, sizeof(struct api_sessions));
}

void api_sessions_free(struct api_sessions *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

static int digest_of(const char *hex, size_t len, unsigned char *md)
{
	unsigned int n = 0;

	return EVP_Digest(hex, len, md, &n, EVP_sha256(), NULL) == 1 && n == DIGEST ? 0 : -1;
}

/* A new random secret in @p hex, its digest stored as @p is_session until @p expires. */
static int mint(struct api_sessions *s, int64_t now, int is_session, int64_t expires, char *hex)
{
	unsigned char raw[32];
	struct entry *free_slot = NULL;

	for (size_t i = 0; i < MAX_SESSIONS; i++) {
		if (s->e[i].expires && s->e[i].expires <= now)
			s->e[i].expires = 0; /* ended */
		if (!s->e[i].expires && !free_slot)
			free_slot = &s->e[i];
	}
	if (!free_slot)
		return AMTPROV_E_BUSY;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return AMTPROV_E_CRYPTO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (digest_of(hex, 64, free_slot->digest) != 0)
		return AMTPROV_E_CRYPTO;
	free_slot->expires = expires;
	free_slot->is_session = is_session;
	return AMTPROV_OK;
}

/* The live entry of that kind whose digest is @p secret's; every slot is compared. */
static struct entry *find(struct api_sessions *s, int64_t now, int is_session,
			  const char *secret, size_t len)
{
	unsigned char md[DIGEST];
	struct entry *hit = NULL;

	if (len != 64 || digest_of(secret, len, md) != 0)
		return NULL;
	for (size_t i = 0; i < MAX_SESSIONS; i++) {
		struct entry *e = &s->e[i];
		int same = CRYPTO_memcmp(md, e->digest, DIGEST) == 0;

		if (same && e->expires > now && e->is_session == is_session)
			hit = e;
	}
	OPENSSL_cleanse(md, sizeof(md));
	return hit;
}

int api_sessions_mint_link(struct api_sessions *s, int64_t now, char *hex)
{
	return mint(s, now, 0, now + API_STATUS_LINK_SECONDS, hex);
}

int api_sessions_login(struct api_sessions *s, int64_t now, const char *link, char *hex)
{
	struct entry *e = link ? find(s, now, 0, link, strlen(link)) : NULL;

	if (!e)
		return AMTPROV_E_AUTH;
	e->expires = 0; /* used once */
	OPENSSL_cleanse(e->digest, sizeof(e->digest));
	return mint(s, now, 1, now + API_STATUS_SESSION_SECONDS, hex);
}

int api_sessions_check(struct api_sessions *s, int64_t now, const char *cookie)
{
	static const char name[] = API_STATUS_COOKIE "=";
	const char *p = cookie;

	/* Cookie: a=b; amtprov_session=<64 hex>; c=d */
	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, sizeof(name) - 1) == 0) {
			const char *v = p + sizeof(name) - 1;
			size_t len = strcspn(v, "; ");

			return find(s, now, 1, v, len) != NULL;
		}
		p = strchr(p, ';');
	}
	return 0;
}
