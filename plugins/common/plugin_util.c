/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by amtprov's own plugins; see plugin_util.h. */
#include "plugin_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

void pu_drain_ossl(char *buf, size_t size)
{
	unsigned long e;
	size_t used = 0;
	char one[200];

	if (size)
		buf[0] = '\0';
	/* Every queued error, oldest first, so the root cause and its context both show. */
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (used + 3 < size) {
			int n = snprintf(buf + used, size - used, "%s%s", used ? "; " : "", one);

			if (n > 0)
				used += (size_t)n < size - used ? (size_t)n : size - used - 1;
		}
	}
}

int pu_crypto_error(struct amtprov_error *err, const char *where, const char *what)
{
	char buf[AMTPROV_ERROR_MSG_SIZE];

	pu_drain_ossl(buf, sizeof(buf));
	return amtprov_error_set(err, AMTPROV_E_CRYPTO, where, "%s: %s", what,
				 buf[0] ? buf : "OpenSSL reported no detail");
}

char *pu_path(const char *dir, const char *name, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix ? suffix : "") < 0)
		return NULL;
	return p;
}

int pu_mkdir(const char *path, unsigned mode, struct amtprov_error *err)
{
	struct stat st;

	if (mkdir(path, (mode_t)mode) == 0)
		return AMTPROV_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return AMTPROV_OK;
	return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot create directory: %s",
				 strerror(errno));
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pu_write_file(const char *path, const void *data, size_t len, unsigned mode,
		  const char *where, struct amtprov_error *err)
{
	char *tmp = NULL;
	int fd, e;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, where, "out of memory");
	/* mkstemp creates the file 0600, so a key is never readable by others, not even
	 * between create and chmod; the rename means readers (CRL checkers, an admin's
	 * script picking up a request) see the old or the new content, never a torn one. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno;
		free(tmp);
		return amtprov_error_set(err, AMTPROV_E_IO, path,
					 "cannot create a file next to it: %s", strerror(e));
	}
	if (write_all(fd, data, len) < 0 || fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot write: %s", strerror(e));
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		free(tmp);
		return amtprov_error_set(err, AMTPROV_E_IO, path, "cannot write: %s", strerror(e));
	}
	free(tmp);
	return AMTPROV_OK;
}

int pu_read_file(const char *path, size_t max, uint8_t **out, size_t *len, const char *where,
		 struct amtprov_error *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 path, "cannot open: %s", strerror(errno));
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, where, "out of memory");
	}
	n = fread(buf, 1, max, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		free(buf);
		return amtprov_error_set(err, AMTPROV_E_IO, path,
					 "cannot read (or larger than %zu KiB)", max >> 10);
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return AMTPROV_OK;
}

size_t pu_sink_write(char *ptr, size_t size, size_t nmemb, void *sink)
{
	struct pu_sink *s = sink;
	size_t n = size * nmemb;
	char *grown;

	if (n > s->max || s->len > s->max - n) {
		s->too_big = 1;
		return 0;
	}
	grown = realloc(s->buf, s->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + s->len, ptr, n);
	s->buf = grown;
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}
