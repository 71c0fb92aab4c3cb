/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file flow.h
 * @brief The provisioning flow's step handlers, registered on an engine for a site.
 *
 * Implemented so far: REGISTERED (start; choose the first step), NEED_DIRECTORY_ACCOUNT
 * (R-PROV-04: account + SPNs through the directory plugin) and NEED_DEVICE_CHECK
 * (R-PC-05 namespace, R-PROV-01 setup state, R-PROV-05 OTP hash, root hash in the
 * firmware) over the site's transport with the provisioning certificate (R-PROV-07) and
 * the ordered Digest accounts (R-PROV-09). The certificate and configuration steps come
 * next; devices wait in NEED_CERTIFICATE until they land.
 */
#ifndef AMTPROV_CORE_FLOW_H
#define AMTPROV_CORE_FLOW_H

#include <stddef.h>

#include "engine.h"
#include "site.h"

struct flow;

/** The flow's context for @p site (borrowed: the site must outlive it). */
struct flow *flow_new(struct site *site);
/** Frees; the engine it was registered on must be freed first. Accepts NULL. */
void flow_free(struct flow *f);
/** Registers every implemented step handler on @p e. */
int flow_register(struct engine *e, struct flow *f, struct amtprov_error *err);

/**
 * The SPNs AMT needs for Kerberos (R-PROV-04): HTTP/<fqdn>:16992, HTTP/<fqdn>:16993,
 * HTTPS/<fqdn>:16993, and HTTP/<fqdn> (clients such as libcurl ask for the port-less
 * form). Writes up to @p max NULL-terminated pointers into @p out, strings in @p buf.
 * @return number of SPNs, or -1 if the buffer is too small
 */
int flow_device_spns(const char *fqdn, char *buf, size_t buflen, const char **out, size_t max);

/** The directory account name for a device: its first DNS label, upper-cased, cut to 15
 * characters (NetBIOS limit) and suffixed with '$' like computer accounts. */
void flow_account_name(const char *fqdn, char *out, size_t size);

#endif /* AMTPROV_CORE_FLOW_H */
