/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file api.h
 * @brief The registration API: HTTPS + JSON on the engine's event loop (docs/api.md,
 *        docs/api.openapi.yaml). The host agent of a device registers it here
 *        (R-PROV-01/02/03); amtprovd creates the server after the engine and frees it
 *        before the engine, since it lives on the engine's event base.
 *
 * Everything runs on the loop thread: handlers use the site's store as the engine does and
 * call engine_kick() so a registered device starts provisioning at once.
 */
#ifndef AMTPROV_CORE_API_H
#define AMTPROV_CORE_API_H

#include <amtprov/error.h>

#include "engine.h"
#include "site.h"

struct api;

/**
 * Starts the API the site's manifest describes ("api"); *@p out = NULL (and AMTPROV_OK)
 * when the manifest has none. Reads the administrator tokens and the site registration
 * keys from the credential store, loads the TLS certificate and key, and binds the
 * listening socket.
 * @param engine  borrowed; its event base carries the server
 * @return AMTPROV_OK; AMTPROV_E_CONFIG (certificate, key, token), AMTPROV_E_IO (bind), ...
 */
int api_start(struct site *site, struct engine *engine, struct api **out,
	      struct amtprov_error *err);

/** Closes the socket and every connection, wipes the tokens. Accepts NULL. */
void api_free(struct api *a);

/** The port actually bound (useful when the manifest asks for an ephemeral one). */
int api_port(const struct api *a);

#endif /* AMTPROV_CORE_API_H */
