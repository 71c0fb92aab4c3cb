/* SPDX-License-Identifier: Apache-2.0 */
/* Pre-provisioning TLS of AMT 19+: a certificate chain of a simulated CSME On-Die CA. */
#ifndef AMTSIM_ODCA_H
#define AMTSIM_ODCA_H

#include <openssl/x509.h>

#include "device.h"

/** Loads DIR/odca.pem or makes and stores it; writes DIR/odca-root.pem. @return 0 or -1. */
int odca_init(const char *dir);
void odca_free(void);

/** The device's pre-provisioning identity: a leaf "AMT RCFG" over its own key, and the
 * issuing chain (3 certificates, leaf excluded). @return 0, or -1 (odca_init not done). */
int odca_identity(const struct device *d, X509 **cert, EVP_PKEY **key, STACK_OF(X509) **chain);

#endif /* AMTSIM_ODCA_H */
