/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.c - loads and validates a site manifest (format: docs/manifest.md).
 *
 * Validation walks the document once, section by section. Nothing stops at the first
 * problem: every check records into the problem list and carries on, so an operator can fix
 * a manifest in one round instead of one error per run. References between sections (plugin
 * instances, the credential store) are recorded while walking and resolved at the end, when
 * every section has been seen.
 *
 * Strings in struct manifest are borrowed from the Jansson tree, which the manifest keeps
 * alive. Where a value is normalised (lower-cased DNS names, absolute file paths inside the
 * borrowed "ieee8021x" object, an empty "config" object) the tree itself is updated, so that
 * borrowed pointers and the JSON a plugin sees agree.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <amtprov/plugin.h>

#include "amt_password.h"
#include "authz.h"
#include "manifest.h"
#include "manifest_int.h"
#include "store.h"
#include "util.h"

#define PATH_SIZE AMTPROV_ERROR_WHERE_SIZE

/* Limits of the format (docs/manifest.md). */
#define MAX_API_TOKENS 16        /* api.admin_tokens, api.registration_keys */
#define MAX_ACCOUNTS 32          /* amt.user_accounts, credentials.provisioning_accounts */
#define MAX_WIRELESS 16          /* AMT stores at most 16 wireless profiles */
#define MAX_WIRELESS_TEMPLATES 8 /* R-8021X-03 */
#define MAX_SSID_BYTES 32        /* IEEE 802.11 */

/* ------------------------------------------------------------------------------------------ */
/* Problem list and JSON pointers (shared with config_table.c through manifest_int.h)         */
/* ------------------------------------------------------------------------------------------ */

int manifest_problem_addv(struct manifest_problems *p, int warning, const char *path,
			  const char *fmt, va_list ap)
{
	struct manifest_problem *it;

	if (!p)
		return AMTPROV_E_INVALID;
	/* Capacity is implicit: 8, then doubling, so the struct needs no capacity field. */
	if (p->count == 0 || (p->count >= 8 && (p->count & (p->count - 1)) == 0)) {
		size_t cap = p->count ? p->count * 2 : 8;
		struct manifest_problem *n = realloc(p->items, cap * sizeof(*n));

		if (!n)
			return AMTPROV_E_NOMEM;
		p->items = n;
	}
	it = &p->items[p->count];
	snprintf(it->path, sizeof(it->path), "%s", path ? path : "");
	vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
	it->warning = warning ? 1 : 0;
	p->count++;
	if (!warning)
		p->errors++;
	return AMTPROV_OK;
}

int manifest_problem_add(struct manifest_problems *p, int warning, const char *path,
			 const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = manifest_problem_addv(p, warning, path, fmt, ap);
	va_end(ap);
	return rc;
}

void manifest_problems_free(struct manifest_problems *p)
{
	if (!p)
		return;
	free(p->items);
	p->items = NULL;
	p->count = 0;
	p->errors = 0;
}

void manifest_problems_print(const struct manifest_problems *p, const char *file, FILE *out)
{
	size_t i;

	if (!p || !out)
		return;
	for (i = 0; i < p->count; i++) {
		const struct manifest_problem *it = &p->items[i];

		fprintf(out, "%s: %s: %s%s\n", file ? file : "manifest",
			it->path[0] ? it->path : "(document)", it->warning ? "warning: " : "",
			it->msg);
	}
}

void manifest_path_key(char *buf, size_t size, const char *base, const char *key)
{
	int w;
	size_t n;

	if (!buf || size == 0)
		return;
	w = snprintf(buf, size, "%s/", base ? base : "");
	if (w < 0 || (size_t)w >= size)
		return;
	n = (size_t)w;
	for (; key && *key && n + 1 < size; key++) {
		/* RFC 6901 section 3: '~' and '/' are the only characters that need escaping. */
		if (*key == '~' || *key == '/') {
			if (n + 2 >= size)
				break;
			buf[n++] = '~';
			buf[n++] = *key == '~' ? '0' : '1';
		} else {
			buf[n++] = *key;
		}
	}
	buf[n] = '\0';
}

void manifest_path_index(char *buf, size_t size, const char *base, size_t index_)
{
	/* Truncation is acceptable (paths are for people); the return value is checked
	 * only for an encoding error. */
	if (buf && size && snprintf(buf, size, "%s/%zu", base ? base : "", index_) < 0)
		buf[0] = '\0';
}

static int is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_lower_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || is_digit(ch);
}

/* ^[A-Za-z0-9][A-Za-z0-9<extra>]{0,max-1}$ without a regex engine. */
static int name_valid(const char *s, const char *extra, size_t max)
{
	size_t i;

	if (!s || !(is_alpha(s[0]) || is_digit(s[0])))
		return 0;
	for (i = 1; s[i]; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr(extra, s[i]))
			return 0;
	return i <= max;
}

int manifest_credential_name_valid(const char *s)
{
	return name_valid(s, "._/-", 128);
}

const char *manifest_json_type_name(const json_t *v)
{
	if (!v)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real number";
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	case JSON_NULL: return "null";
	}
	return "an unknown JSON value";
}

/* ------------------------------------------------------------------------------------------ */
/* Validation context                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* A place where the manifest names a plugin instance, and the kind that place implies. */
struct ref {
	const char *instance;
	int kind;
	char path[PATH_SIZE];
};

struct vctx {
	struct manifest_problems *pr;
	struct manifest *m;
	int nomem;
	struct ref *refs;
	size_t n_refs, cap_refs;
	int have_cred_ref;
	char cred_path[PATH_SIZE]; /* first place that names a credential */
	int store_key_present;     /* credentials.store was given (valid or not) */
};

static void problem(struct vctx *c, int warning, const char *path, const char *fmt, va_list ap)
	AMTPROV_PRINTF(4, 0);

static void problem(struct vctx *c, int warning, const char *path, const char *fmt, va_list ap)
{
	if (manifest_problem_addv(c->pr, warning, path, fmt, ap) != AMTPROV_OK)
		c->nomem = 1;
}

static void err_at(struct vctx *c, const char *path, const char *fmt, ...) AMTPROV_PRINTF(3, 4);

static void err_at(struct vctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problem(c, 0, path, fmt, ap);
	va_end(ap);
}

static void warn_at(struct vctx *c, const char *path, const char *fmt, ...) AMTPROV_PRINTF(3, 4);

static void warn_at(struct vctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problem(c, 1, path, fmt, ap);
	va_end(ap);
}

static char *dup_str(struct vctx *c, const char *s)
{
	char *d = strdup(s);

	if (!d)
		c->nomem = 1;
	return d;
}

static void *zalloc(struct vctx *c, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		c->nomem = 1;
	return p;
}

/* Removes "." segments and repeated slashes from an absolute path, in place. ".." is kept:
 * resolving it lexically would be wrong when a directory on the way is a symbolic link. */
static void clean_path(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		const char *seg;
		size_t len;

		while (*r == '/')
			r++;
		if (!*r)
			break;
		seg = r;
		while (*r && *r != '/')
			r++;
		len = (size_t)(r - seg);
		if (len == 1 && seg[0] == '.')
			continue;
		*w++ = '/';
		memmove(w, seg, len);
		w += len;
	}
	if (w == s)
		*w++ = '/';
	*w = '\0';
}

/* @p dir + "/" + @p rel, or @p rel when it is absolute; cleaned; malloc'd. */
static char *path_join(const char *dir, const char *rel)
{
	size_t n;
	char *s;

	if (rel[0] == '/') {
		s = strdup(rel);
	} else {
		n = strlen(dir) + strlen(rel) + 2;
		s = malloc(n);
		if (s)
			snprintf(s, n, "%s/%s", dir, rel);
	}
	if (s)
		clean_path(s);
	return s;
}

static char *resolve(struct vctx *c, const char *rel)
{
	char *s = path_join(c->m->dir, rel);

	if (!s)
		c->nomem = 1;
	return s;
}

/* An absolute version of @p name (a file that need not exist); malloc'd or NULL. */
static char *absolute_name(const char *name)
{
	char cwd[PATH_MAX];

	if (name[0] == '/')
		return path_join("/", name);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return path_join(cwd, name);
}

static char *dir_of(const char *abs_file)
{
	const char *slash = strrchr(abs_file, '/');
	size_t len = slash ? (size_t)(slash - abs_file) : 0;
	char *d;

	if (len == 0)
		return strdup("/");
	d = malloc(len + 1);
	if (d) {
		memcpy(d, abs_file, len);
		d[len] = '\0';
	}
	return d;
}

/* ------------------------------------------------------------------------------------------ */
/* Typed getters: each reports what is wrong with obj[key] at its JSON path                   */
/* ------------------------------------------------------------------------------------------ */

static void check_keys(struct vctx *c, json_t *obj, const char *path,
		       const char *const *allowed)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val) {
		char p[PATH_SIZE], list[AMTPROV_ERROR_MSG_SIZE];
		size_t i, n = 0;
		int known = 0;

		(void)val;
		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], key) == 0)
				known = 1;
		if (known)
			continue;
		list[0] = '\0';
		for (i = 0; allowed[i] && n < sizeof(list); i++) {
			int w = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
					 allowed[i]);

			if (w < 0)
				break;
			n += (size_t)w;
		}
		manifest_path_key(p, sizeof(p), path, key);
		err_at(c, p, "unknown key '%s' (allowed here: %s)", key, list);
	}
}

/* obj[key] as an object; NULL when absent or of another type (reported). @p sub receives the
 * key's path. */
static json_t *get_object(struct vctx *c, json_t *obj, const char *path, const char *key,
			  int required, char *sub)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;

	manifest_path_key(sub, PATH_SIZE, path, key);
	if (!v) {
		if (required)
			err_at(c, sub, "missing required key '%s'", key);
		return NULL;
	}
	if (!json_is_object(v)) {
		err_at(c, sub, "must be an object, not %s", manifest_json_type_name(v));
		return NULL;
	}
	return v;
}

static json_t *get_array(struct vctx *c, json_t *obj, const char *path, const char *key,
			 int required, char *sub)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;

	manifest_path_key(sub, PATH_SIZE, path, key);
	if (!v) {
		if (required)
			err_at(c, sub, "missing required key '%s'", key);
		return NULL;
	}
	if (!json_is_array(v)) {
		err_at(c, sub, "must be an array, not %s", manifest_json_type_name(v));
		return NULL;
	}
	return v;
}

/* Checks that @p v (at @p p) is a non-empty string without NUL bytes. */
static int string_ok(struct vctx *c, json_t *v, const char *p)
{
	if (!json_is_string(v)) {
		err_at(c, p, "must be a string, not %s", manifest_json_type_name(v));
		return 0;
	}
	if (json_string_length(v) == 0) {
		err_at(c, p, "must not be empty");
		return 0;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		err_at(c, p, "must not contain a NUL character");
		return 0;
	}
	return 1;
}

/* obj[key] as a non-empty string. Returns the JSON node (so callers may normalise it in the
 * tree) and sets *out, or NULL when absent or invalid (reported). */
static json_t *get_string(struct vctx *c, json_t *obj, const char *path, const char *key,
			  int required, const char **out)
{
	char p[PATH_SIZE];
	json_t *v = obj ? json_object_get(obj, key) : NULL;

	manifest_path_key(p, sizeof(p), path, key);
	if (!v) {
		if (required)
			err_at(c, p, "missing required key '%s'", key);
		return NULL;
	}
	if (!string_ok(c, v, p))
		return NULL;
	if (out)
		*out = json_string_value(v);
	return v;
}

/* obj[key] as an integer in [min, max]; *out keeps its default when absent.
 * Returns 1 when the key was present and valid. */
static int get_int(struct vctx *c, json_t *obj, const char *path, const char *key,
		   long long min, long long max, int *out)
{
	char p[PATH_SIZE];
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	long long x;

	if (!v)
		return 0;
	manifest_path_key(p, sizeof(p), path, key);
	if (!json_is_integer(v)) {
		err_at(c, p, "must be an integer, not %s", manifest_json_type_name(v));
		return 0;
	}
	x = (long long)json_integer_value(v);
	if (x < min || x > max) {
		err_at(c, p, "must be from %lld to %lld, not %lld", min, max, x);
		return 0;
	}
	*out = (int)x;
	return 1;
}

static int get_bool(struct vctx *c, json_t *obj, const char *path, const char *key, int *out)
{
	char p[PATH_SIZE];
	json_t *v = obj ? json_object_get(obj, key) : NULL;

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		manifest_path_key(p, sizeof(p), path, key);
		err_at(c, p, "must be true or false, not %s", manifest_json_type_name(v));
		return 0;
	}
	*out = json_is_true(v) ? 1 : 0;
	return 1;
}

/* obj[key] as one of @p names; returns its index, -1 when absent or invalid (reported). */
static int get_enum(struct vctx *c, json_t *obj, const char *path, const char *key,
		    int required, const char *const *names, const char **out)
{
	char p[PATH_SIZE], list[AMTPROV_ERROR_MSG_SIZE];
	const char *s = NULL;
	size_t n = 0;
	int i;

	if (!get_string(c, obj, path, key, required, &s))
		return -1;
	for (i = 0; names[i]; i++) {
		if (strcmp(names[i], s) == 0) {
			if (out)
				*out = names[i];
			return i;
		}
	}
	list[0] = '\0';
	for (i = 0; names[i] && n < sizeof(list); i++) {
		int w = snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "", names[i]);

		if (w < 0)
			break;
		n += (size_t)w;
	}
	manifest_path_key(p, sizeof(p), path, key);
	err_at(c, p, "'%s' is not one of %s", s, list);
	return -1;
}

static void add_ref(struct vctx *c, const char *instance, int kind, const char *path)
{
	struct ref *r;

	if (c->n_refs == c->cap_refs) {
		size_t cap = c->cap_refs ? c->cap_refs * 2 : 16;
		struct ref *n = realloc(c->refs, cap * sizeof(*n));

		if (!n) {
			c->nomem = 1;
			return;
		}
		c->refs = n;
		c->cap_refs = cap;
	}
	r = &c->refs[c->n_refs++];
	r->instance = instance;
	r->kind = kind;
	snprintf(r->path, sizeof(r->path), "%s", path);
}

static int instance_name_valid(const char *s)
{
	size_t i;

	if (!s || !is_lower_alnum(s[0]))
		return 0;
	for (i = 1; s[i]; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return i <= 48;
}

/* obj[key] names a plugin instance of @p kind: checked now, resolved in resolve_refs(). */
static int get_instance(struct vctx *c, json_t *obj, const char *path, const char *key,
			int required, int kind, const char **out)
{
	char p[PATH_SIZE];
	const char *s;

	if (!get_string(c, obj, path, key, required, &s))
		return 0;
	manifest_path_key(p, sizeof(p), path, key);
	if (!instance_name_valid(s)) {
		err_at(c, p, "'%s' is not a valid plugin instance name "
			     "(^[a-z0-9][a-z0-9_-]{0,47}$)", s);
		return 0;
	}
	add_ref(c, s, kind, p);
	if (out)
		*out = s;
	return 1;
}

static void note_credential(struct vctx *c, const char *path)
{
	if (c->have_cred_ref)
		return;
	c->have_cred_ref = 1;
	snprintf(c->cred_path, sizeof(c->cred_path), "%s", path);
}

static int cred_check(struct vctx *c, const char *s, const char *p)
{
	if (!manifest_credential_name_valid(s)) {
		err_at(c, p, "'%s' is not a valid credential name "
			     "(^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$)", s);
		return 0;
	}
	note_credential(c, p);
	return 1;
}

/* obj[key] is the name of a credential record (never a secret itself: R-ACC-02). */
static int get_credential(struct vctx *c, json_t *obj, const char *path, const char *key,
			  int required, const char **out)
{
	char p[PATH_SIZE];
	const char *s;

	if (!get_string(c, obj, path, key, required, &s))
		return 0;
	manifest_path_key(p, sizeof(p), path, key);
	if (!cred_check(c, s, p))
		return 0;
	if (out)
		*out = s;
	return 1;
}

/* obj[key] is a file path; *out receives it resolved against the manifest's directory. */
static int get_file(struct vctx *c, json_t *obj, const char *path, const char *key,
		    int required, char **out)
{
	const char *s;

	if (!get_string(c, obj, path, key, required, &s))
		return 0;
	free(*out);
	*out = resolve(c, s);
	return *out != NULL;
}

/* Remembers that the file at @p abs_path (named at path/key) is read by the site. */
static void note_input(struct vctx *c, const char *path, const char *key, const char *abs_path)
{
	struct manifest *m = c->m;
	struct manifest_input *n;

	if (!abs_path)
		return;
	n = realloc(m->inputs, (m->n_inputs + 1) * sizeof(*n));
	if (!n || !(n[m->n_inputs].file = strdup(abs_path))) {
		if (n)
			m->inputs = n;
		c->nomem = 1;
		return;
	}
	manifest_path_key(n[m->n_inputs].path, PATH_SIZE, path, key);
	n[m->n_inputs].secret = 0;
	m->inputs = n;
	m->n_inputs++;
}

/* get_file() for a file the site reads: manifest_check_inputs() checks it is there. */
static int get_input_file(struct vctx *c, json_t *obj, const char *path, const char *key,
			  int required, char **out)
{
	if (!get_file(c, obj, path, key, required, out))
		return 0;
	note_input(c, path, key, *out);
	return 1;
}

/* Same, for a path inside an object plugins read as JSON: the tree gets the absolute path. */
static void get_file_in_tree(struct vctx *c, json_t *obj, const char *path, const char *key)
{
	const char *s;
	json_t *v = get_string(c, obj, path, key, 0, &s);
	char *abs_path;

	if (!v)
		return;
	abs_path = resolve(c, s);
	if (abs_path && json_string_set(v, abs_path) != 0)
		c->nomem = 1;
	note_input(c, path, key, abs_path);
	free(abs_path);
}

/* ------------------------------------------------------------------------------------------ */
/* DNS names                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* NULL when @p s is an LDH DNS name of at least @p min_labels labels, else the reason. */
static const char *dns_name_problem(const char *s, int min_labels)
{
	size_t len = strlen(s);
	const char *start = s, *q;
	int labels = 0, numeric = 1;

	if (len > 253)
		return "it is longer than 253 characters";
	if (len > 0 && s[len - 1] == '.')
		return "it must not end with a dot";
	for (q = s;; q++) {
		if (*q == '.' || *q == '\0') {
			size_t l = (size_t)(q - start);

			if (l == 0)
				return "it has an empty label";
			if (l > 63)
				return "it has a label longer than 63 characters";
			if (start[0] == '-' || q[-1] == '-')
				return "a label starts or ends with '-'";
			labels++;
			if (*q == '\0')
				break;
			start = q + 1;
			numeric = 1;
		} else if (is_digit(*q)) {
			continue;
		} else if (is_alpha(*q) || *q == '-') {
			numeric = 0;
		} else {
			return "only letters, digits, '-' and '.' are allowed";
		}
	}
	if (labels < min_labels)
		return min_labels == 2 ? "it needs at least two labels (name.domain)"
				       : "it has too few labels";
	if (numeric)
		return "the last label is all digits (an IP address is not a DNS name)";
	return NULL;
}

/* Lower-cases a string node in the tree (DNS is case-insensitive; AMT compares names
 * byte-wise, so amtprov always hands out one spelling) and returns the new value. */
static const char *lower_in_tree(struct vctx *c, json_t *str)
{
	char *copy = dup_str(c, json_string_value(str));
	char *q;

	if (!copy)
		return json_string_value(str);
	for (q = copy; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	if (json_string_set(str, copy) != 0)
		c->nomem = 1;
	free(copy);
	return json_string_value(str);
}

/* The last two labels of a lower-case DNS name; "" when there are fewer. */
static const char *last_two_labels(const char *s)
{
	const char *last = strrchr(s, '.');
	const char *q;

	if (!last)
		return "";
	for (q = last - 1; q >= s; q--)
		if (*q == '.')
			return q + 1;
	return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Sections                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* site.fqdn_patterns: lower-case globs, each a name below dns_suffix whose wildcards are in
 * the labels before it (the suffix itself is literal). */
static void parse_fqdn_patterns(struct vctx *c, json_t *site, const char *p)
{
	char ap[PATH_SIZE];
	json_t *arr = get_array(c, site, p, "fqdn_patterns", 0, ap), *v;
	size_t i;

	if (!arr)
		return;
	if (json_array_size(arr) == 0)
		err_at(c, ap, "must hold at least one pattern (or leave the key out)");
	c->m->fqdn_patterns = zalloc(c, json_array_size(arr) + 1, sizeof(*c->m->fqdn_patterns));
	if (!c->m->fqdn_patterns)
		return;
	json_array_foreach(arr, i, v) {
		char ip[PATH_SIZE];
		const char *s, *q;
		size_t len, sl;

		manifest_path_index(ip, sizeof(ip), ap, i);
		if (!string_ok(c, v, ip))
			continue;
		s = lower_in_tree(c, v);
		for (q = s; *q; q++)
			if (!is_alpha(*q) && !is_digit(*q) && !strchr("-.*?", *q))
				break;
		if (*q) {
			err_at(c, ip, "'%s': only letters, digits, '-', '.', '*' and '?' are allowed",
			       s);
			continue;
		}
		if (!c->m->dns_suffix)
			continue; /* its own error */
		len = strlen(s);
		sl = strlen(c->m->dns_suffix);
		/* The CA must only ever see names of the site's domain (R-PC-05). */
		if (len <= sl + 1 || s[len - sl - 1] != '.' || strcmp(s + len - sl, c->m->dns_suffix) ||
		    s[0] == '.' || strstr(s, "..")) {
			err_at(c, ip, "'%s' is not a name pattern below the DNS suffix '%s' (like "
				      "'pc-*.%s')", s, c->m->dns_suffix, c->m->dns_suffix);
			continue;
		}
		c->m->fqdn_patterns[c->m->n_fqdn_patterns++] = s;
	}
}

static void parse_site(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"name", "service_point_fqdn", "dns_suffix",
					   "fqdn_patterns", "description", NULL};
	char p[PATH_SIZE], kp[PATH_SIZE];
	json_t *site = get_object(c, root, "", "site", 1, p), *v;
	const char *s, *why;

	if (!site)
		return;
	check_keys(c, site, p, keys);
	if (get_string(c, site, p, "name", 1, &s)) {
		if (!name_valid(s, "._-", 64)) {
			manifest_path_key(kp, sizeof(kp), p, "name");
			err_at(c, kp, "'%s' is not a valid site name "
				      "(^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)", s);
		} else {
			c->m->site_name = s;
		}
	}
	v = get_string(c, site, p, "service_point_fqdn", 1, &s);
	if (v) {
		manifest_path_key(kp, sizeof(kp), p, "service_point_fqdn");
		why = dns_name_problem(s, 2);
		if (why)
			err_at(c, kp, "'%s' is not a fully qualified domain name: %s (R-PC-02)", s,
			       why);
		else
			c->m->service_point_fqdn = lower_in_tree(c, v);
	}
	v = get_string(c, site, p, "dns_suffix", 1, &s);
	if (v) {
		manifest_path_key(kp, sizeof(kp), p, "dns_suffix");
		why = dns_name_problem(s, 2);
		if (why)
			err_at(c, kp, "'%s' is not a DNS domain: %s", s, why);
		else
			c->m->dns_suffix = lower_in_tree(c, v);
	}
	get_string(c, site, p, "description", 0, NULL);
	parse_fqdn_patterns(c, site, p);

	/* R-PC-05: AMT refuses a provisioning certificate whose CN is outside the devices' DNS
	 * tree. Sharing the last two labels is the weakest form of a shared namespace. */
	if (c->m->service_point_fqdn && c->m->dns_suffix &&
	    strcmp(last_two_labels(c->m->service_point_fqdn),
		   last_two_labels(c->m->dns_suffix)) != 0) {
		manifest_path_key(kp, sizeof(kp), p, "service_point_fqdn");
		warn_at(c, kp, "'%s' and the DNS suffix '%s' share no namespace: AMT devices will "
			       "refuse the provisioning certificate (R-PC-05)",
			c->m->service_point_fqdn, c->m->dns_suffix);
	}
}

/* database.url: a shared PostgreSQL site database (docs/database.md), instead of path. */
static void parse_database_url(struct vctx *c, json_t *db, const char *path, const char **url)
{
	char p[PATH_SIZE], why[256];

	if (!get_string(c, db, path, "url", 0, url))
		return;
	manifest_path_key(p, sizeof(p), path, "url");
	if (c->m->database_path) {
		err_at(c, p, "give either 'path' (SQLite) or 'url' (PostgreSQL), not both");
	} else if (!store_is_pg_url(*url)) {
		err_at(c, p, "not a PostgreSQL connection string (postgresql://HOST/DB or "
			     "'host=... dbname=...')");
	} else if (store_pg_url_check(*url, why, sizeof(why)) != 0) {
		/* why never quotes the URL: it may hold the password being refused. */
		err_at(c, p, "%s", why);
	} else if (!(c->m->database_path = strdup(*url))) {
		c->nomem = 1;
	}
}

static void parse_storage(struct vctx *c, json_t *root)
{
	static const char *const db_keys[] = {"path", "url", "password_file", NULL};
	char p[PATH_SIZE];
	json_t *db, *arr, *v;
	size_t i, n;
	const char *url = NULL;

	if (!get_file(c, root, "", "state_dir", 0, &c->m->state_dir))
		c->m->state_dir = resolve(c, "state");

	db = get_object(c, root, "", "database", 0, p);
	if (db) {
		check_keys(c, db, p, db_keys);
		get_file(c, db, p, "path", 0, &c->m->database_path);
		parse_database_url(c, db, p, &url);
		if (get_input_file(c, db, p, "password_file", 0, &c->m->database_password_file)) {
			struct manifest_input *in = c->m->n_inputs ? &c->m->inputs[c->m->n_inputs - 1]
								   : NULL;

			if (in && !strcmp(in->file, c->m->database_password_file))
				in->secret = 1;
			if (!url)
				err_at(c, "/database/password_file",
				       "is for a PostgreSQL database: give it with 'url'");
		}
	}
	if (!c->m->database_path && c->m->state_dir)
		c->m->database_path = path_join(c->m->state_dir, "site.db");
	if (!c->m->database_path)
		c->nomem = 1;

	arr = get_array(c, root, "", "plugin_path", 0, p);
	n = arr ? json_array_size(arr) : 0;
	c->m->plugin_path = zalloc(c, n + 1, sizeof(char *));
	if (!c->m->plugin_path)
		return;
	json_array_foreach(arr, i, v) {
		char ip[PATH_SIZE];
		size_t k = 0;
		char *d;

		manifest_path_index(ip, sizeof(ip), p, i);
		if (!string_ok(c, v, ip))
			continue;
		d = resolve(c, json_string_value(v));
		if (!d)
			return;
		while (c->m->plugin_path[k])
			k++;
		c->m->plugin_path[k] = d;
	}
}

static void parse_plugins(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"plugin", "required", "config", NULL};
	char p[PATH_SIZE];
	json_t *plugins = get_object(c, root, "", "plugins", 0, p), *val;
	const char *key;

	c->m->plugins = zalloc(c, plugins ? json_object_size(plugins) : 0,
			       sizeof(*c->m->plugins));
	if (!c->m->plugins || !plugins)
		return;
	json_object_foreach(plugins, key, val) {
		struct manifest_plugin *pl = &c->m->plugins[c->m->n_plugins];
		char ip[PATH_SIZE], kp[PATH_SIZE];
		const char *stem;
		json_t *cfg;

		manifest_path_key(ip, sizeof(ip), p, key);
		if (!instance_name_valid(key))
			err_at(c, ip, "'%s' is not a valid plugin instance name "
				      "(^[a-z0-9][a-z0-9_-]{0,47}$)", key);
		if (!json_is_object(val)) {
			err_at(c, ip, "must be an object, not %s", manifest_json_type_name(val));
			continue;
		}
		check_keys(c, val, ip, keys);
		/* Keys live in the object's hash table, which the manifest keeps alive. */
		pl->instance = key;
		pl->required = 1;
		if (get_string(c, val, ip, "plugin", 1, &stem)) {
			if (!instance_name_valid(stem)) {
				manifest_path_key(kp, sizeof(kp), ip, "plugin");
				err_at(c, kp, "'%s' is not a valid plugin name "
					      "(^[a-z0-9][a-z0-9_-]{0,47}$, the file stem)", stem);
			}
			pl->plugin = stem;
		}
		get_bool(c, val, ip, "required", &pl->required);
		cfg = json_object_get(val, "config");
		if (cfg && !json_is_object(cfg)) {
			manifest_path_key(kp, sizeof(kp), ip, "config");
			err_at(c, kp, "must be an object, not %s", manifest_json_type_name(cfg));
		} else if (!cfg) {
			/* Plugins always get an object; keep it in the tree so the borrow lives as
			 * long as the manifest. */
			if (json_object_set_new(val, "config", json_object()) != 0)
				c->nomem = 1;
			cfg = json_object_get(val, "config");
		}
		pl->config = cfg;
		c->m->n_plugins++;
	}
}

static void parse_credentials(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"store", "mebx_password", "provisioning_accounts",
					   NULL};
	static const char *const acc_keys[] = {"user", "password", NULL};
	char p[PATH_SIZE], ap[PATH_SIZE];
	json_t *cr = get_object(c, root, "", "credentials", 0, p), *arr = NULL, *v;
	size_t i, n;

	if (cr) {
		check_keys(c, cr, p, keys);
		c->store_key_present = json_object_get(cr, "store") != NULL;
		get_instance(c, cr, p, "store", 0, AMTPROV_KIND_CREDSTORE, &c->m->credstore);
		get_credential(c, cr, p, "mebx_password", 0, &c->m->mebx_password);
		arr = get_array(c, cr, p, "provisioning_accounts", 0, ap);
	}
	if (!cr || !json_object_get(cr, "provisioning_accounts")) {
		/* R-PROV-09: with nothing configured, try AMT's factory account only. */
		c->m->prov_accounts = zalloc(c, 1, sizeof(*c->m->prov_accounts));
		if (c->m->prov_accounts) {
			c->m->prov_accounts[0].user = "admin";
			c->m->n_prov_accounts = 1;
		}
		return;
	}
	if (!arr)
		return;
	n = json_array_size(arr);
	if (n == 0)
		err_at(c, ap, "must list at least one account (R-PROV-09)");
	if (n > MAX_ACCOUNTS)
		err_at(c, ap, "lists %zu accounts; at most %d are allowed", n, MAX_ACCOUNTS);
	c->m->prov_accounts = zalloc(c, n, sizeof(*c->m->prov_accounts));
	if (!c->m->prov_accounts)
		return;
	json_array_foreach(arr, i, v) {
		struct manifest_prov_account *a = &c->m->prov_accounts[c->m->n_prov_accounts];
		char ip[PATH_SIZE];
		json_t *pw;

		manifest_path_index(ip, sizeof(ip), ap, i);
		if (!json_is_object(v)) {
			err_at(c, ip, "must be an object, not %s", manifest_json_type_name(v));
			continue;
		}
		check_keys(c, v, ip, acc_keys);
		get_string(c, v, ip, "user", 1, &a->user);
		pw = json_object_get(v, "password");
		/* null is allowed and means the empty password (a factory-fresh AMT 2.x-5.x). */
		if (pw && !json_is_null(pw))
			get_credential(c, v, ip, "password", 0, &a->password);
		c->m->n_prov_accounts++;
	}
}

static void parse_provcert(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"certificate", "key", "pkcs12", "pkcs12_password",
					   NULL};
	char p[PATH_SIZE], kp[PATH_SIZE];
	json_t *pc = get_object(c, root, "", "provisioning_certificate", 0, p);
	int has_cert, has_p12;

	if (!pc)
		return;
	check_keys(c, pc, p, keys);
	get_input_file(c, pc, p, "certificate", 0, &c->m->provcert_file);
	get_input_file(c, pc, p, "key", 0, &c->m->provcert_key_file);
	get_input_file(c, pc, p, "pkcs12", 0, &c->m->provcert_pkcs12_file);
	get_credential(c, pc, p, "pkcs12_password", 0, &c->m->provcert_pkcs12_password);
	has_cert = json_object_get(pc, "certificate") != NULL;
	has_p12 = json_object_get(pc, "pkcs12") != NULL;
	if (has_cert && has_p12)
		err_at(c, p, "'certificate' and 'pkcs12' are mutually exclusive: name the "
			     "provisioning certificate one way only (R-PC-07)");
	else if (!has_cert && !has_p12)
		err_at(c, p, "needs either 'certificate' (PEM chain, leaf first) or 'pkcs12'");
	if (json_object_get(pc, "key") && !has_cert) {
		manifest_path_key(kp, sizeof(kp), p, "key");
		err_at(c, kp, "'key' belongs with 'certificate'");
	}
	if (json_object_get(pc, "pkcs12_password") && !has_p12) {
		manifest_path_key(kp, sizeof(kp), p, "pkcs12_password");
		err_at(c, kp, "'pkcs12_password' belongs with 'pkcs12'");
	}
}

/* {"ca", "template", "key_bits", "key_source"}: the CA instance is required. */
static void parse_ca_ref(struct vctx *c, json_t *obj, const char *p, struct manifest_ca_ref *r)
{
	static const char *const keys[] = {"ca", "template", "key_bits", "key_source", NULL};
	/* Index = enum manifest_key_source. */
	static const char *const sources[] = {"auto", "amt", "amtprov", NULL};
	char kp[PATH_SIZE];
	int bits = 2048, source;

	check_keys(c, obj, p, keys);
	get_instance(c, obj, p, "ca", 1, AMTPROV_KIND_CA, &r->ca);
	get_string(c, obj, p, "template", 0, &r->template_name);
	if (get_int(c, obj, p, "key_bits", 2048, 4096, &bits) && bits != 2048 && bits != 3072 &&
	    bits != 4096) {
		manifest_path_key(kp, sizeof(kp), p, "key_bits");
		err_at(c, kp, "must be 2048, 3072 or 4096, not %d", bits);
		bits = 2048;
	}
	r->key_bits = bits;
	source = get_enum(c, obj, p, "key_source", 0, sources, NULL);
	r->key_source = source < 0 ? MANIFEST_KEY_AUTO : source;
}

/* certificates.amt_crypto_policy: [{"amt_from": 22, "key_bits": 3072, "digest": "sha384"}] */
static void parse_crypto_policy(struct vctx *c, json_t *certs, const char *p)
{
	static const char *const keys[] = {"amt_from", "key_bits", "digest", NULL};
	/* SHA-1 is refused by every firmware these rules are for. */
	static const char *const digests[] = {"sha256", "sha384", NULL};
	char ap[PATH_SIZE], ep[PATH_SIZE], kp[PATH_SIZE];
	json_t *arr = get_array(c, certs, p, "amt_crypto_policy", 0, ap), *v;
	size_t i;

	if (!arr)
		return;
	c->m->n_crypto_rules = 0;
	if (json_array_size(arr) > MANIFEST_MAX_CRYPTO_RULES) {
		err_at(c, ap, "at most %d rules", MANIFEST_MAX_CRYPTO_RULES);
		return;
	}
	json_array_foreach(arr, i, v) {
		struct manifest_crypto_rule *r = &c->m->crypto_rules[c->m->n_crypto_rules];
		int d;

		manifest_path_index(ep, sizeof(ep), ap, i);
		if (!json_is_object(v)) {
			err_at(c, ep, "must be an object, not %s", manifest_json_type_name(v));
			continue;
		}
		check_keys(c, v, ep, keys);
		r->amt_from = 0;
		r->key_bits = 2048;
		if (!get_int(c, v, ep, "amt_from", 1, 99, &r->amt_from)) {
			manifest_path_key(kp, sizeof(kp), ep, "amt_from");
			if (!json_object_get(v, "amt_from"))
				err_at(c, kp, "missing required key 'amt_from' (an AMT major version)");
			continue;
		}
		if (get_int(c, v, ep, "key_bits", 2048, 4096, &r->key_bits) && r->key_bits != 2048 &&
		    r->key_bits != 3072 && r->key_bits != 4096) {
			manifest_path_key(kp, sizeof(kp), ep, "key_bits");
			err_at(c, kp, "must be 2048, 3072 or 4096, not %d", r->key_bits);
			continue;
		}
		d = get_enum(c, v, ep, "digest", 0, digests, NULL);
		r->digest_bits = d == 1 ? 384 : 256;
		c->m->n_crypto_rules++;
	}
}

static void parse_certificates(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"web_server", "amt_crypto_policy", NULL};
	char p[PATH_SIZE], wp[PATH_SIZE];
	json_t *certs = get_object(c, root, "", "certificates", 0, p), *ws;

	if (!certs)
		return;
	check_keys(c, certs, p, keys);
	ws = get_object(c, certs, p, "web_server", 0, wp);
	if (ws)
		parse_ca_ref(c, ws, wp, &c->m->web_server); /* R-WS-01 */
	parse_crypto_policy(c, certs, p);
}

void manifest_crypto_for(const struct manifest *m, const char *amt_version, int base_bits,
			 int *bits, int *digest_bits)
{
	int major = 0;

	*bits = base_bits > 0 ? base_bits : 2048;
	*digest_bits = 256;
	if (!amt_version || sscanf(amt_version, "%d", &major) != 1)
		return;
	for (size_t i = 0; i < m->n_crypto_rules; i++) {
		const struct manifest_crypto_rule *r = &m->crypto_rules[i];

		if (major < r->amt_from)
			continue;
		if (r->key_bits > *bits)
			*bits = r->key_bits;
		if (r->digest_bits > *digest_bits)
			*digest_bits = r->digest_bits;
	}
}

static const char *const realm_names[] = {
	"redirection", "pt-administration", "hardware-asset", "remote-control", "storage",
	"event-manager", "storage-admin", "agent-presence-local", "agent-presence-remote",
	"circuit-breaker", "network-time", "general-info", "firmware-update", "eit",
	"local-apps", "endpoint-access-control", "endpoint-access-control-admin",
	"event-log-reader", "audit-log", "acl-realm", "local-system", NULL};

static void parse_realms(struct vctx *c, json_t *acc, const char *ap,
			 struct manifest_amt_account *a)
{
	char rp[PATH_SIZE];
	json_t *arr = get_array(c, acc, ap, "realms", 1, rp), *v;
	const char **realms;
	size_t i, j, n, k = 0;

	if (!arr)
		return;
	n = json_array_size(arr);
	if (n == 0) {
		err_at(c, rp, "must list at least one realm (R-PROV-11)");
		return;
	}
	realms = zalloc(c, n + 1, sizeof(*realms));
	if (!realms)
		return;
	a->realms = realms;
	json_array_foreach(arr, i, v) {
		char ip[PATH_SIZE];
		const char *s;
		int known = 0, dup = 0;

		manifest_path_index(ip, sizeof(ip), rp, i);
		if (!string_ok(c, v, ip))
			continue;
		s = json_string_value(v);
		for (j = 0; realm_names[j]; j++)
			if (strcmp(realm_names[j], s) == 0)
				known = 1;
		for (j = 0; j < k; j++)
			if (strcmp(realms[j], s) == 0)
				dup = 1;
		if (!known)
			err_at(c, ip, "unknown AMT realm '%s'", s);
		else if (dup)
			err_at(c, ip, "realm '%s' is listed twice", s);
		else
			realms[k++] = s;
	}
}

static void parse_user_accounts(struct vctx *c, json_t *amt, const char *path)
{
	static const char *const keys[] = {"name", "kerberos", "password", "realms", "access",
					   NULL};
	static const char *const access[] = {"network", "local", "any", NULL};
	char up[PATH_SIZE];
	json_t *arr = get_array(c, amt, path, "user_accounts", 0, up), *v;
	size_t i, j, n;

	if (!arr)
		return;
	n = json_array_size(arr);
	if (n > MAX_ACCOUNTS)
		err_at(c, up, "lists %zu accounts; at most %d are allowed", n, MAX_ACCOUNTS);
	c->m->amt_accounts = zalloc(c, n, sizeof(*c->m->amt_accounts));
	if (!c->m->amt_accounts)
		return;
	json_array_foreach(arr, i, v) {
		struct manifest_amt_account *a = &c->m->amt_accounts[c->m->n_amt_accounts];
		char ap[PATH_SIZE], kp[PATH_SIZE];

		manifest_path_index(ap, sizeof(ap), up, i);
		if (!json_is_object(v)) {
			err_at(c, ap, "must be an object, not %s", manifest_json_type_name(v));
			continue;
		}
		c->m->n_amt_accounts++;
		check_keys(c, v, ap, keys);
		a->kerberos = 1;
		a->access = "any";
		if (get_string(c, v, ap, "name", 1, &a->name)) {
			for (j = 0; j + 1 < c->m->n_amt_accounts; j++) {
				if (c->m->amt_accounts[j].name &&
				    strcmp(c->m->amt_accounts[j].name, a->name) == 0) {
					manifest_path_key(kp, sizeof(kp), ap, "name");
					err_at(c, kp, "account '%s' is already defined at %s/%zu",
					       a->name, up, j);
					break;
				}
			}
		}
		get_bool(c, v, ap, "kerberos", &a->kerberos);
		if (a->kerberos) {
			if (json_object_get(v, "password")) {
				manifest_path_key(kp, sizeof(kp), ap, "password");
				err_at(c, kp, "a Kerberos account has no password (remove "
					      "it, or set \"kerberos\": false for a Digest "
					      "account)");
			}
		} else {
			get_credential(c, v, ap, "password", 1, &a->password);
		}
		parse_realms(c, v, ap, a);
		get_enum(c, v, ap, "access", 0, access, &a->access);
	}
}

/* Kerberos in AMT uses the keys of the device's directory account, and names in
 * user_accounts are resolved to SIDs through the directory (R-ACC-01). */
static void check_kerberos(struct vctx *c, json_t *amt, const char *p)
{
	char kp[PATH_SIZE], ap[PATH_SIZE];

	if (json_object_get(amt, "directory"))
		return;
	if (c->m->kerberos == 1) {
		manifest_path_key(kp, sizeof(kp), p, "kerberos");
		err_at(c, kp, "needs 'directory' (AMT's Kerberos key is derived from the "
			      "device's directory account, R-ACC-01)");
	}
	for (size_t i = 0; i < c->m->n_amt_accounts; i++) {
		const struct manifest_amt_account *a = &c->m->amt_accounts[i];

		if (!a->kerberos || !a->name || !strncmp(a->name, "S-1-", 4))
			continue;
		manifest_path_key(kp, sizeof(kp), p, "user_accounts");
		manifest_path_index(ap, sizeof(ap), kp, i);
		manifest_path_key(kp, sizeof(kp), ap, "name");
		err_at(c, kp, "a Windows user or group name is resolved to its SID through "
			      "'directory'; without one give the SID (S-1-5-21-...)");
	}
}

static void parse_amt(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {
		"transport", "directory", "directory_container", "mebx_password_policy",
		"admin_password_length", "user_accounts", "kerberos", "power_policy", "web_ui",
		"serial_over_lan", "ide_redirection", "ping", NULL};
	static const char *const policies[] = {"never", "if-default", "always", NULL};
	static const char *const power[] = {"always-on", "on-in-s0", "on-in-s0-s3",
					    "on-in-s0-s3-s4-5", NULL};
	char p[PATH_SIZE], kp[PATH_SIZE];
	json_t *amt = get_object(c, root, "", "amt", 0, p);
	int policy = -1;

	if (amt) {
		check_keys(c, amt, p, keys);
		get_instance(c, amt, p, "transport", 0, AMTPROV_KIND_TRANSPORT, &c->m->transport);
		get_instance(c, amt, p, "directory", 0, AMTPROV_KIND_DIRECTORY, &c->m->directory);
		if (get_string(c, amt, p, "directory_container", 0, &c->m->directory_container) &&
		    !json_object_get(amt, "directory")) {
			manifest_path_key(kp, sizeof(kp), p, "directory_container");
			err_at(c, kp, "needs 'directory' (the directory plugin instance "
				      "that creates the account, R-PROV-04)");
		}
		policy = get_enum(c, amt, p, "mebx_password_policy", 0, policies, NULL);
		if (policy > 0 && !c->m->mebx_password) {
			manifest_path_key(kp, sizeof(kp), p, "mebx_password_policy");
			err_at(c, kp, "policy '%s' needs credentials.mebx_password (R-PROV-10)",
			       policies[policy]);
		}
		get_int(c, amt, p, "admin_password_length", AMT_PASSWORD_MIN, AMT_PASSWORD_MAX,
			&c->m->admin_password_length);
		parse_user_accounts(c, amt, p);
		get_bool(c, amt, p, "kerberos", &c->m->kerberos);
		check_kerberos(c, amt, p);
		get_enum(c, amt, p, "power_policy", 0, power, &c->m->power_policy);
		get_bool(c, amt, p, "web_ui", &c->m->web_ui);
		get_bool(c, amt, p, "serial_over_lan", &c->m->sol);
		get_bool(c, amt, p, "ide_redirection", &c->m->ider);
		get_bool(c, amt, p, "ping", &c->m->ping);
	}
	/* Without the key the default is "if-default", which only means something when there is
	 * a MEBx password to set; with none configured the only possible policy is "never". */
	if (policy < 0)
		policy = c->m->mebx_password ? 1 : 0;
	c->m->mebx_policy = policy;
}

/* ------------------------------------------------------------------------------------------ */
/* 802.1X                                                                                     */
/* ------------------------------------------------------------------------------------------ */

#define DEFAULT_TEMPLATE "(CA default)"

struct prof {
	const char *name;
	const char *template_name; /* DEFAULT_TEMPLATE when the CA's default is used */
	int has_cert;
};

static void add_distinct(const char **list, size_t *n, const char *s)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(list[i], s) == 0)
			return;
	list[(*n)++] = s;
}

static void parse_profile(struct vctx *c, json_t *obj, const char *p, int wireless,
			  struct prof *out)
{
	static const char *const wired_keys[] = {"name", "eap", "client_certificate", "username",
						 "password", "server_ca", "server_name", NULL};
	static const char *const wifi_keys[] = {"name", "ssid", "priority", "security", "eap",
						"client_certificate", "username", "password",
						"server_ca", "server_name", NULL};
	static const char *const eaps[] = {"eap-tls", "peap-mschapv2", "eap-ttls-mschapv2", NULL};
	static const char *const security[] = {"wpa2-enterprise", "wpa3-enterprise", NULL};
	char kp[PATH_SIZE], cp[PATH_SIZE];
	json_t *v, *cc;
	const char *s;
	int eap, prio = 0;

	check_keys(c, obj, p, wireless ? wifi_keys : wired_keys);
	get_string(c, obj, p, "name", 1, &out->name);
	if (wireless) {
		v = get_string(c, obj, p, "ssid", 1, &s);
		if (v && json_string_length(v) > MAX_SSID_BYTES) {
			manifest_path_key(kp, sizeof(kp), p, "ssid");
			err_at(c, kp, "an SSID has at most %d bytes, not %zu", MAX_SSID_BYTES,
			       json_string_length(v));
		}
		get_int(c, obj, p, "priority", 0, 255, &prio);
		get_enum(c, obj, p, "security", 1, security, NULL);
	}
	eap = get_enum(c, obj, p, "eap", 1, eaps, NULL);
	cc = get_object(c, obj, p, "client_certificate", 0, cp);
	if (cc) {
		struct manifest_ca_ref r = {0};

		parse_ca_ref(c, cc, cp, &r);
		out->has_cert = 1;
		out->template_name = r.template_name ? r.template_name : DEFAULT_TEMPLATE;
	} else if (eap == 0 && !json_object_get(obj, "client_certificate")) {
		err_at(c, cp, "EAP-TLS always needs a client certificate (R-8021X-01)");
	}
	get_string(c, obj, p, "username", 0, NULL);
	get_credential(c, obj, p, "password", 0, NULL);
	get_file_in_tree(c, obj, p, "server_ca");
	v = get_string(c, obj, p, "server_name", 0, &s);
	if (v) {
		const char *why = dns_name_problem(s, 1);

		manifest_path_key(kp, sizeof(kp), p, "server_name");
		if (why)
			err_at(c, kp, "'%s' is not a DNS name: %s", s, why);
		else
			lower_in_tree(c, v);
	}
}

static void parse_ieee8021x(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"plugin", "wired", "wireless", NULL};
	char p[PATH_SIZE], wp[PATH_SIZE], lp[PATH_SIZE];
	json_t *x = get_object(c, root, "", "ieee8021x", 0, p), *wired, *wl, *v;
	const char **names = NULL, **wl_tmpl = NULL, **all_tmpl = NULL;
	size_t i, j, n_wl, n_names = 0, n_wl_tmpl = 0, n_all_tmpl = 0;

	if (!x)
		return;
	c->m->ieee8021x = x;
	check_keys(c, x, p, keys);
	get_instance(c, x, p, "plugin", 1, AMTPROV_KIND_NETPROFILE, &c->m->netprofile);
	wired = get_object(c, x, p, "wired", 0, wp);
	wl = get_array(c, x, p, "wireless", 0, lp);
	n_wl = wl ? json_array_size(wl) : 0;
	if (!json_object_get(x, "wired") && !json_object_get(x, "wireless"))
		warn_at(c, p, "no wired or wireless profile is configured");
	if (n_wl > MAX_WIRELESS)
		err_at(c, lp, "lists %zu wireless profiles; AMT stores at most %d", n_wl,
		       MAX_WIRELESS);

	names = zalloc(c, n_wl + 1, sizeof(*names));
	wl_tmpl = zalloc(c, n_wl + 1, sizeof(*wl_tmpl));
	all_tmpl = zalloc(c, n_wl + 1, sizeof(*all_tmpl));
	if (!names || !wl_tmpl || !all_tmpl)
		goto out;

	if (wired) {
		struct prof pr = {0};

		parse_profile(c, wired, wp, 0, &pr);
		if (pr.name)
			names[n_names++] = pr.name;
		if (pr.has_cert)
			add_distinct(all_tmpl, &n_all_tmpl, pr.template_name);
	}
	json_array_foreach(wl, i, v) {
		struct prof pr = {0};
		char ip[PATH_SIZE], kp[PATH_SIZE];

		manifest_path_index(ip, sizeof(ip), lp, i);
		if (!json_is_object(v)) {
			err_at(c, ip, "must be an object, not %s", manifest_json_type_name(v));
			continue;
		}
		parse_profile(c, v, ip, 1, &pr);
		if (pr.name) {
			for (j = 0; j < n_names; j++) {
				if (strcmp(names[j], pr.name) == 0) {
					manifest_path_key(kp, sizeof(kp), ip, "name");
					err_at(c, kp, "profile name '%s' is used twice (names are "
						      "unique across wired and wireless profiles)",
					       pr.name);
					break;
				}
			}
			names[n_names++] = pr.name;
		}
		if (pr.has_cert) {
			add_distinct(wl_tmpl, &n_wl_tmpl, pr.template_name);
			add_distinct(all_tmpl, &n_all_tmpl, pr.template_name);
		}
	}

	/* R-8021X-03: AMT holds at most 8 client-certificate templates across the wireless
	 * profiles; more than one template anywhere works but is not best practice. */
	if (n_wl_tmpl > MAX_WIRELESS_TEMPLATES) {
		err_at(c, lp, "wireless profiles use %zu different client-certificate templates; "
			      "at most %d are allowed (R-8021X-03)", n_wl_tmpl,
		       MAX_WIRELESS_TEMPLATES);
	} else if (n_all_tmpl > 1) {
		char list[AMTPROV_ERROR_MSG_SIZE];
		size_t n = 0;

		list[0] = '\0';
		for (i = 0; i < n_all_tmpl && n < sizeof(list); i++) {
			int w = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
					 all_tmpl[i]);

			if (w < 0)
				break;
			n += (size_t)w;
		}
		warn_at(c, p, "802.1X profiles use %zu different client-certificate "
			      "templates (%s); one template is best practice (R-8021X-03)",
			n_all_tmpl, list);
	}
out:
	free(names);
	free(wl_tmpl);
	free(all_tmpl);
}

/* ------------------------------------------------------------------------------------------ */
/* Maintenance and engine                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void parse_maintenance(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"evaluate_certificates",
					   "provisioning_certificate_check", NULL};
	static const char *const ev_keys[] = {"interval_days", "renew_within_days", NULL};
	static const char *const pc_keys[] = {"interval_hours", "warning_days", "error_days",
					      NULL};
	struct manifest_maintenance *mt = &c->m->maintenance;
	char p[PATH_SIZE], sp[PATH_SIZE], kp[PATH_SIZE];
	json_t *mn = get_object(c, root, "", "maintenance", 0, p), *sec;
	int ok_w, ok_e;

	if (!mn)
		return;
	check_keys(c, mn, p, keys);
	sec = get_object(c, mn, p, "evaluate_certificates", 0, sp);
	if (sec) { /* R-WS-03 */
		check_keys(c, sec, sp, ev_keys);
		get_int(c, sec, sp, "interval_days", 1, 365, &mt->evaluate_interval_days);
		get_int(c, sec, sp, "renew_within_days", 1, 3650, &mt->renew_within_days);
	}
	sec = get_object(c, mn, p, "provisioning_certificate_check", 0, sp);
	if (sec) { /* R-PC-06 */
		check_keys(c, sec, sp, pc_keys);
		get_int(c, sec, sp, "interval_hours", 1, 8760, &mt->provcert_check_hours);
		ok_w = get_int(c, sec, sp, "warning_days", 1, 3650, &mt->provcert_warning_days);
		ok_e = get_int(c, sec, sp, "error_days", 1, 3650, &mt->provcert_error_days);
		/* Compare effective values: a lone "warning_days": 10 clashes with the default
		 * error_days of 15 just as much. */
		if ((ok_w || ok_e) && mt->provcert_error_days >= mt->provcert_warning_days) {
			manifest_path_key(kp, sizeof(kp), sp, ok_e ? "error_days" : "warning_days");
			err_at(c, kp, "error_days (%d) must be smaller than warning_days (%d) "
				      "(R-PC-06)", mt->provcert_error_days,
			       mt->provcert_warning_days);
		}
	}
}

static void parse_engine(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"max_in_flight", "max_starting", "ca_workers",
					   "retry", "crash_loop_limit", "lease_seconds", NULL};
	static const char *const r_keys[] = {"base_seconds", "max_seconds", "max_attempts", NULL};
	struct manifest_engine *e = &c->m->engine;
	char p[PATH_SIZE], rp[PATH_SIZE], kp[PATH_SIZE];
	json_t *en = get_object(c, root, "", "engine", 0, p), *r;
	int ok_b, ok_m;

	if (!en)
		return;
	check_keys(c, en, p, keys);
	get_int(c, en, p, "max_in_flight", 1, 100000, &e->max_in_flight);
	get_int(c, en, p, "max_starting", 1, 100000, &e->max_starting);
	get_int(c, en, p, "ca_workers", 1, 64, &e->ca_workers);
	get_int(c, en, p, "crash_loop_limit", 1, 1000, &e->crash_loop_limit);
	get_int(c, en, p, "lease_seconds", 3, 3600, &e->lease_seconds);
	r = get_object(c, en, p, "retry", 0, rp);
	if (!r)
		return;
	check_keys(c, r, rp, r_keys);
	ok_b = get_int(c, r, rp, "base_seconds", 1, 86400, &e->retry_base_seconds);
	ok_m = get_int(c, r, rp, "max_seconds", 1, 604800, &e->retry_max_seconds);
	get_int(c, r, rp, "max_attempts", 1, 1000, &e->max_attempts);
	if ((ok_b || ok_m) && e->retry_max_seconds < e->retry_base_seconds) {
		manifest_path_key(kp, sizeof(kp), rp, ok_m ? "max_seconds" : "base_seconds");
		err_at(c, kp, "max_seconds (%d) must not be smaller than base_seconds (%d)",
		       e->retry_max_seconds, e->retry_base_seconds);
	}
}

/* "host:port" with an IP literal host ("[v6]:port" for IPv6). A name is refused: resolving it
 * at load time would make validation depend on DNS, and the address a server listens on is
 * the operator's deliberate choice. */
static void parse_listen(struct vctx *c, const char *s, const char *p, char **host_out,
			 int *port_out)
{
	const char *colon, *hs = s;
	size_t hlen;
	char host[64];
	unsigned char buf[16];
	long long port;
	int v6 = 0;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':') {
			err_at(c, p, "'%s' is not host:port ([IPv6]:port for IPv6)", s);
			return;
		}
		hs = s + 1;
		hlen = (size_t)(end - hs);
		colon = end + 1;
		v6 = 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon) {
			err_at(c, p, "'%s' is not host:port ([IPv6]:port for IPv6)", s);
			return;
		}
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		err_at(c, p, "'%s' has no valid host part", s);
		return;
	}
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, buf) != 1) {
		err_at(c, p, "'%s' is not an IP%s address (names are not resolved here)", host,
		       v6 ? "v6" : "v4");
		return;
	}
	if (util_parse_ll(colon + 1, 1, 65535, &port) < 0) {
		err_at(c, p, "'%s' is not a port from 1 to 65535", colon + 1);
		return;
	}
	*host_out = dup_str(c, host);
	*port_out = (int)port;
}

/* api[key]: an array of distinct credential names (at most MAX_API_TOKENS); absent: none.
 * Returns the names, NULL-terminated, and their count in *n. */
static const char **get_cred_list(struct vctx *c, json_t *api, const char *p, const char *key,
				  const char *what, size_t *n_out)
{
	char tp[PATH_SIZE];
	json_t *arr = get_array(c, api, p, key, 0, tp), *v;
	const char **list;
	size_t i, n;

	*n_out = 0;
	if (!arr)
		return NULL;
	n = json_array_size(arr);
	if (n == 0)
		err_at(c, tp, "must name at least one credential holding %s (or leave the key out)",
		       what);
	if (n > MAX_API_TOKENS)
		err_at(c, tp, "names %zu credentials; at most %d are allowed", n, MAX_API_TOKENS);
	list = zalloc(c, n + 1, sizeof(*list));
	if (!list)
		return NULL;
	json_array_foreach(arr, i, v) {
		char ip[PATH_SIZE];
		const char *s;
		size_t j;

		manifest_path_index(ip, sizeof(ip), tp, i);
		if (!string_ok(c, v, ip))
			continue;
		s = json_string_value(v);
		if (!cred_check(c, s, ip))
			continue;
		for (j = 0; j < *n_out; j++)
			if (strcmp(list[j], s) == 0)
				break;
		if (j < *n_out) {
			err_at(c, ip, "credential '%s' is listed twice", s);
			continue;
		}
		list[(*n_out)++] = s;
	}
	return list;
}

/* api.address_allow: IP networks whose addresses a host agent may report (docs/api.md). */
static void parse_address_allow(struct vctx *c, json_t *api, const char *p)
{
	struct manifest_api *a = &c->m->api;
	char ap[PATH_SIZE];
	json_t *arr = get_array(c, api, p, "address_allow", 0, ap), *v;
	size_t i;

	if (!arr)
		return;
	if (json_array_size(arr) == 0)
		err_at(c, ap, "must name at least one network (or leave the key out)");
	a->address_allow = zalloc(c, json_array_size(arr) + 1, sizeof(*a->address_allow));
	if (!a->address_allow)
		return;
	json_array_foreach(arr, i, v) {
		char ip[PATH_SIZE];
		const char *why;

		manifest_path_index(ip, sizeof(ip), ap, i);
		if (!string_ok(c, v, ip))
			continue;
		if (authz_cidr_parse(json_string_value(v), &a->address_allow[a->n_address_allow],
				     &why) < 0) {
			err_at(c, ip, "'%s' is not a network like 10.1.0.0/16 or fd00::/8: %s",
			       json_string_value(v), why);
			continue;
		}
		a->n_address_allow++;
	}
}

static void parse_api(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"listen", "certificate", "key", "admin_tokens",
					   "registration_keys", "address_check", "address_allow",
					   "tokens", "client_ca", "max_body", "max_connections",
					   "max_connections_per_address", "request_deadline_seconds",
					   "monitor_tokens", NULL};
	static const char *const checks[] = {"dns_or_allow_list", "dns", "allow_list", "off",
					     NULL};
	struct manifest_api *a = &c->m->api;
	char p[PATH_SIZE], lp[PATH_SIZE], kp[PATH_SIZE];
	json_t *api = get_object(c, root, "", "api", 0, p);
	const char *listen;
	int check;

	if (!api)
		return;
	a->enabled = 1;
	check_keys(c, api, p, keys);
	if (get_string(c, api, p, "listen", 1, &listen)) {
		manifest_path_key(lp, sizeof(lp), p, "listen");
		parse_listen(c, listen, lp, &a->host, &a->port);
	}
	get_input_file(c, api, p, "certificate", 1, &a->certificate);
	get_input_file(c, api, p, "key", 1, &a->key);
	get_input_file(c, api, p, "client_ca", 0, &a->client_ca);
	get_int(c, api, p, "max_body", 1024, 1048576, &a->max_body);
	get_int(c, api, p, "max_connections", 1, 65536, &a->max_connections);
	if (get_int(c, api, p, "max_connections_per_address", 0, 65536,
		    &a->max_connections_per_address) &&
	    a->max_connections && a->max_connections_per_address > a->max_connections) {
		manifest_path_key(kp, sizeof(kp), p, "max_connections_per_address");
		err_at(c, kp, "%d is more than max_connections (%d): it would never apply; set at "
			      "most %d, or 0 for no per-address limit",
		       a->max_connections_per_address, a->max_connections, a->max_connections);
	}
	get_int(c, api, p, "request_deadline_seconds", 1, 300, &a->request_deadline_seconds);
	/* The one shared token of earlier versions let every host agent holding it register
	 * any name and administer every device. Silently keeping it as an administrator token
	 * would leave administrator credentials on every host: the site must choose. */
	if (json_object_get(api, "tokens")) {
		manifest_path_key(kp, sizeof(kp), p, "tokens");
		err_at(c, kp, "'tokens' is no longer read: rename it to 'admin_tokens' if only "
			      "administrators hold these tokens, and give each host agent its own "
			      "enrollment secret instead ('registration_keys' and 'amtprov "
			      "enroll-secret', docs/api.md#migrating-from-tokens)");
	}
	a->admin_tokens = get_cred_list(c, api, p, "admin_tokens", "an administrator's bearer "
				       "token", &a->n_admin_tokens);
	a->monitor_tokens = get_cred_list(c, api, p, "monitor_tokens", "a monitoring bearer token",
					  &a->n_monitor_tokens);
	a->registration_keys = get_cred_list(c, api, p, "registration_keys", "a site registration "
					    "key", &a->n_registration_keys);
	/* No credential would mean either no write at all or an unauthenticated one: neither
	 * is a registration API. */
	if (!json_object_get(api, "tokens") && !json_object_get(api, "admin_tokens") &&
	    !json_object_get(api, "registration_keys"))
		err_at(c, p, "names no credential: set 'registration_keys' (host agents register "
			     "with enrollment secrets) and/or 'admin_tokens' (administrators)");
	check = get_enum(c, api, p, "address_check", 0, checks, NULL);
	if (check >= 0)
		a->address_check = (enum manifest_address_check)check;
	parse_address_allow(c, api, p);
	manifest_path_key(kp, sizeof(kp), p, "address_allow");
	if (a->address_check == MANIFEST_ADDR_ALLOW_LIST && !json_object_get(api, "address_allow"))
		err_at(c, kp, "address_check \"allow_list\" needs the networks: set address_allow");
	if ((a->address_check == MANIFEST_ADDR_DNS || a->address_check == MANIFEST_ADDR_OFF) &&
	    json_object_get(api, "address_allow"))
		warn_at(c, kp, "is ignored: address_check is \"%s\"",
			checks[a->address_check]);
	if (a->address_check == MANIFEST_ADDR_OFF) {
		manifest_path_key(kp, sizeof(kp), p, "address_check");
		warn_at(c, kp, "\"off\": host agents' reported addresses are taken on their word "
			       "(for labs only)");
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Cross references                                                                           */
/* ------------------------------------------------------------------------------------------ */

static const char *kind_name(int kind)
{
	switch (kind) {
	case AMTPROV_KIND_CA: return "CA";
	case AMTPROV_KIND_TRANSPORT: return "transport";
	case AMTPROV_KIND_CREDSTORE: return "credential store";
	case AMTPROV_KIND_NETPROFILE: return "network-profile (802.1X)";
	case AMTPROV_KIND_DIRECTORY: return "directory";
	default: return "plugin";
	}
}

static struct manifest_plugin *find_plugin(struct manifest *m, const char *instance)
{
	size_t i;

	for (i = 0; i < m->n_plugins; i++)
		if (m->plugins[i].instance && strcmp(m->plugins[i].instance, instance) == 0)
			return &m->plugins[i];
	return NULL;
}

static void resolve_refs(struct vctx *c)
{
	size_t i, j;

	for (i = 0; i < c->n_refs; i++) {
		const struct ref *r = &c->refs[i];
		struct manifest_plugin *pl = find_plugin(c->m, r->instance);

		if (!pl) {
			err_at(c, r->path, "plugin instance '%s' is not declared under /plugins",
			       r->instance);
			continue;
		}
		if (pl->expected_kind == 0) {
			pl->expected_kind = r->kind;
			continue;
		}
		if (pl->expected_kind == r->kind)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(c->refs[j].instance, r->instance) == 0)
				break;
		err_at(c, r->path, "plugin instance '%s' is used here as a %s plugin, but as a %s "
				   "plugin at %s", r->instance, kind_name(r->kind),
		       kind_name(pl->expected_kind), j < i ? c->refs[j].path : "?");
	}
	for (i = 0; i < c->m->n_plugins; i++) {
		char p[PATH_SIZE];

		if (c->m->plugins[i].expected_kind)
			continue;
		manifest_path_key(p, sizeof(p), "/plugins", c->m->plugins[i].instance);
		warn_at(c, p, "plugin instance '%s' is declared but not used",
			c->m->plugins[i].instance);
	}
	/* Credential names mean nothing without a store to look them up in (R-ACC-02). When the
	 * store key is present but bad, that error is already reported. */
	if (c->have_cred_ref && !c->store_key_present)
		err_at(c, c->cred_path, "names a credential, but credentials.store (the "
					"credential-store plugin instance) is not set");
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void set_defaults(struct manifest *m)
{
	m->web_server.key_bits = 2048;
	/* Intel AMT 22 deprecates SHA-256 and RSA 2048 for provisioning and management
	 * certificates; "amt_crypto_policy": [] in the manifest turns this off. */
	m->crypto_rules[0] = (struct manifest_crypto_rule){
		.amt_from = 22, .key_bits = 3072, .digest_bits = 384};
	m->n_crypto_rules = 1;
	m->admin_password_length = 16;
	m->kerberos = -1;
	m->web_ui = m->sol = m->ider = m->ping = -1;
	m->maintenance.evaluate_interval_days = 7;   /* R-WS-03 */
	m->maintenance.renew_within_days = 42;       /* R-WS-03 */
	m->maintenance.provcert_check_hours = 24;    /* R-PC-06: once a day */
	m->maintenance.provcert_warning_days = 40;   /* R-PC-06: message 7210 */
	m->maintenance.provcert_error_days = 15;     /* R-PC-06: message 7211 */
	m->engine.max_in_flight = 256;
	m->engine.max_starting = 256; /* engine.h ENGINE_MAX_STARTING */
	m->engine.ca_workers = 4;
	m->engine.retry_base_seconds = 60;
	m->engine.retry_max_seconds = 3600;
	m->engine.max_attempts = 10;
	m->engine.crash_loop_limit = 3;
	m->engine.lease_seconds = 60;
	m->api.max_body = 65536;
	m->api.request_deadline_seconds = 10;
	m->api.max_connections_per_address = -1; /* from the cap in force (api_conn.c) */
}

/* 127.0.0.0/8 or ::1 (an IP literal: parse_listen checked it). */
static int is_loopback(const char *host)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, in6addr_loopback.s6_addr, 16) == 0;
}

/* monitoring: GET /metrics on a listener of its own (plain HTTP, nothing else served). */
static void parse_monitoring(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {"metrics_listen", "metrics_tokens", NULL};
	struct manifest_monitoring *mo = &c->m->monitoring;
	char p[PATH_SIZE], lp[PATH_SIZE];
	json_t *mon = get_object(c, root, "", "monitoring", 0, p);
	const char *listen;

	if (!mon)
		return;
	check_keys(c, mon, p, keys);
	manifest_path_key(lp, sizeof(lp), p, "metrics_listen");
	if (get_string(c, mon, p, "metrics_listen", 1, &listen))
		parse_listen(c, listen, lp, &mo->metrics_host, &mo->metrics_port);
	mo->metrics_tokens = get_cred_list(c, mon, p, "metrics_tokens", "a metrics bearer token",
					   &mo->n_metrics_tokens);
	/* Device counts, host ids and CA names are the site's business: anyone who can reach
	 * the address reads them when no token is asked for. */
	if (mo->metrics_host && !mo->n_metrics_tokens && !is_loopback(mo->metrics_host))
		err_at(c, lp, "'%s' is not a loopback address: an unauthenticated metrics listener "
			      "is only allowed on 127.0.0.0/8 or ::1; name 'metrics_tokens' to serve "
			      "the metrics on another network", mo->metrics_host);
}

static void validate(struct vctx *c, json_t *root)
{
	static const char *const keys[] = {
		"$schema", "manifest_version", "site", "state_dir", "database", "plugin_path",
		"plugins", "credentials", "provisioning_certificate", "certificates", "amt",
		"ieee8021x", "maintenance", "engine", "api", "monitoring", NULL};
	json_t *v;

	if (!json_is_object(root)) {
		err_at(c, "", "a manifest is a JSON object, not %s", manifest_json_type_name(root));
		return;
	}
	v = json_object_get(root, "manifest_version");
	if (!v) {
		err_at(c, "/manifest_version", "missing required key 'manifest_version' (this "
					       "build reads version %d)", MANIFEST_VERSION);
	} else if (!json_is_integer(v)) {
		err_at(c, "/manifest_version", "must be an integer, not %s",
		       manifest_json_type_name(v));
	} else if (json_integer_value(v) != MANIFEST_VERSION) {
		/* The rest of the document is in a format this build does not know: checking it
		 * against version 1 would only bury the real problem under noise. */
		err_at(c, "/manifest_version", "manifest_version %lld is not supported; this build "
					       "reads version %d",
		       (long long)json_integer_value(v), MANIFEST_VERSION);
		return;
	}
	check_keys(c, root, "", keys);
	get_string(c, root, "", "$schema", 0, NULL);
	parse_site(c, root);
	parse_storage(c, root);
	parse_plugins(c, root);
	parse_credentials(c, root);
	parse_provcert(c, root);
	parse_certificates(c, root);
	parse_amt(c, root);
	parse_ieee8021x(c, root);
	parse_maintenance(c, root);
	parse_engine(c, root);
	parse_api(c, root);
	parse_monitoring(c, root);
	resolve_refs(c);
}

/* Validates @p root (stolen) as the manifest @p abs_file (stolen; may be NULL). */
static int load_tree(json_t *root, char *abs_file, const char *display, struct manifest **out,
		     struct manifest_problems *pr, struct amtprov_error *err)
{
	struct vctx c;
	struct manifest *m = calloc(1, sizeof(*m));
	size_t errors_before = pr->errors, first = pr->count, i;

	if (!m || !abs_file) {
		free(m);
		free(abs_file);
		json_decref(root);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, display, "out of memory");
	}
	m->root = root;
	m->file = abs_file;
	m->dir = dir_of(abs_file);
	set_defaults(m);
	memset(&c, 0, sizeof(c));
	c.pr = pr;
	c.m = m;
	if (!m->dir)
		c.nomem = 1;
	else
		validate(&c, root);
	free(c.refs);

	if (c.nomem) {
		manifest_free(m);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, display,
					 "out of memory while loading the manifest");
	}
	if (pr->errors > errors_before) {
		size_t n = pr->errors - errors_before;

		for (i = first; i < pr->count && pr->items[i].warning; i++)
			;
		manifest_free(m);
		return amtprov_error_set(err, AMTPROV_E_CONFIG, display,
					 "%zu error%s in manifest: %s: %s", n, n == 1 ? "" : "s",
					 pr->items[i].path[0] ? pr->items[i].path : "(document)",
					 pr->items[i].msg);
	}
	*out = m;
	return AMTPROV_OK;
}

static int parse_failed(const json_error_t *jerr, const char *display,
			struct manifest_problems *pr, struct amtprov_error *err)
{
	/* Jansson's own text names duplicate keys ("duplicate object key") as well as syntax
	 * errors; the document has no JSON pointer yet, so line and column locate it. */
	manifest_problem_add(pr, 0, "", "JSON error at line %d, column %d: %s", jerr->line,
			     jerr->column, jerr->text);
	return amtprov_error_set(err, AMTPROV_E_PARSE, display,
				 "JSON error at line %d, column %d: %s", jerr->line, jerr->column,
				 jerr->text);
}

int manifest_load(const char *path, struct manifest **out, struct manifest_problems *problems,
		  struct amtprov_error *err)
{
	struct manifest_problems local = {0};
	struct manifest_problems *pr = problems ? problems : &local;
	json_error_t jerr;
	struct stat st;
	json_t *root;
	char *abs_file;
	FILE *fp;
	int rc, e = 0;

	if (!path || !out)
		return amtprov_error_set(err, AMTPROV_E_INVALID, path, "no manifest path given");
	fp = NULL;
	if (stat(path, &st) != 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	else if (!(fp = fopen(path, "r")))
		e = errno;
	if (!fp) {
		rc = (e == ENOENT || e == ENOTDIR) ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO;
		manifest_problem_add(pr, 0, "", "cannot open the manifest: %s", strerror(e));
		amtprov_error_set(err, rc, path, "cannot open the manifest: %s", strerror(e));
		manifest_problems_free(&local);
		return rc;
	}
	root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	fclose(fp);
	if (!root) {
		rc = parse_failed(&jerr, path, pr, err);
		manifest_problems_free(&local);
		return rc;
	}
	/* realpath() so that relative paths inside resolve against the real directory even
	 * when the manifest was reached through a symbolic link. */
	abs_file = realpath(path, NULL);
	if (!abs_file)
		abs_file = absolute_name(path);
	rc = load_tree(root, abs_file, path, out, pr, err);
	manifest_problems_free(&local);
	return rc;
}

int manifest_load_string(const char *json, const char *name, struct manifest **out,
			 struct manifest_problems *problems, struct amtprov_error *err)
{
	struct manifest_problems local = {0};
	struct manifest_problems *pr = problems ? problems : &local;
	const char *display = name ? name : "<string>";
	json_error_t jerr;
	json_t *root;
	int rc;

	if (!json || !out)
		return amtprov_error_set(err, AMTPROV_E_INVALID, display, "no manifest text given");
	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = parse_failed(&jerr, display, pr, err);
		manifest_problems_free(&local);
		return rc;
	}
	/* Without a name, relative paths resolve against the working directory. */
	rc = load_tree(root, absolute_name(name ? name : "<string>"), display, out, pr, err);
	manifest_problems_free(&local);
	return rc;
}

void manifest_free(struct manifest *m)
{
	size_t i;

	if (!m)
		return;
	if (m->plugin_path) {
		for (i = 0; m->plugin_path[i]; i++)
			free(m->plugin_path[i]);
		free(m->plugin_path);
	}
	for (i = 0; m->amt_accounts && i < m->n_amt_accounts; i++)
		free((void *)m->amt_accounts[i].realms);
	free(m->amt_accounts);
	free(m->plugins);
	free(m->prov_accounts);
	free(m->provcert_file);
	free(m->provcert_key_file);
	free(m->provcert_pkcs12_file);
	free(m->api.host);
	free(m->api.certificate);
	free(m->api.key);
	free(m->api.client_ca);
	free(m->api.admin_tokens);
	free(m->api.monitor_tokens);
	free(m->api.registration_keys);
	free(m->monitoring.metrics_host);
	free(m->monitoring.metrics_tokens);
	free(m->api.address_allow);
	for (i = 0; i < m->n_inputs; i++)
		free(m->inputs[i].file);
	free(m->inputs);
	free(m->fqdn_patterns);
	free(m->database_path);
	free(m->database_password_file);
	free(m->state_dir);
	free(m->file);
	free(m->dir);
	json_decref(m->root);
	free(m);
}

const struct manifest_plugin *manifest_plugin_find(const struct manifest *m,
						   const char *instance)
{
	size_t i;

	if (!m || !instance)
		return NULL;
	for (i = 0; i < m->n_plugins; i++)
		if (strcmp(m->plugins[i].instance, instance) == 0)
			return &m->plugins[i];
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Capabilities                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef int (*caps_cb)(void *ctx, const char *instance, const char *cap, const char *json_path);

/* Every CA that issues a certificate must also revoke it (R-REV-02, R-REV-04). */
static int ca_caps(caps_cb cb, void *ctx, const char *ca, const char *purpose, const char *path)
{
	int rc = cb(ctx, ca, AMTPROV_CAP_CA_SUBMIT, path);

	if (!rc)
		rc = cb(ctx, ca, purpose, path);
	if (!rc)
		rc = cb(ctx, ca, AMTPROV_CAP_CA_REVOKE, path);
	return rc;
}

static int profile_caps(caps_cb cb, void *ctx, const json_t *prof, const char *base)
{
	const json_t *cc = json_object_get(prof, "client_certificate");
	const char *ca = json_string_value(json_object_get(cc, "ca"));
	char p[PATH_SIZE];

	if (!ca)
		return 0;
	snprintf(p, sizeof(p), "%s/client_certificate/ca", base);
	return ca_caps(cb, ctx, ca, AMTPROV_CAP_CA_PURPOSE_8021X, p);
}

int manifest_required_caps(const struct manifest *m,
			   int (*cb)(void *ctx, const char *instance, const char *cap,
				     const char *json_path),
			   void *ctx)
{
	const json_t *wired = NULL, *wl = NULL;
	size_t i;
	int rc;

	if (!m || !cb)
		return 0;
	if (m->web_server.ca) {
		rc = ca_caps(cb, ctx, m->web_server.ca, AMTPROV_CAP_CA_PURPOSE_WEB,
			     "/certificates/web_server/ca");
		if (rc)
			return rc;
	}
	if (m->ieee8021x) {
		wired = json_object_get(m->ieee8021x, "wired");
		wl = json_object_get(m->ieee8021x, "wireless");
	}
	if (wired && (rc = profile_caps(cb, ctx, wired, "/ieee8021x/wired")) != 0)
		return rc;
	for (i = 0; i < json_array_size(wl); i++) {
		char p[PATH_SIZE];

		manifest_path_index(p, sizeof(p), "/ieee8021x/wireless", i);
		rc = profile_caps(cb, ctx, json_array_get(wl, i), p);
		if (rc)
			return rc;
	}
	if (m->transport) {
		/* WS-Man always; SOAP for the first stage of AMT 2.x-8.x, which a site cannot
		 * rule out before it has seen its devices. */
		rc = cb(ctx, m->transport, AMTPROV_CAP_TRANSPORT_WSMAN, "/amt/transport");
		if (!rc)
			rc = cb(ctx, m->transport, AMTPROV_CAP_TRANSPORT_SOAP, "/amt/transport");
		if (rc)
			return rc;
	}
	if (m->netprofile) {
		if (wired && (rc = cb(ctx, m->netprofile, AMTPROV_CAP_NETPROFILE_WIRED,
				      "/ieee8021x/plugin")) != 0)
			return rc;
		if (json_array_size(wl) > 0 &&
		    (rc = cb(ctx, m->netprofile, AMTPROV_CAP_NETPROFILE_WIFI,
			     "/ieee8021x/plugin")) != 0)
			return rc;
	}
	if (m->directory) {
		rc = cb(ctx, m->directory, AMTPROV_CAP_DIRECTORY_ACCOUNT, "/amt/directory");
		if (rc)
			return rc;
	}
	return 0;
}

size_t manifest_check_inputs(const struct manifest *m, struct manifest_problems *problems)
{
	size_t bad = 0;

	for (size_t i = 0; i < m->n_inputs; i++) {
		const struct manifest_input *in = &m->inputs[i];
		struct stat st;
		const char *why = NULL;

		/* stat() follows links on purpose: a certificate may be a link into a
		 * distribution's store. */
		if (stat(in->file, &st) != 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			why = "not a regular file";
		else if (access(in->file, R_OK) != 0)
			why = strerror(errno);
		else if (in->secret && (st.st_uid != geteuid() || (st.st_mode & 077)))
			why = "a password file must be owned by the user amtprov runs as and "
			      "readable by it only (chmod 600)";
		if (!why)
			continue;
		manifest_problem_add(problems, 0, in->path, "%s: %s", in->file, why);
		bad++;
	}
	return bad;
}
