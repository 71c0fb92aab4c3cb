/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seed.c - reads the JSON seed file. Every field is checked with a message naming it;
 * defaults are AD CS's own (Web Server template values from MS-CRTD).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "seed.h"

static int copy_str(json_t *o, const char *key, char *dst, size_t dsz, int required,
		    const char *where, char *err, size_t errsz)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (!v || json_is_null(v)) {
		if (required) {
			snprintf(err, errsz, "%s: \"%s\" is required", where, key);
			return -1;
		}
		return 0;
	}
	if (!json_is_string(v) || strlen(s = json_string_value(v)) >= dsz) {
		snprintf(err, errsz, "%s: \"%s\" must be a string shorter than %zu", where, key, dsz);
		return -1;
	}
	snprintf(dst, dsz, "%s", s);
	return 0;
}

static int get_uint(json_t *o, const char *key, unsigned long *dst, const char *where, char *err,
		    size_t errsz)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 0xffffffffLL) {
		snprintf(err, errsz, "%s: \"%s\" must be an integer from 0 to 4294967295", where,
			 key);
		return -1;
	}
	*dst = (unsigned long)json_integer_value(v);
	return 0;
}

static int get_list(json_t *o, const char *key, char list[][64], size_t *n, const char *where,
		    char *err, size_t errsz)
{
	json_t *a = json_object_get(o, key), *v;
	size_t i;

	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > SEED_MAX_LIST) {
		snprintf(err, errsz, "%s: \"%s\" must be an array of at most %d strings", where, key,
			 SEED_MAX_LIST);
		return -1;
	}
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) >= 64) {
			snprintf(err, errsz, "%s: \"%s\"[%zu] must be a string shorter than 64", where,
				 key, i);
			return -1;
		}
		snprintf(list[(*n)++], 64, "%s", json_string_value(v));
	}
	return 0;
}

static int load_template(json_t *o, size_t idx, struct seed_template *t, char *err, size_t errsz)
{
	char where[96];
	unsigned long v;
	json_t *ku;

	snprintf(where, sizeof(where), "templates[%zu]", idx);
	if (!json_is_object(o)) {
		snprintf(err, errsz, "%s must be an object", where);
		return -1;
	}
	if (copy_str(o, "name", t->name, sizeof(t->name), 1, where, err, errsz))
		return -1;
	snprintf(where, sizeof(where), "template \"%s\"", t->name);
	if (copy_str(o, "display_name", t->display, sizeof(t->display), 0, where, err, errsz) ||
	    copy_str(o, "oid", t->oid, sizeof(t->oid), 1, where, err, errsz) ||
	    copy_str(o, "hash", t->hash, sizeof(t->hash), 0, where, err, errsz) ||
	    get_list(o, "eku", t->eku, &t->n_eku, where, err, errsz) ||
	    get_list(o, "enroll", t->enroll, &t->n_enroll, where, err, errsz) ||
	    get_list(o, "autoenroll", t->autoenroll, &t->n_autoenroll, where, err, errsz))
		return -1;
	if (!t->display[0])
		snprintf(t->display, sizeof(t->display), "%s", t->name);
	/* Defaults: AD CS's Web Server template [MS-CRTD note 42]. */
	t->schema = 1; t->major = 4; t->minor = 1; t->min_key = 2048; t->key_spec = 1;
	t->validity_s = 730UL * 86400; t->renewal_s = 42UL * 86400;
	t->key_usage = 0xa0; t->ku_critical = 1;
#define U(key, field) do { v = t->field; \
		if (get_uint(o, key, &v, where, err, errsz)) return -1; \
		t->field = (unsigned)v; } while (0)
	U("schema", schema); U("major_revision", major); U("minor_revision", minor);
	U("name_flags", name_flags); U("enrollment_flags", enroll_flags);
	U("private_key_flags", pkey_flags); U("general_flags", general_flags);
	U("min_key_size", min_key); U("key_spec", key_spec); U("key_usage", key_usage);
#undef U
	v = t->validity_s / 86400;
	if (get_uint(o, "validity_days", &v, where, err, errsz))
		return -1;
	t->validity_s = v * 86400;
	v = t->renewal_s / 86400;
	if (get_uint(o, "renewal_days", &v, where, err, errsz))
		return -1;
	t->renewal_s = v * 86400;
	ku = json_object_get(o, "key_usage_critical");
	if (ku)
		t->ku_critical = json_is_true(ku);
	if (t->schema < 1 || t->schema > 3 || t->major == 0 || t->min_key == 0 ||
	    t->validity_s == 0 || t->renewal_s == 0 || t->key_usage > 0xff) {
		snprintf(err, errsz, "%s: schema must be 1-3; major_revision, min_key_size, "
			 "validity_days, renewal_days > 0; key_usage one byte", where);
		return -1;
	}
	if (t->hash[0] && t->schema != 3) {
		snprintf(err, errsz, "%s: \"hash\" is a version 3 template attribute", where);
		return -1;
	}
	return 0;
}

static int load_account(json_t *o, size_t idx, struct seed_account *a, char *err, size_t errsz)
{
	char where[64];

	snprintf(where, sizeof(where), "accounts[%zu]", idx);
	if (!json_is_object(o)) {
		snprintf(err, errsz, "%s must be an object", where);
		return -1;
	}
	if (copy_str(o, "name", a->name, sizeof(a->name), 1, where, err, errsz) ||
	    copy_str(o, "password", a->password, sizeof(a->password), 0, where, err, errsz) ||
	    copy_str(o, "cert_cn", a->cert_cn, sizeof(a->cert_cn), 0, where, err, errsz) ||
	    copy_str(o, "dns_host_name", a->dns, sizeof(a->dns), 0, where, err, errsz))
		return -1;
	a->officer = json_is_true(json_object_get(o, "officer"));
	return 0;
}

int seed_load(struct seed *s, const char *path, char *err, size_t errsz)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *ca, *cep, *a, *v;
	unsigned long n;
	size_t i;
	char mode[16] = "enterprise", pol[16] = "pend";
	char where[300];

	memset(s, 0, sizeof(*s));
	if (!root) {
		snprintf(err, errsz, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	snprintf(where, sizeof(where), "%s: ca", path);
	ca = json_object_get(root, "ca");
	cep = json_object_get(root, "cep");
	if (!json_is_object(ca)) {
		snprintf(err, errsz, "%s: \"ca\" object is required", path);
		goto fail;
	}
	snprintf(s->ca_hash, sizeof(s->ca_hash), "sha256");
	snprintf(s->policy_id, sizeof(s->policy_id), "{3A2D5E4B-6C71-4F2E-9D3A-ADC551A00001}");
	snprintf(s->policy_name, sizeof(s->policy_name), "Active Directory Enrollment Policy");
	s->next_update_hours = 8;
	if (copy_str(ca, "name", s->ca_name, sizeof(s->ca_name), 1, where, err, errsz) ||
	    copy_str(ca, "mode", mode, sizeof(mode), 0, where, err, errsz) ||
	    copy_str(ca, "standalone_policy", pol, sizeof(pol), 0, where, err, errsz) ||
	    copy_str(ca, "hash", s->ca_hash, sizeof(s->ca_hash), 0, where, err, errsz))
		goto fail;
	if (strcmp(mode, "enterprise") && strcmp(mode, "standalone")) {
		snprintf(err, errsz, "%s: \"mode\" must be \"enterprise\" or \"standalone\"", where);
		goto fail;
	}
	if (strcmp(pol, "pend") && strcmp(pol, "issue")) {
		snprintf(err, errsz, "%s: \"standalone_policy\" must be \"pend\" or \"issue\"", where);
		goto fail;
	}
	if (strspn(s->ca_name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -_") !=
	    strlen(s->ca_name)) {
		snprintf(err, errsz, "%s: \"name\" may hold letters, digits, space, '-' and '_'", where);
		goto fail;
	}
	s->standalone = !strcmp(mode, "standalone");
	s->standalone_issue = !strcmp(pol, "issue");
	if (cep) {
		snprintf(where, sizeof(where), "%s: cep", path);
		n = s->next_update_hours;
		if (!json_is_object(cep) ||
		    copy_str(cep, "policy_id", s->policy_id, sizeof(s->policy_id), 0, where, err, errsz) ||
		    copy_str(cep, "friendly_name", s->policy_name, sizeof(s->policy_name), 0, where, err,
			     errsz) ||
		    get_uint(cep, "next_update_hours", &n, where, err, errsz)) {
			if (!json_is_object(cep))
				snprintf(err, errsz, "%s must be an object", where);
			goto fail;
		}
		s->next_update_hours = (unsigned)n;
		s->nil_versions_empty = json_is_true(json_object_get(cep, "nil_versions_return_empty"));
		s->version_filter = json_is_true(json_object_get(cep, "version_filter"));
	}
	a = json_object_get(root, "accounts");
	if (!json_is_array(a) || json_array_size(a) == 0) {
		snprintf(err, errsz, "%s: \"accounts\" must be a non-empty array", path);
		goto fail;
	}
	s->accounts = calloc(json_array_size(a), sizeof(*s->accounts));
	if (!s->accounts)
		goto oom;
	json_array_foreach(a, i, v) {
		if (load_account(v, i, &s->accounts[i], err, errsz))
			goto fail;
		s->n_accounts++;
	}
	a = json_object_get(root, "templates");
	if (a && !json_is_array(a)) {
		snprintf(err, errsz, "%s: \"templates\" must be an array", path);
		goto fail;
	}
	if (a && json_array_size(a)) {
		s->templates = calloc(json_array_size(a), sizeof(*s->templates));
		if (!s->templates)
			goto oom;
		json_array_foreach(a, i, v) {
			if (load_template(v, i, &s->templates[i], err, errsz))
				goto fail;
			if (seed_template(s, s->templates[i].name) ||
			    seed_template_by_oid(s, s->templates[i].oid)) {
				snprintf(err, errsz, "%s: template \"%s\": name or OID used twice", path,
					 s->templates[i].name);
				goto fail;
			}
			s->n_templates++;
		}
	}
	json_decref(root);
	return 0;
oom:
	snprintf(err, errsz, "%s: out of memory", path);
fail:
	json_decref(root);
	seed_free(s);
	return -1;
}

void seed_free(struct seed *s)
{
	if (s->accounts)
		memset(s->accounts, 0, s->n_accounts * sizeof(*s->accounts)); /* passwords */
	free(s->accounts);
	free(s->templates);
	memset(s, 0, sizeof(*s));
}

const struct seed_template *seed_template(const struct seed *s, const char *name)
{
	size_t i;

	/* AD names are case-insensitive. */
	for (i = 0; i < s->n_templates; i++)
		if (!strcasecmp(s->templates[i].name, name))
			return &s->templates[i];
	return NULL;
}

const struct seed_template *seed_template_by_oid(const struct seed *s, const char *oid)
{
	size_t i;

	for (i = 0; i < s->n_templates; i++)
		if (!strcmp(s->templates[i].oid, oid))
			return &s->templates[i];
	return NULL;
}

const struct seed_account *seed_account(const struct seed *s, const char *user)
{
	const char *bs = strchr(user, '\\'), *at = strchr(user, '@');
	size_t len = strlen(user), i;

	if (bs) {
		user = bs + 1;
		len = strlen(user);
	} else if (at) {
		len = (size_t)(at - user);
	}
	for (i = 0; i < s->n_accounts; i++)
		if (strlen(s->accounts[i].name) == len && !strncasecmp(s->accounts[i].name, user, len))
			return &s->accounts[i];
	return NULL;
}

const struct seed_account *seed_account_by_cn(const struct seed *s, const char *cn)
{
	size_t i;

	for (i = 0; i < s->n_accounts; i++)
		if (s->accounts[i].cert_cn[0] && !strcmp(s->accounts[i].cert_cn, cn))
			return &s->accounts[i];
	return NULL;
}

static int in_list(const char list[][64], size_t n, const char *account)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcasecmp(list[i], account) || !strcmp(list[i], "Authenticated Users"))
			return 1;
	return 0;
}

int seed_may_enroll(const struct seed_template *t, const char *account)
{
	return in_list(t->enroll, t->n_enroll, account);
}

int seed_may_autoenroll(const struct seed_template *t, const char *account)
{
	return in_list(t->autoenroll, t->n_autoenroll, account);
}
