/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_table.c - fills a plugin's configuration struct from its manifest section, driven
 * by the plugin's declarative table (struct amtprov_config_field, include/amtprov/types.h).
 *
 * Like the manifest itself, the parser reports every problem at once with its JSON path and
 * refuses keys the table does not list, so a typo in a plugin section is caught at load time
 * instead of silently falling back to a default.
 *
 * Ownership: strings and lists it stores in the plugin's struct are malloc'd and belong to
 * that struct; config_table_free() releases them, also after a failed parse (every pointer
 * field is set to NULL first, so a half-filled struct is always safe to free).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "manifest_int.h"

#define PATH_SIZE AMTPROV_ERROR_WHERE_SIZE

struct tctx {
	struct manifest_problems *pr;
	int nomem;
};

static void fail(struct tctx *c, const char *path, const char *fmt, ...) AMTPROV_PRINTF(3, 4);

static void fail(struct tctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (manifest_problem_addv(c->pr, 0, path, fmt, ap) != AMTPROV_OK)
		c->nomem = 1;
	va_end(ap);
}

static void *field_ptr(void *out, const struct amtprov_config_field *f)
{
	return (char *)out + f->offset;
}

static int known_type(int type)
{
	return type >= AMTPROV_CFG_STRING && type <= AMTPROV_CFG_CREDENTIAL;
}

/* Sets a field to its empty value; pointer fields become NULL so config_table_free() is
 * safe whatever happens next. */
static void field_clear(void *out, const struct amtprov_config_field *f)
{
	switch (f->type) {
	case AMTPROV_CFG_STRING:
	case AMTPROV_CFG_CREDENTIAL:
		*(char **)field_ptr(out, f) = NULL;
		break;
	case AMTPROV_CFG_INT:
		*(long long *)field_ptr(out, f) = 0;
		break;
	case AMTPROV_CFG_BOOL:
		*(int *)field_ptr(out, f) = 0;
		break;
	case AMTPROV_CFG_STRING_LIST:
		*(char ***)field_ptr(out, f) = NULL;
		break;
	default:
		break;
	}
}

static char *copy(struct tctx *c, const char *s)
{
	char *d = strdup(s);

	if (!d)
		c->nomem = 1;
	return d;
}

/* The plugin author's default text, applied when the key is absent. A default that does not
 * parse is a bug in the plugin, reported like a configuration error so it is seen at once. */
static void apply_default(struct tctx *c, void *out, const struct amtprov_config_field *f,
			  const char *p)
{
	char *end;
	long long x;

	if (!f->def)
		return;
	switch (f->type) {
	case AMTPROV_CFG_STRING:
	case AMTPROV_CFG_CREDENTIAL:
		*(char **)field_ptr(out, f) = copy(c, f->def);
		break;
	case AMTPROV_CFG_INT:
		errno = 0;
		x = strtoll(f->def, &end, 10);
		if (errno || end == f->def || *end != '\0')
			fail(c, p, "the plugin's default '%s' is not an integer (a plugin bug)",
			     f->def);
		else
			*(long long *)field_ptr(out, f) = x;
		break;
	case AMTPROV_CFG_BOOL:
		if (strcmp(f->def, "true") == 0)
			*(int *)field_ptr(out, f) = 1;
		else if (strcmp(f->def, "false") == 0)
			*(int *)field_ptr(out, f) = 0;
		else
			fail(c, p, "the plugin's default '%s' is not true or false (a plugin bug)",
			     f->def);
		break;
	default:
		/* STRING_LIST defaults are not supported: the field stays NULL. */
		break;
	}
}

/* A string without NUL bytes; empty strings are allowed for STRING (a plugin may want "" to
 * mean "none"), not for credential names. */
static const char *string_value(struct tctx *c, const json_t *v, const char *p)
{
	if (!json_is_string(v)) {
		fail(c, p, "must be a string, not %s", manifest_json_type_name(v));
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		fail(c, p, "must not contain a NUL character");
		return NULL;
	}
	return json_string_value(v);
}

static void parse_list(struct tctx *c, void *out, const struct amtprov_config_field *f,
		       const json_t *v, const char *p)
{
	char **list;
	size_t i, k = 0;

	if (!json_is_array(v)) {
		fail(c, p, "must be an array of strings, not %s", manifest_json_type_name(v));
		return;
	}
	list = calloc(json_array_size(v) + 1, sizeof(*list));
	if (!list) {
		c->nomem = 1;
		return;
	}
	*(char ***)field_ptr(out, f) = list;
	for (i = 0; i < json_array_size(v); i++) {
		char ip[PATH_SIZE];
		const char *s;

		manifest_path_index(ip, sizeof(ip), p, i);
		s = string_value(c, json_array_get(v, i), ip);
		/* Valid entries are packed, so the list stays NULL-terminated without holes and
		 * config_table_free() finds every entry. */
		if (s && (list[k] = copy(c, s)) != NULL)
			k++;
	}
}

static void parse_value(struct tctx *c, void *out, const struct amtprov_config_field *f,
			const json_t *v, const char *p)
{
	const char *s;
	long long x;

	switch (f->type) {
	case AMTPROV_CFG_STRING:
		s = string_value(c, v, p);
		if (s)
			*(char **)field_ptr(out, f) = copy(c, s);
		break;
	case AMTPROV_CFG_CREDENTIAL:
		s = string_value(c, v, p);
		if (!s)
			break;
		if (!manifest_credential_name_valid(s)) {
			fail(c, p, "'%s' is not a valid credential name "
				   "(^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$)", s);
			break;
		}
		*(char **)field_ptr(out, f) = copy(c, s);
		break;
	case AMTPROV_CFG_INT:
		if (!json_is_integer(v)) {
			fail(c, p, "must be an integer, not %s", manifest_json_type_name(v));
			break;
		}
		x = (long long)json_integer_value(v);
		if (f->min <= f->max && (x < f->min || x > f->max)) {
			fail(c, p, "must be from %lld to %lld, not %lld", f->min, f->max, x);
			break;
		}
		*(long long *)field_ptr(out, f) = x;
		break;
	case AMTPROV_CFG_BOOL:
		if (!json_is_boolean(v)) {
			fail(c, p, "must be true or false, not %s", manifest_json_type_name(v));
			break;
		}
		*(int *)field_ptr(out, f) = json_is_true(v) ? 1 : 0;
		break;
	case AMTPROV_CFG_STRING_LIST:
		parse_list(c, out, f, v, p);
		break;
	default:
		break;
	}
}

int config_table_parse(const json_t *config, const struct amtprov_config_field *table,
		       void *out, const char *base_path, struct manifest_problems *problems,
		       struct amtprov_error *err)
{
	struct manifest_problems local = {0};
	struct tctx c = {problems ? problems : &local, 0};
	size_t errors_before = c.pr->errors, first = c.pr->count, i;
	const struct amtprov_config_field *f;
	const char *base = base_path ? base_path : "";
	int rc = AMTPROV_OK;

	if (!table || !out)
		return amtprov_error_set(err, AMTPROV_E_INVALID, base,
					 "config_table_parse: no table or output struct");
	for (f = table; f->name; f++)
		field_clear(out, f);

	if (config && !json_is_object(config)) {
		fail(&c, base, "must be an object, not %s", manifest_json_type_name(config));
		config = NULL;
	}
	if (config) {
		const char *key;
		json_t *val;

		/* Jansson's iterator takes a non-const object; it is only read here. */
		json_object_foreach((json_t *)(uintptr_t)config, key, val) {
			char p[PATH_SIZE];

			(void)val;
			for (f = table; f->name; f++)
				if (strcmp(f->name, key) == 0)
					break;
			if (f->name)
				continue;
			manifest_path_key(p, sizeof(p), base, key);
			fail(&c, p, "unknown key '%s'", key);
		}
	}
	for (f = table; f->name; f++) {
		char p[PATH_SIZE];
		const json_t *v = config ? json_object_get(config, f->name) : NULL;

		manifest_path_key(p, sizeof(p), base, f->name);
		if (!known_type(f->type)) {
			fail(&c, p, "the plugin's table gives key '%s' an unknown type %d "
				    "(a plugin bug)", f->name, f->type);
			continue;
		}
		if (!v) {
			if (f->required)
				fail(&c, p, "missing required key '%s'", f->name);
			else
				apply_default(&c, out, f, p);
			continue;
		}
		parse_value(&c, out, f, v, p);
	}

	if (c.nomem) {
		rc = amtprov_error_set(err, AMTPROV_E_NOMEM, base, "out of memory");
	} else if (c.pr->errors > errors_before) {
		size_t more = c.pr->errors - errors_before - 1;

		for (i = first; i < c.pr->count && c.pr->items[i].warning; i++)
			;
		if (more)
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, c.pr->items[i].path,
					       "%s (and %zu more)", c.pr->items[i].msg, more);
		else
			rc = amtprov_error_set(err, AMTPROV_E_CONFIG, c.pr->items[i].path, "%s",
					       c.pr->items[i].msg);
	}
	manifest_problems_free(&local);
	return rc;
}

void config_table_free(const struct amtprov_config_field *table, void *out)
{
	const struct amtprov_config_field *f;

	if (!table || !out)
		return;
	for (f = table; f->name; f++) {
		char ***listp;
		char **sp;
		size_t i;

		switch (f->type) {
		case AMTPROV_CFG_STRING:
		case AMTPROV_CFG_CREDENTIAL:
			sp = (char **)field_ptr(out, f);
			free(*sp);
			*sp = NULL;
			break;
		case AMTPROV_CFG_STRING_LIST:
			listp = (char ***)field_ptr(out, f);
			for (i = 0; *listp && (*listp)[i]; i++)
				free((*listp)[i]);
			free(*listp);
			*listp = NULL;
			break;
		default:
			break;
		}
	}
}
