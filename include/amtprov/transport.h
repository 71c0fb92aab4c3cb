/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file transport.h
 * @brief The AMT transport plugin vtable (kind AMTPROV_KIND_TRANSPORT).
 *
 * A transport reaches AMT firmware (HTTPS + Digest) and speaks its management protocols:
 * legacy SOAP for the first stage of AMT < 9.0 and WS-Management for the second stage and
 * for the first stage of AMT >= 9.0. The core drives the provisioning flow by calling
 * *operations* (enum amtprov_amt_op); how an operation maps onto SOAP or WS-Man for a given
 * AMT version is the transport's business: the core names operations (keys, certificates,
 * bindings, wireless profiles), never a WS-Man class.
 *
 * Everything here is asynchronous, so one thread drives thousands of devices:
 *   1. session_open()  - describe the device and credentials; no I/O yet.
 *   2. begin()         - start an operation; returns AMTPROV_AGAIN.
 *   3. get_wait()      - the instance's single pollable fd and its next timeout.
 *   4. drive()         - called by the core when the fd is ready or the timeout passed; the
 *                        plugin calls the `done` callback of each operation that finished.
 *   5. finish()        - collect the result of a finished operation.
 * Operation parameters and results are JSON objects; each op's keys are documented below.
 */
#ifndef AMTPROV_TRANSPORT_H
#define AMTPROV_TRANSPORT_H

#include <amtprov/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Connection modes. */
enum amtprov_transport_mode {
	/** During provisioning: present the provisioning certificate and its full chain as the
	 * TLS client certificate (R-PROV-07); accept AMT's self-signed certificate, only for
	 * this session's address. */
	AMTPROV_TRANSPORT_PROVISIONING = 1,
	/** After provisioning: verify the device's certificate against ca_bundle_pem and its
	 * CRL, failing closed when the CRL cannot be had (R-REV-01). */
	AMTPROV_TRANSPORT_MANAGED = 2,
};

/** One Digest account to try (R-PROV-09). Borrowed. */
struct amtprov_transport_account {
	const char *user;
	const struct amtprov_secret *password;
};

/** How to reach one device. Everything borrowed for the duration of session_open(); the
 * plugin copies what it keeps (secrets into host->secret_new buffers). */
struct amtprov_transport_target {
	uint32_t struct_size;
	const struct amtprov_device_info *device;
	const char *address;     /**< IP address or name to connect to */
	uint16_t port;           /**< normally 16993 */
	uint32_t mode;           /**< enum amtprov_transport_mode */
	const char *client_chain_pem;               /**< PROVISIONING: leaf first, then chain */
	const struct amtprov_secret *client_key_pem; /**< PROVISIONING: the leaf's key */
	const char *ca_bundle_pem;                  /**< MANAGED: trust anchors for the device */
	const char *crl_url;                        /**< MANAGED: where to fetch the CRL */
	/** Accounts tried in order on Digest failure (R-PROV-08/09). */
	const struct amtprov_transport_account *accounts;
	size_t n_accounts;
	int64_t timeout_ms;      /**< per operation; 0: plugin default */
	/* --- end of ABI 1.0 --- */
};

/**
 * Operations. Append-only; a transport that does not know one returns
 * AMTPROV_E_NOT_SUPPORTED from begin(). Keys of params -> result in brackets.
 */
enum amtprov_amt_op {
	AMTPROV_AMT_GET_CORE_VERSION = 1,    /**< {} -> {"version":"11.8.50"} */
	AMTPROV_AMT_GET_SETUP_STATE = 2,     /**< {} -> {"state":"pre|in|post","mode":...} */
	AMTPROV_AMT_GET_OTP_HASH = 3,        /**< {} -> {"otp_hash":hex} (R-PROV-05) */
	AMTPROV_AMT_GET_HASHES = 4,          /**< {} -> {"hashes":[{"algorithm","hash",...}]} */
	AMTPROV_AMT_SET_TIME = 5,            /**< {"time":epoch} -> {} */
	AMTPROV_AMT_SET_HOST_NAME = 6,       /**< {"host":..,"domain":..} -> {} */
	AMTPROV_AMT_GENERATE_KEY_PAIR = 7,   /**< {"bits":2048} -> {"key_handle":..} */
	AMTPROV_AMT_SIGN_CSR = 8,            /**< {"key_handle","csr_der_b64"} -> {"csr_der_b64"} */
	AMTPROV_AMT_ADD_KEY = 9,             /**< {"key_der_b64"} -> {"key_handle"} */
	AMTPROV_AMT_ADD_CERTIFICATE = 10,    /**< {"cert_der_b64","chain":[..]} -> {"cert_handle"} */
	AMTPROV_AMT_ENABLE_TLS = 11,         /**< {"cert_handle","mutual":false} -> {} */
	AMTPROV_AMT_SET_ADMIN_PASSWORD = 12, /**< {"credential":name} -> {} */
	AMTPROV_AMT_SET_MEBX_PASSWORD = 13,  /**< {"credential":name} -> {} */
	AMTPROV_AMT_COMMIT = 14,             /**< {} -> {} (post-provisioning after this) */
	AMTPROV_AMT_UNPROVISION = 15,        /**< {} -> {} */
	AMTPROV_AMT_SET_ACLS = 16,           /**< {"accounts":[...]} -> {} (R-PROV-11 1) */
	AMTPROV_AMT_SET_KERBEROS = 17,       /**< {"enabled":bool,...} -> {} */
	AMTPROV_AMT_SET_POWER_POLICY = 18,   /**< {"policy":..} -> {} */
	AMTPROV_AMT_SET_REDIRECTION = 19,    /**< {"sol","ider","web_ui"} -> {} */
	AMTPROV_AMT_SET_PING = 20,           /**< {"enabled":bool} -> {} */
	AMTPROV_AMT_SET_8021X = 21,          /**< {"wired":{..},"wireless":[..]} -> {} */
	AMTPROV_AMT_GET_DEVICE_CERT = 22,    /**< {} -> {"cert_der_b64"} (TLS server cert) */
	AMTPROV_AMT_DELETE_CERTIFICATE = 23, /**< {"cert_handle"} -> {} */
	/* Generic WS-Management access (any AMT >= 3), for plugins, for settings no operation
	 * covers; the core uses the semantic operations instead.
	 * "class" is "AMT_x", "CIM_x", "IPS_x" or a full resource URI; "selectors" an object
	 * of selector names and string values (the EPR). Properties are strings, numbers,
	 * booleans or arrays of them (repeated elements). */
	AMTPROV_AMT_WSMAN_GET = 24,       /**< {"class","selectors"?} -> {"instance":{..}} */
	AMTPROV_AMT_WSMAN_PUT = 25,       /**< {"class","selectors"?,"properties":{..}} ->
					       {"instance":{..}} (the whole instance) */
	AMTPROV_AMT_WSMAN_CREATE = 26,    /**< {"class","properties"} -> {"selectors":{..}} */
	AMTPROV_AMT_WSMAN_DELETE = 27,    /**< {"class","selectors"} -> {} */
	AMTPROV_AMT_WSMAN_ENUMERATE = 28, /**< {"class"} -> {"items":[{..}]} (Enumerate+Pull) */
	AMTPROV_AMT_WSMAN_INVOKE = 29,    /**< {"class","selectors"?,"method","args":{..}} ->
					       {"return_value":0,"output":{..}}; a non-zero
					       ReturnValue is AMTPROV_E_DEVICE */
	/* Semantic operations on AMT's certificate store and the wireless side of 802.1X
	 * (ABI 1.1): the core names these, never a WS-Man class; the generic WSMAN_* ops above
	 * are for plugins. A handle is the instance's InstanceID as AMT reports it; values a
	 * device reports with the wrong type are left out. */
	AMTPROV_AMT_LIST_KEYS = 30,          /**< {} -> {"keys":[{"key_handle",
					       "public_key_b64"?}]}: the key pairs AMT holds;
					       public_key_b64 is the PKCS#1 RSAPublicKey */
	AMTPROV_AMT_GET_KEY = 31,            /**< {"key_handle"} -> {"key_handle",
					       "public_key_b64"?} */
	AMTPROV_AMT_DELETE_KEY = 32,         /**< {"key_handle"} -> {} */
	AMTPROV_AMT_LIST_CERTIFICATES = 33,  /**< {} -> {"certificates":[{"cert_handle",
					       "cert_der_b64","trusted_root"?}]} */
	AMTPROV_AMT_LIST_CERT_BINDINGS = 34, /**< {} -> {"tls":[cert_handle],
					       "links":[cert_handle]}: the certificates the TLS
					       server and the 802.1X / wireless links use */
	AMTPROV_AMT_GET_WIRELESS = 35,       /**< {} -> {"wireless":bool}: a wireless port */
	AMTPROV_AMT_LIST_WIFI_PROFILES = 36, /**< {} -> {"profiles":[{"profile_handle"}]} */
	AMTPROV_AMT_DELETE_WIFI_PROFILE = 37, /**< {"profile_handle"} -> {} */
};

/** Called by the plugin, from drive(), when an operation begun with begin() finished
 * (successfully or not). The core then calls finish(). */
typedef void (*amtprov_transport_done_cb)(void *cb_ctx);

/**
 * Mandatory: everything up to and including finish. A session runs one operation at a time.
 */
struct amtprov_transport_ops {
	uint32_t struct_size;

	int (*start)(void *instance, struct amtprov_error *err);
	void (*stop)(void *instance);

	/** Creates a session for one device; no I/O. @param[out] session opaque. */
	int (*session_open)(void *instance, const struct amtprov_transport_target *target,
			    void **session, struct amtprov_error *err);
	/** Ends a session, aborting a running operation (its `done` is not called). */
	void (*session_close)(void *instance, void *session);

	/**
	 * Starts operation @p op. @p params borrowed for this call.
	 * @return AMTPROV_AGAIN (then exactly one `done(cb_ctx)` follows), or an error
	 *         (AMTPROV_E_NOT_SUPPORTED for an unknown op, AMTPROV_E_STATE if busy).
	 */
	int (*begin)(void *instance, void *session, uint32_t op, const struct json_t *params,
		     amtprov_transport_done_cb done, void *cb_ctx, struct amtprov_error *err);

	/** The instance's pollable fd and the time until drive() must next be called. */
	int (*get_wait)(void *instance, struct amtprov_wait *wait, struct amtprov_error *err);

	/** Performs pending I/O; calls `done` callbacks. Never blocks. */
	int (*drive)(void *instance, struct amtprov_error *err);

	/**
	 * Collects a finished operation's outcome.
	 * @param[out] result new reference (caller json_decref()s) on AMTPROV_OK
	 * @return AMTPROV_OK, or the operation's error: AMTPROV_E_AUTH (every account failed),
	 *         AMTPROV_E_VERIFY (TLS verification), AMTPROV_E_DEVICE (AMT return value, the
	 *         value and its name in err), AMTPROV_E_UNREACHABLE, AMTPROV_E_TIMEOUT, ...
	 */
	int (*finish)(void *instance, void *session, struct json_t **result,
		      struct amtprov_error *err);

	/** Index into target->accounts of the account that authenticated, or -1. Optional. */
	int (*session_account)(void *instance, void *session);
	/* --- end of ABI 1.0 --- */

	/**
	 * Optional (ABI 1.4; the core checks with AMTPROV_HAS_SLOT): the core has no more
	 * sessions for the device at @p address and @p port for now: its steps stopped
	 * following each other (it is provisioned, failed, or waits for a retry or its CA).
	 * A transport that keeps a device's connection between sessions closes the ones it
	 * kept for it (a session still open is not touched); a later session connects anew.
	 * Never blocks. @p address borrowed.
	 */
	void (*device_idle)(void *instance, const char *address, uint16_t port);
	/* --- end of ABI 1.4 --- */
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_TRANSPORT_H */
