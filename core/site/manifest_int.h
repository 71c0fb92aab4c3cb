/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file manifest_int.h
 * @brief Helpers shared by manifest.c and config_table.c (private to libamtprov).
 *
 * The manifest validator and the plugin configuration-table parser report problems the same
 * way (a JSON pointer plus a message, collected rather than stopping at the first), so they
 * share the problem list and the JSON-pointer and name helpers defined in manifest.c.
 */
#ifndef AMTPROV_CORE_MANIFEST_INT_H
#define AMTPROV_CORE_MANIFEST_INT_H

#include <stdarg.h>
#include <stddef.h>

#include <amtprov/log.h>

#include "manifest.h"

/**
 * Appends one problem to @p p.
 * @param[in,out] p       the list; grows as needed
 * @param[in]     warning 1 for a warning, 0 for an error
 * @param[in]     path    JSON pointer (copied, truncated to fit); NULL means the document
 * @param[in]     fmt     printf format of the message (copied, truncated to fit)
 * @return AMTPROV_OK or AMTPROV_E_NOMEM (then the problem is lost)
 */
int manifest_problem_add(struct manifest_problems *p, int warning, const char *path,
			 const char *fmt, ...) AMTPROV_PRINTF(4, 5);

/** va_list form of manifest_problem_add. */
int manifest_problem_addv(struct manifest_problems *p, int warning, const char *path,
			  const char *fmt, va_list ap) AMTPROV_PRINTF(4, 0);

/**
 * Writes the JSON pointer @p base + "/" + @p key into @p buf, escaping the key as RFC 6901
 * says ("~" -> "~0", "/" -> "~1"). Truncates silently to @p size.
 */
void manifest_path_key(char *buf, size_t size, const char *base, const char *key);

/** Writes the JSON pointer @p base + "/" + @p index into @p buf. */
void manifest_path_index(char *buf, size_t size, const char *base, size_t index);

/** 1 if @p s is a valid credential record name: ^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$ */
int manifest_credential_name_valid(const char *s);

/** Printable name of a JSON value's type ("a string", "an integer", ...). Static storage. */
const char *manifest_json_type_name(const json_t *v);

#endif /* AMTPROV_CORE_MANIFEST_INT_H */
