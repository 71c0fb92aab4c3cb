/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file plugin_util.h
 * @brief Helpers shared by amtprov's own plugins (not part of the plugin ABI): atomic file
 *        writes, bounded file reads, OpenSSL error text. Third-party plugins need none of it.
 */
#ifndef AMTPROV_PLUGIN_UTIL_H
#define AMTPROV_PLUGIN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>

/** Every queued OpenSSL error, oldest first, "; "-separated, into @p buf (emptied). */
void pu_drain_ossl(char *buf, size_t size);

/** Sets @p err to AMTPROV_E_CRYPTO "@p what: <OpenSSL errors>" at @p where. @return the code. */
int pu_crypto_error(struct amtprov_error *err, const char *where, const char *what);

/** "@p dir/@p name@p suffix" (suffix may be NULL), malloc'd; NULL when out of memory. */
char *pu_path(const char *dir, const char *name, const char *suffix);

/** mkdir with @p mode; an existing directory is fine. */
int pu_mkdir(const char *path, unsigned mode, struct amtprov_error *err);

/**
 * Writes @p path atomically with @p mode: a 0600 temporary file next to it, fsync, rename.
 * Readers see the old or the new content, never a torn one, and a secret is never readable
 * by others, not even briefly. @p where names the plugin in out-of-memory errors.
 */
int pu_write_file(const char *path, const void *data, size_t len, unsigned mode,
		  const char *where, struct amtprov_error *err);

/**
 * Reads all of @p path (at most @p max bytes) into a malloc'd, NUL-terminated buffer.
 * A missing file is AMTPROV_E_NOT_FOUND; a bigger one AMTPROV_E_IO.
 */
int pu_read_file(const char *path, size_t max, uint8_t **out, size_t *len, const char *where,
		 struct amtprov_error *err);

/**
 * An HTTP answer collected by libcurl (CURLOPT_WRITEFUNCTION pu_sink_write, CURLOPT_WRITEDATA
 * the sink): @p buf grows, always NUL-terminated, up to @p max bytes; past that the transfer
 * stops with @p too_big set. Set @p max before the transfer; the caller frees @p buf.
 */
struct pu_sink {
	char *buf;
	size_t len;
	size_t max;
	int too_big;
};

/** libcurl's write callback for a struct pu_sink (libcurl's signature; no curl header). */
size_t pu_sink_write(char *ptr, size_t size, size_t nmemb, void *sink);

#endif /* AMTPROV_PLUGIN_UTIL_H */
