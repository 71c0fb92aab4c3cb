/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_credstore.c - an in-memory credential store (kind CREDSTORE) for tests.
 *
 * It is deliberately NOT thread-safe and does not set AMTPROV_PLUGIN_THREAD_SAFE: put()
 * reads the record count, yields, then writes, so two unserialized callers lose records.
 * A test that hammers it from several threads therefore proves that the core's per-instance
 * lock serializes calls into plugins without the flag.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <amtprov/credstore.h>

struct cs_record {
	char *name;
	char *value;
	size_t len;
};

struct fake_store {
	const struct amtprov_host *host;
	struct cs_record *recs;
	size_t n, cap;
	int inside; /* >0 while a call runs; a second caller seeing it means no serialization */
	int overlaps;
};

/* No keys: an empty table still makes config_parse refuse anything in the section. */
static const struct amtprov_config_field cs_table[] = {
	{NULL, 0, 0, 0, NULL, 0, 0, NULL},
};

static void wipe_free(char *p, size_t len)
{
	if (!p)
		return;
	/* volatile so the compiler keeps the wipe of memory about to be freed */
	for (volatile char *v = p; len--; v++)
		*v = 0;
	free(p);
}

static void cs_destroy(void *instance)
{
	struct fake_store *st = instance;

	if (!st)
		return;
	if (st->overlaps)
		st->host->log(st->host, AMTPROV_LOG_ERROR, "%d overlapping calls seen",
			      st->overlaps);
	for (size_t i = 0; i < st->n; i++) {
		free(st->recs[i].name);
		wipe_free(st->recs[i].value, st->recs[i].len);
	}
	free(st->recs);
	free(st);
}

static int cs_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
	struct fake_store *st;
	char none;
	int rc = host->config_parse(host, config, cs_table, &none, err);

	if (rc != AMTPROV_OK)
		return rc;
	st = calloc(1, sizeof(*st));
	if (!st)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, NULL, "out of memory");
	st->host = host;
	*instance = st;
	return AMTPROV_OK;
}

static void enter(struct fake_store *st)
{
	if (st->inside++)
		st->overlaps++;
}

static void leave(struct fake_store *st)
{
	st->inside--;
}

static struct cs_record *find(struct fake_store *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->recs[i].name, name) == 0)
			return &st->recs[i];
	return NULL;
}

static int cs_get(void *instance, const char *name, struct amtprov_secret **out,
		  struct amtprov_error *err)
{
	struct fake_store *st = instance;
	struct cs_record *r;
	int rc = AMTPROV_OK;

	enter(st);
	r = name ? find(st, name) : NULL;
	if (!r) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s'",
				       name ? name : "");
	} else {
		*out = st->host->secret_new(st->host, r->len);
		if (!*out)
			rc = amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
		else
			memcpy((*out)->data, r->value, r->len);
	}
	leave(st);
	return rc;
}

static int cs_put(void *instance, const char *name, const struct amtprov_secret *value,
		  struct amtprov_error *err)
{
	struct fake_store *st = instance;
	struct cs_record *r;
	char *copy, *ncopy = NULL;
	size_t n;
	int rc = AMTPROV_OK;

	if (!name || !*name || !value)
		return amtprov_error_set(err, AMTPROV_E_INVALID, name, "no name or value");
	enter(st);
	copy = malloc(value->len + 1);
	if (!copy) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
		goto out;
	}
	memcpy(copy, value->data, value->len);
	copy[value->len] = '\0';
	r = find(st, name);
	if (r) {
		wipe_free(r->value, r->len);
		r->value = copy;
		r->len = value->len;
		goto out;
	}
	ncopy = strdup(name);
	if (ncopy && st->n == st->cap) {
		size_t cap = st->cap * 2 + 8;
		struct cs_record *recs = realloc(st->recs, cap * sizeof(*recs));

		if (recs) {
			st->recs = recs;
			st->cap = cap;
		}
	}
	if (!ncopy || st->n == st->cap) {
		free(ncopy);
		wipe_free(copy, value->len);
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, name, "out of memory");
		goto out;
	}
	/* Read, yield, write: the window in which an unserialized second caller loses this
	 * record (or ours). Harmless when the core holds the instance lock. */
	n = st->n;
	sched_yield();
	st->recs[n].name = ncopy;
	st->recs[n].value = copy;
	st->recs[n].len = value->len;
	st->n = n + 1;
out:
	leave(st);
	return rc;
}

static int cs_remove(void *instance, const char *name, struct amtprov_error *err)
{
	struct fake_store *st = instance;
	struct cs_record *r;
	int rc = AMTPROV_OK;

	enter(st);
	r = name ? find(st, name) : NULL;
	if (!r) {
		rc = amtprov_error_set(err, AMTPROV_E_NOT_FOUND, name, "no record '%s'",
				       name ? name : "");
	} else {
		free(r->name);
		wipe_free(r->value, r->len);
		*r = st->recs[--st->n];
	}
	leave(st);
	return rc;
}

static int cs_list(void *instance, amtprov_credstore_name_cb cb, void *ctx,
		   struct amtprov_error *err)
{
	struct fake_store *st = instance;

	enter(st);
	for (size_t i = 0; i < st->n; i++)
		if (cb(ctx, st->recs[i].name))
			break;
	leave(st);
	return AMTPROV_OK;
}

static const struct amtprov_credstore_ops cs_ops = {
	.struct_size = sizeof(struct amtprov_credstore_ops),
	.get = cs_get,
	.put = cs_put,
	.remove = cs_remove,
	.list = cs_list,
};

static const char *const cs_caps[] = {NULL};

AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CREDSTORE, .name = "fake-credstore",
		      .version = "0.1.0", .description = "in-memory credential store for tests",
		      .capabilities = cs_caps, .create = cs_create, .destroy = cs_destroy,
		      .ops = &cs_ops, .config_table = cs_table);
