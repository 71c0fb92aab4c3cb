/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file util.h
 * @brief Small helpers shared by the core: strings, files, secure memory.
 */
#ifndef AMTPROV_CORE_UTIL_H
#define AMTPROV_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <amtprov/error.h>
#include <amtprov/types.h>

/** Copies @p src into @p dst (size @p size), always NUL-terminated.
 * @return 0 if it fit, -1 if it was truncated. */
int util_strlcpy(char *dst, const char *src, size_t size);

/** strdup that accepts NULL (returns NULL). */
char *util_strdup(const char *s);

/** Lower-cases @p s in place (ASCII). */
void util_lower(char *s);

/** Parses a whole decimal string into [min,max]. @return 0 or -1. */
int util_parse_ll(const char *s, long long min, long long max, long long *out);

/** Joins @p dir and @p name (name absolute: copy of name). Caller frees. */
char *util_path_join(const char *dir, const char *name);


/** Creates @p path and missing parents with @p mode (existing dirs are left alone). */
int util_mkdir_p(const char *path, mode_t mode, struct amtprov_error *err);

/**
 * Checks a directory we load code from or keep secrets in: it must exist, be a directory,
 * not a symlink, and not be writable by group or others.
 */
int util_check_private_dir(const char *path, struct amtprov_error *err);

/** Reads a whole file (at most @p max bytes) into a malloc'd NUL-terminated buffer. */
int util_read_file(const char *path, size_t max, char **data, size_t *len,
		   struct amtprov_error *err);

/** Secret buffers: zero-filled alloc, wipe-and-free (accepts NULL). */
struct amtprov_secret *util_secret_new(size_t len);
void util_secret_free(struct amtprov_secret *s);
/** Wipes memory in a way the compiler cannot drop. */
void util_wipe(void *p, size_t len);

/** Wall clock in seconds and monotonic milliseconds. */
int64_t util_now(void);
int64_t util_monotonic_ms(void);

/** Formats @p t (Unix seconds, UTC) as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
const char *util_fmt_time(int64_t t, char *buf, size_t size);

#endif /* AMTPROV_CORE_UTIL_H */
