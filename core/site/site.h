/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file site.h
 * @brief One site: its manifest, database, plugin instances, clock and status messages.
 *        The explicit root of all state (no globals): tools and tests open as many as
 *        they like.
 *
 * site_open() validates before it changes anything: the manifest is loaded in full, the
 * database (when it exists) is checked, plugins are loaded and their capabilities checked
 * against what the manifest asks of them (and, with SITE_CHECK_AMT_PASSWORDS, the
 * passwords it sets on AMT); only then is a missing database created.
 */
#ifndef AMTPROV_CORE_SITE_H
#define AMTPROV_CORE_SITE_H

#include <stdint.h>

#include <amtprov/error.h>

#include "log.h"
#include "manifest.h"
#include "plugin_host.h"
#include "store.h"

struct site;

/** Tests only: names a file holding the Unix time every site_now() reads (used when
 * site_options.now is NULL). amtprovd and amtprov warn loudly when it is set. */
#define SITE_TEST_CLOCK_ENV "AMTPROV_TEST_CLOCK_FILE"

#define SITE_CREATE_DB 0x1    /**< create the database (and state dir) if missing */
#define SITE_NO_PLUGINS 0x2   /**< do not load plugins (reporting commands) */
#define SITE_READONLY_DB 0x4  /**< open the database read-only; never create */
#define SITE_NO_DB 0x8        /**< do not open the database (manifest check) */
#define SITE_CHECK_ONLY 0x10  /**< plugins only validate: nothing is created on disk */
/** Read every password the site sets on AMT (amt_password_uses) from the credential store
 * and check it against AMT's rule (amt_password.h) before anything is created: one problem
 * per refused, missing or unreadable record, at its manifest field (needs plugins). */
#define SITE_CHECK_AMT_PASSWORDS 0x20

struct site_options {
	const char *manifest;       /**< path of the site manifest */
	int flags;                  /**< SITE_* */
	struct alog *log;           /**< borrowed; required */
	int64_t (*now)(void *ctx);  /**< wall clock; NULL: real time */
	void *now_ctx;
};

/**
 * Opens a site.
 * @param[out] problems every manifest problem (caller frees); may be NULL
 * @return AMTPROV_OK, or the first error (err names the file, field or plugin)
 */
int site_open(const struct site_options *opt, struct site **out,
	      struct manifest_problems *problems, struct amtprov_error *err);
/** Stops and destroys plugins, closes the database. Accepts NULL. */
void site_close(struct site *s);

struct manifest *site_manifest(struct site *s);
struct store *site_store(struct site *s);
struct plugin_host *site_plugins(struct site *s);
struct alog *site_log(struct site *s);
int64_t site_now(struct site *s);
/** The clock callback pair, for the engine. */
int64_t site_clock(void *site);

/**
 * Emits a status message from the catalog: stored in the database and logged at its
 * severity. Safe from any thread (other threads use a second database connection).
 * @return AMTPROV_E_NOT_FOUND for an ID not in the catalog
 */
int site_status(struct site *s, uint32_t id, const char *device, const char *detail);

#endif /* AMTPROV_CORE_SITE_H */
