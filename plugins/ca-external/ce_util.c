/* SPDX-License-Identifier: Apache-2.0 */
/* ca-external helpers: OpenSSL error draining, atomic files, paths. No host API here: the
 * amtprov-request tool links this file too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ce.h"

#define CE_MAX_FILE (4u << 20)

void ce_drain_ossl(char *buf, size_t size)
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

int ce_crypto_error(struct amtprov_error *err, const char *what)
{
	char buf[AMTPROV_ERROR_MSG_SIZE];

	ce_drain_ossl(buf, sizeof(buf));
	return amtprov_error_set(err, AMTPROV_E_CRYPTO, CE_NAME, "%s: %s", what,
				 buf[0] ? buf : "OpenSSL reported no detail");
}

char *ce_path(const char *dir, const char *name, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix ? suffix : "") < 0)
		return NULL;
	return p;
}

int ce_mkdir(const char *path, unsigned mode, struct amtprov_error *err)
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

int ce_write_file(const char *path, const void *data, size_t len, unsigned mode,
		  struct amtprov_error *err)
{
	char *tmp = NULL;
	int fd, e;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	/* mkstemp creates the file 0600, so a key is never readable by others even briefly;
	 * the rename means an administrator's script never picks up a half-written request. */
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

int ce_read_file(const char *path, uint8_t **out, size_t *len, struct amtprov_error *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return amtprov_error_set(err, errno == ENOENT ? AMTPROV_E_NOT_FOUND : AMTPROV_E_IO,
					 path, "cannot open: %s", strerror(errno));
	buf = malloc(CE_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return amtprov_error_set(err, AMTPROV_E_NOMEM, CE_NAME, "out of memory");
	}
	n = fread(buf, 1, CE_MAX_FILE, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		free(buf);
		return amtprov_error_set(err, AMTPROV_E_IO, path,
					 "cannot read (or larger than 4 MiB)");
	}
	fclose(f);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return AMTPROV_OK;
}

void ce_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int ce_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 100 || id[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}
