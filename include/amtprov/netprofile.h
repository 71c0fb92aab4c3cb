/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file netprofile.h
 * @brief The network-profile plugin vtable (kind AMTPROV_KIND_NETPROFILE): 802.1X wired and
 *        wireless profiles, and the client certificates they need (R-8021X, R-PROV-11 3).
 *
 * The core validates the site manifest's `ieee8021x` section (1 wired profile, up to 8
 * wireless profiles, R-8021X-03) and hands it to the plugin as @p profiles. The plugin says which client
 * certificates a device needs (one per profile that requires one, R-8021X-01), and renders
 * the AMT settings (802.1X and wireless objects) once the core has obtained those
 * certificates from the CA plugins. It never talks to a CA or to AMT itself.
 */
#ifndef AMTPROV_NETPROFILE_H
#define AMTPROV_NETPROFILE_H

#include <amtprov/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One client certificate a device needs. Borrowed for the callback only. */
struct amtprov_netprofile_cert_need {
	uint32_t struct_size;
	const char *profile;        /**< profile name (unique within the plugin instance) */
	int wireless;               /**< 0 wired, 1 wireless */
	const char *ca_instance;    /**< CA plugin instance to ask */
	const char *template_name;  /**< template/profile at that CA */
	/* --- end of ABI 1.0 --- */
};

typedef int (*amtprov_netprofile_need_cb)(void *ctx,
					  const struct amtprov_netprofile_cert_need *need);

/** A certificate the core obtained for a profile. Borrowed for the call. */
struct amtprov_netprofile_cert {
	uint32_t struct_size;
	const char *profile;
	const char *cert_handle;    /**< AMT handle of the installed certificate */
	const uint8_t *cert_der;
	size_t cert_len;
	/* --- end of ABI 1.0 --- */
};

/** Mandatory: struct_size, cert_needs, render. */
struct amtprov_netprofile_ops {
	uint32_t struct_size;

	int (*start)(void *instance, struct amtprov_error *err);
	void (*stop)(void *instance);

	/** Calls @p cb for every client certificate @p device needs. @p profiles is the
	 * manifest's validated `ieee8021x` object, borrowed; @p device borrowed. */
	int (*cert_needs)(void *instance, const struct json_t *profiles,
			  const struct amtprov_device_info *device, amtprov_netprofile_need_cb cb,
			  void *ctx, struct amtprov_error *err);

	/**
	 * Builds the params of AMTPROV_AMT_SET_8021X for @p device, binding each profile to its
	 * own certificate (R-8021X-04). @p profiles as for cert_needs (borrowed).
	 * @param[out] params new reference; caller json_decref()s
	 */
	int (*render)(void *instance, const struct json_t *profiles,
		      const struct amtprov_device_info *device,
		      const struct amtprov_netprofile_cert *certs, size_t n_certs,
		      struct json_t **params, struct amtprov_error *err);
	/* --- end of ABI 1.0 --- */
};

#ifdef __cplusplus
}
#endif

#endif /* AMTPROV_NETPROFILE_H */
