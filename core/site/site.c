/* SPDX-License-Identifier: Apache-2.0 */
#include "site.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amt_password.h"
#include "manifest_int.h"
#include "status.h"
#include "util.h"

struct site {
	struct manifest *m;
	struct store *st;
	pthread_t owner;           /* the thread that may use st */
	struct store *st_aux;      /* for status messages from other threads */
	pthread_mutex_t aux_lock;
	struct plugin_host *ph;
	struct alog *log;
	int64_t (*now)(void *);
	void *now_ctx;
	char *test_clock_file;     /* AMTPROV_TEST_CLOCK_FILE: tests only */
};

/* The test clock (docs/lifecycle.md): the file holds Unix seconds and is read on every
 * call, so a test moves time for amtprovd, amtprov and every plugin at once, without
 * sleeping. A file that cannot be read gives real time, never a made-up one. */
static int64_t test_clock(void *ctx)
{
	struct site *s = ctx;
	char buf[32];
	long long v;
	FILE *f = fopen(s->test_clock_file, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (!n || util_parse_ll(buf, 0, INT64_MAX / 4, &v) < 0) {
		alog(s->log, AMTPROV_LOG_ERROR, "test clock %s unreadable; using real time",
		     s->test_clock_file);
		return util_now();
	}
	return v;
}

int64_t site_now(struct site *s)
{
	return s->now ? s->now(s->now_ctx) : util_now();
}

int64_t site_clock(void *site)
{
	return site_now(site);
}

static int emit_status_cb(void *ctx, uint32_t id, const char *device, const char *detail)
{
	return site_status(ctx, id, device, detail);
}

int site_status(struct site *s, uint32_t id, const char *device, const char *detail)
{
	const struct status_entry *ent = status_lookup(id);
	struct store_status_msg msg;
	struct amtprov_error err;
	struct store *st = NULL;
	int level, rc = AMTPROV_OK;

	if (!ent) {
		alog(s->log, AMTPROV_LOG_ERROR, "unknown status message ID %u (detail: %s)",
		     (unsigned)id, detail ? detail : "");
		return AMTPROV_E_NOT_FOUND;
	}
	level = ent->severity == STORE_SEV_ERROR     ? AMTPROV_LOG_ERROR
		: ent->severity == STORE_SEV_WARNING ? AMTPROV_LOG_WARNING
						     : AMTPROV_LOG_NOTICE;
	{
		struct alog_ctx prev = alog_ctx_set(alog_ctx_get().instance,
						    device ? device : alog_ctx_get().device);

		alog(s->log, level, "status %u %s: %s%s%s", (unsigned)id, ent->name, ent->text,
		     detail && *detail ? ": " : "", detail ? detail : "");
		alog_ctx_restore(prev);
	}
	if (!s->st)
		return AMTPROV_OK;
	memset(&msg, 0, sizeof(msg));
	msg.msg_id = id;
	msg.severity = ent->severity;
	util_strlcpy(msg.device, device ? device : "", sizeof(msg.device));
	util_strlcpy(msg.text, detail && *detail ? detail : ent->text, sizeof(msg.text));
	amtprov_error_clear(&err);
	if (pthread_equal(pthread_self(), s->owner)) {
		rc = store_status_add(s->st, &msg, site_now(s), &err);
	} else {
		/* A plugin's worker thread: one database handle per thread, never shared. */
		pthread_mutex_lock(&s->aux_lock);
		if (!s->st_aux)
			rc = store_open_auth(store_path(s->st), store_password_file(s->st), 0,
					     &s->st_aux, &err);
		st = s->st_aux;
		if (rc == AMTPROV_OK)
			rc = store_status_add(st, &msg, site_now(s), &err);
		pthread_mutex_unlock(&s->aux_lock);
	}
	if (rc != AMTPROV_OK)
		alog(s->log, AMTPROV_LOG_ERROR, "cannot store status message %u: %s", (unsigned)id,
		     err.msg);
	return rc;
}

struct cap_check {
	struct site *s;
	struct amtprov_error *err;
	int rc;
};

static int check_cap(void *ctx, const char *instance, const char *cap, const char *json_path)
{
	struct cap_check *c = ctx;
	struct plugin_instance *pi = plugin_host_find(c->s->ph, instance);

	if (!pi) /* an optional instance that failed to load: its features are off */
		return 0;
	if (!plugin_instance_has_cap(pi, cap)) {
		/* Say why a capability beyond what ca.h calls mandatory is needed. */
		const char *why = strcmp(cap, AMTPROV_CAP_CA_REVOKE) == 0
					  ? ": the site revokes a certificate this CA issued when "
					    "it is renewed, re-provisioned or the device is removed "
					    "(R-REV-02, R-REV-04)"
					  : "";

		c->rc = amtprov_error_set(c->err, AMTPROV_E_CONFIG, json_path,
					  "plugin instance '%s' (%s) does not provide capability "
					  "'%s' that this site needs%s",
					  instance, plugin_instance_desc(pi)->name, cap, why);
		return 1;
	}
	return 0;
}

static int load_plugins(struct site *s, int check_only, struct amtprov_error *err)
{
	struct manifest *m = s->m;
	struct host_env env = {
		.log = s->log,
		.now = site_clock,
		.now_ctx = s,
		.emit_status = emit_status_cb,
		.status_ctx = s,
		.state_root = m->state_dir,
		.config_base = "/plugins",
		.check_only = check_only,
	};
	struct cap_check cc = {.s = s, .err = err};
	int rc;

	s->ph = plugin_host_new(&env);
	if (!s->ph)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	for (char **d = m->plugin_path; d && *d; d++) {
		rc = plugin_host_add_dir(s->ph, *d, err);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < m->n_plugins; i++) {
		const struct manifest_plugin *mp = &m->plugins[i];
		struct amtprov_error perr;

		amtprov_error_clear(&perr);
		rc = plugin_host_create(s->ph, mp->instance, mp->plugin, mp->config,
					mp->expected_kind, NULL, &perr);
		if (rc == AMTPROV_OK)
			continue;
		if (mp->required) {
			/* Keep the plugin's location (file or JSON path) and name the manifest
			 * entry in the message. */
			char msg[AMTPROV_ERROR_MSG_SIZE];

			snprintf(msg, sizeof(msg), "%s", perr.msg);
			return amtprov_error_set(err, rc, perr.where[0] ? perr.where : m->file,
						 "/plugins/%s: %s", mp->instance, msg);
		}
		alog(s->log, AMTPROV_LOG_WARNING, "optional plugin instance '%s' not loaded: %s: %s",
		     mp->instance, perr.where, perr.msg);
		site_status(s, STATUS_PLUGIN_OPTIONAL_FAILED, NULL, perr.msg);
	}
	if (m->credstore) {
		struct plugin_instance *cs = plugin_host_find(s->ph, m->credstore);

		if (cs) {
			rc = plugin_host_set_credstore(s->ph, cs, err);
			if (rc)
				return rc;
		}
	}
	manifest_required_caps(m, check_cap, &cc);
	return cc.rc;
}

struct pw_check {
	struct site *s;
	struct plugin_instance *cs;
	struct manifest_problems *problems;
	size_t bad;
	char first[AMTPROV_ERROR_WHERE_SIZE];
};

/* One record the site sets on AMT as a password: readable and accepted by AMT's rule. The
 * problem names the field and the record, never a character of the value (R-ACC-02). */
static int check_one_password(void *ctx, const char *where, const char *name)
{
	struct pw_check *c = ctx;
	struct amtprov_secret *pw = NULL;
	struct amtprov_error e;
	char clauses[160];
	unsigned faults;

	amtprov_error_clear(&e);
	if (!c->cs) {
		manifest_problem_add(c->problems, 0, where, "cannot check credential '%s': the "
				     "credential store '%s' is not loaded", name,
				     c->s->m->credstore ? c->s->m->credstore : "");
	} else if (pi_credstore_get(c->cs, name, &pw, &e) != AMTPROV_OK) {
		manifest_problem_add(c->problems, 0, where, "cannot read credential '%s' (%s); "
				     "store it with 'amtprov cred set %s --stdin'", name, e.msg,
				     name);
	} else {
		faults = amt_password_check(pw->data, pw->len);
		util_secret_free(pw);
		if (!faults)
			return 0;
		amt_password_faults(faults, clauses, sizeof(clauses));
		manifest_problem_add(c->problems, 0, where, "credential '%s' holds a password AMT "
				     "refuses (INVALID_PASSWORD): %s; see docs/manifest.md \"AMT "
				     "passwords\"", name, clauses);
	}
	if (!c->bad++)
		util_strlcpy(c->first, where, sizeof(c->first));
	return 0;
}

/* SITE_CHECK_AMT_PASSWORDS: every refused password is a problem, reported at once, and the
 * site does not open: AMT would refuse it on every device (2054 INVALID_PASSWORD). */
static int check_amt_passwords(struct site *s, struct manifest_problems *problems,
			       struct amtprov_error *err)
{
	struct manifest_problems own = {0};
	struct pw_check c = {
		.s = s,
		.cs = s->m->credstore ? plugin_host_find(s->ph, s->m->credstore) : NULL,
		.problems = problems ? problems : &own,
	};

	amt_password_uses(s->m, check_one_password, &c);
	manifest_problems_free(&own);
	if (!c.bad)
		return AMTPROV_OK;
	return amtprov_error_set(err, AMTPROV_E_CONFIG, s->m->file,
				 "%zu password%s the site sets on AMT cannot be used (first at %s)",
				 c.bad, c.bad == 1 ? "" : "s", c.first);
}

int site_open(const struct site_options *opt, struct site **out,
	      struct manifest_problems *problems, struct amtprov_error *err)
{
	struct site *s;
	struct stat st;
	int rc, db_exists, is_pg;

	s = calloc(1, sizeof(*s));
	if (!s)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	pthread_mutex_init(&s->aux_lock, NULL);
	s->owner = pthread_self();
	s->log = opt->log;
	s->now = opt->now;
	s->now_ctx = opt->now_ctx;
	if (!s->now && getenv(SITE_TEST_CLOCK_ENV) && *getenv(SITE_TEST_CLOCK_ENV)) {
		s->test_clock_file = strdup(getenv(SITE_TEST_CLOCK_ENV));
		if (!s->test_clock_file) {
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
			goto fail;
		}
		s->now = test_clock;
		s->now_ctx = s;
		alog(s->log, AMTPROV_LOG_WARNING,
		     "*** TEST CLOCK: time is read from %s (%s is set); never use this in "
		     "production ***", s->test_clock_file, SITE_TEST_CLOCK_ENV);
	}

	/* 1. The manifest, in full, before anything else. */
	rc = manifest_load(opt->manifest, &s->m, problems, err);
	if (rc)
		goto fail;

	/* 2. An existing database is checked now (corrupt: stop before touching anything). */
	/* A PostgreSQL database always "exists" (its administrator creates it); one without
	 * the amtprov schema yet answers E_NOT_FOUND, which is a missing file's case. */
	is_pg = store_is_pg_url(s->m->database_path);
	db_exists = is_pg || stat(s->m->database_path, &st) == 0;
	if (!(opt->flags & SITE_NO_DB) && db_exists) {
		rc = store_open_auth(s->m->database_path, s->m->database_password_file,
				     (opt->flags & SITE_READONLY_DB) ? STORE_OPEN_READONLY : 0,
				     &s->st, err);
		if (rc == AMTPROV_E_NOT_FOUND && is_pg && (opt->flags & SITE_CREATE_DB)) {
			amtprov_error_clear(err);
			rc = AMTPROV_OK;
		} else if (rc == AMTPROV_E_NOT_FOUND && is_pg) {
			amtprov_error_clear(err);
			rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, s->m->database_path,
					       "the site database has no amtprov schema yet; create "
					       "it with 'amtprov db init -m %s'",
					       opt->manifest);
		}
		if (rc)
			goto fail;
	} else if (!(opt->flags & SITE_NO_DB) && !(opt->flags & SITE_CREATE_DB)) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, s->m->database_path,
				       "site database does not exist; create it with 'amtprov db "
				       "init -m %s'",
				       opt->manifest);
		goto fail;
	}

	/* 3. Plugins: load, check descriptors, create instances, check capabilities. */
	if (!(opt->flags & SITE_NO_PLUGINS)) {
		rc = load_plugins(s, !!(opt->flags & SITE_CHECK_ONLY), err);
		if (rc)
			goto fail;
		if (opt->flags & SITE_CHECK_AMT_PASSWORDS) {
			rc = check_amt_passwords(s, problems, err);
			if (rc)
				goto fail;
		}
	}

	/* 4. Only now create what is missing. */
	if (!(opt->flags & SITE_NO_DB) && !s->st) {
		rc = util_mkdir_p(s->m->state_dir, 0700, err);
		if (rc)
			goto fail;
		rc = store_open_auth(s->m->database_path, s->m->database_password_file,
				     STORE_OPEN_CREATE, &s->st, err);
		if (rc)
			goto fail;
		alog(s->log, AMTPROV_LOG_NOTICE, "created site database %s", s->m->database_path);
	}
	*out = s;
	return AMTPROV_OK;
fail:
	site_close(s);
	return rc;
}

void site_close(struct site *s)
{
	if (!s)
		return;
	plugin_host_free(s->ph);
	store_close(s->st_aux);
	store_close(s->st);
	manifest_free(s->m);
	free(s->test_clock_file);
	pthread_mutex_destroy(&s->aux_lock);
	free(s);
}

struct manifest *site_manifest(struct site *s)
{
	return s->m;
}

struct store *site_store(struct site *s)
{
	return s->st;
}

struct plugin_host *site_plugins(struct site *s)
{
	return s->ph;
}

struct alog *site_log(struct site *s)
{
	return s->log;
}

