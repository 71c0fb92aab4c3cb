/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file api_status.h
 * @brief The read-only status page (docs/operations.md "Monitoring"): GET / serves one
 *        self-contained HTML page (inline CSS and script, allowed by their hashes in a
 *        strict Content-Security-Policy, nothing fetched from elsewhere) that reads
 *        GET /v1/status every few seconds and shows the fleet by state, failures with their
 *        reasons and what to do, certificates by expiry, and the maintenance tasks.
 *
 * A browser cannot send a bearer header when it opens a link, so an administrator mints a
 * one-time login link (POST /v1/sessions, administrator token); opening it sets a session
 * cookie (Secure, HttpOnly, SameSite=Strict) that allows the page and its JSON only, never a
 * write. Links live 60 s and are used once; sessions 8 hours; both only in memory (a restart
 * or reload ends them), and only their SHA-256 digests are kept.
 */
#ifndef AMTPROV_CORE_API_STATUS_H
#define AMTPROV_CORE_API_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <amtprov/error.h>
#include <jansson.h>

#include "site.h"

#define API_STATUS_COOKIE "amtprov_session"
#define API_STATUS_LINK_SECONDS 60
#define API_STATUS_SESSION_SECONDS (8 * 3600)
#define API_STATUS_SECRET_HEX 65 /* 32 random bytes in hex, NUL */

/** The page's HTML (static storage). */
const char *api_status_page(void);

/** The page's Content-Security-Policy: its script and style allowed by hash, nothing else
 * but fetches of its own origin (static storage, computed once). NULL when out of memory. */
const char *api_status_csp(void);

/**
 * The fleet as GET /v1/status answers it: {site, generated_at, total, states{STATE: n},
 * failures[{fqdn, state_since, code, reason, attempts, what_to_do}], expiring[{fqdn,
 * purpose, serial, not_after, days_left}], tasks[{name, last_run, last_result, last_detail,
 * next_run}]}. Failures and certificates are capped (the oldest failures, the soonest
 * expiries) and say how many there were in all (failed_total, active_certificates).
 */
int api_status_json(struct site *site, int64_t now, json_t **out, struct amtprov_error *err);

/** A time in the API's JSON: ISO 8601 UTC ("2026-12-07T19:01:16Z"), as the CLI's --json;
 * null for "never" (0). */
json_t *api_json_time(int64_t t);

/** One-time login links and the sessions they open. */
struct api_sessions;

struct api_sessions *api_sessions_new(void);
/** Wipes every digest. Accepts NULL. */
void api_sessions_free(struct api_sessions *s);

/** Mints a one-time login secret into @p hex (API_STATUS_SECRET_HEX bytes).
 * @return AMTPROV_OK; AMTPROV_E_BUSY when too many are open; AMTPROV_E_CRYPTO */
int api_sessions_mint_link(struct api_sessions *s, int64_t now, char *hex);

/** Uses login secret @p link (once): on success a new session's secret is in @p hex.
 * @return AMTPROV_OK; AMTPROV_E_AUTH (unknown, used or expired link); AMTPROV_E_BUSY */
int api_sessions_login(struct api_sessions *s, int64_t now, const char *link, char *hex);

/** 1 when the Cookie header @p cookie (may be NULL) carries a live session. */
int api_sessions_check(struct api_sessions *s, int64_t now, const char *cookie);

#endif /* AMTPROV_CORE_API_STATUS_H */
