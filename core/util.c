/* SPDX-License-Identifier: Apache-2.0 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

int util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n;

	if (size == 0)
		return -1;
	if (!src)
		src = "";
	n = strlen(src);
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

char *util_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void util_lower(char *s)
{
	for (; s && *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

int util_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end = NULL;
	long long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || !end || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

char *util_path_join(const char *dir, const char *name)
{
	char *p = NULL;

	if (!name)
		return NULL;
	if (name[0] == '/' || !dir || !*dir)
		return strdup(name);
	if (asprintf(&p, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name) < 0)
		return NULL;
	return p;
}

int util_mkdir_p(const char *path, mode_t mode, struct amtprov_error *err)
{
	char buf[PATH_MAX];
	struct stat st;

	if (util_strlcpy(buf, path, sizeof(buf)) < 0)
		return amtprov_error_set(err, AMTPROV_E_INVALID, path, "path too long");
	for (char *p = buf + 1; ; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return amtprov_error_set(err, AMTPROV_E_IO, buf, "cannot create directory: %s",
						 strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return amtprov_error_set(err, AMTPROV_E_IO, path, "not a directory");
	return AMTPROV_OK;
}

int util_check_private_dir(const char *path, struct amtprov_error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 path, "cannot stat directory: %s", strerror(errno));
	if (S_ISLNK(st.st_mode))
		return amtprov_error_set(err, AMTPROV_E_DENIED, path,
					 "refusing a symbolic link here; give the real directory");
	if (!S_ISDIR(st.st_mode))
		return amtprov_error_set(err, AMTPROV_E_INVALID, path, "not a directory");
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return amtprov_error_set(err, AMTPROV_E_DENIED, path,
					 "directory is writable by group or others (mode %03o); "
					 "fix with chmod go-w",
					 (unsigned)(st.st_mode & 0777));
	return AMTPROV_OK;
}

int util_read_file(const char *path, size_t max, char **data, size_t *len,
		   struct amtprov_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 path, "cannot open: %s", strerror(errno));
	for (;;) {
		size_t got;

		if (n + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return amtprov_error_set(err, AMTPROV_E_NOMEM, path, "out of memory");
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n > max) {
			free(buf);
			fclose(f);
			return amtprov_error_set(err, AMTPROV_E_INVALID, path,
						 "file larger than %zu bytes", max);
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "read error");
	}
	fclose(f);
	buf[n] = '\0';
	*data = buf;
	if (len)
		*len = n;
	return AMTPROV_OK;
}

struct amtprov_secret *util_secret_new(size_t len)
{
	struct amtprov_secret *s;

	if (len == SIZE_MAX)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->data = calloc(1, len + 1);
	if (!s->data) {
		free(s);
		return NULL;
	}
	s->len = len;
	return s;
}

void util_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

void util_secret_free(struct amtprov_secret *s)
{
	if (!s)
		return;
	if (s->data) {
		util_wipe(s->data, s->len + 1);
		free(s->data);
	}
	free(s);
}

int64_t util_now(void)
{
	return (int64_t)time(NULL);
}

int64_t util_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *util_fmt_time(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		util_strlcpy(buf, "?", size);
	return buf;
}
