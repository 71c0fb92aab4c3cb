/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checked calls into plugins. The core never calls a vtable slot directly: these wrappers
 * check the kind, the slot (struct_size and non-NULL), the declared capability, lock
 * non-thread-safe instances, set the log context, and validate what comes back, so a
 * buggy plugin yields a clear error naming it instead of undefined behavior.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "metrics.h"
#include "plugin_host_int.h"
#include "util.h"

#define SLOT(ops, type, member) \
	((ops)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member) && (ops)->member)

/* Runs one call into the plugin (the statement after @p device) inside pi_enter/pi_leave:
 * the instance's lock when it is not thread-safe, the log context naming @p device. */
#define PI_RUN(pi, device, ...)                     \
	do {                                        \
		struct pi_call pi_run_;             \
		pi_enter(&pi_run_, (pi), (device)); \
		__VA_ARGS__;                        \
		pi_leave(&pi_run_);                 \
	} while (0)

/* An optional slot (ABI 1.2) that the plugin does not have: AMTPROV_E_NOT_SUPPORTED, naming
 * the plugin, what it cannot do and the slot, then @p hint (may be ""). */
static int no_slot(struct plugin_instance *pi, const char *cannot, const char *slot,
		   const char *hint, struct amtprov_error *err)
{
	return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
				 "%s plugin '%s' cannot %s (no %s, ABI 1.2)%s",
				 plugin_kind_name(pi->mod->desc->kind), pi->name, cannot, slot, hint);
}

static int wrong_kind(struct plugin_instance *pi, uint32_t kind, struct amtprov_error *err)
{
	return amtprov_error_set(err, AMTPROV_E_INTERNAL, pi->name,
				 "instance '%s' is a %s plugin, not %s", pi->name,
				 plugin_kind_name(pi->mod->desc->kind), plugin_kind_name(kind));
}

static const struct amtprov_ca_ops *ca_ops(struct plugin_instance *pi, struct amtprov_error *err)
{
	if (pi->mod->desc->kind != AMTPROV_KIND_CA) {
		wrong_kind(pi, AMTPROV_KIND_CA, err);
		return NULL;
	}
	return pi->mod->desc->ops;
}

void pi_ca_result_release(struct amtprov_ca_result *res)
{
	if (!res)
		return;
	free(res->cert_der);
	free(res->chain_pem);
	res->cert_der = NULL;
	res->cert_len = 0;
	res->chain_pem = NULL;
}

static void result_init(struct amtprov_ca_result *res)
{
	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	res->outcome = AMTPROV_CA_NOT_SUPPORTED;
}

/* Validates a result so callers can trust it. */
static int check_result(struct plugin_instance *pi, const char *op, int want_cert,
			struct amtprov_ca_result *res, struct amtprov_error *err)
{
	/* Force termination: a plugin that filled a buffer to the brim must not make us read
	 * past it. */
	res->cookie[sizeof(res->cookie) - 1] = '\0';
	res->message[sizeof(res->message) - 1] = '\0';
	res->request_id[sizeof(res->request_id) - 1] = '\0';
	switch (res->outcome) {
	case AMTPROV_CA_ISSUED:
		if (want_cert && (!res->cert_der || res->cert_len == 0))
			goto bad;
		break;
	case AMTPROV_CA_WAIT:
	case AMTPROV_CA_WAIT_WITH_DELAY:
		if (!res->cookie[0])
			goto bad;
		break;
	case AMTPROV_CA_REJECTED:
	case AMTPROV_CA_UNREACHABLE:
	case AMTPROV_CA_UNCONFIGURED:
	case AMTPROV_CA_NOT_SUPPORTED:
	case AMTPROV_CA_NEED_REKEY:
		break;
	default:
		pi_ca_result_release(res);
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "CA plugin '%s' returned unknown outcome %u from %s", pi->name,
					 (unsigned)res->outcome, op);
	}
	if (res->outcome != AMTPROV_CA_ISSUED)
		pi_ca_result_release(res);
	return AMTPROV_OK;
bad:
	pi_ca_result_release(res);
	return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
				 "CA plugin '%s' returned %s from %s without the data it needs",
				 pi->name, amtprov_ca_outcome_name(res->outcome), op);
}

/* metrics.h: one CA call, answered by its outcome, or "error" when it failed. */
static int ca_counted(struct plugin_instance *pi, const char *op, int64_t t0, int rc,
		      const struct amtprov_ca_result *res)
{
	metrics_ca_call(pi->name, op,
			rc == AMTPROV_OK ? amtprov_ca_outcome_name(res->outcome) : "error",
			(double)(util_monotonic_ms() - t0) / 1000.0);
	return rc;
}

int pi_ca_submit(struct plugin_instance *pi, const char *device,
		 const struct amtprov_ca_request *req, struct amtprov_ca_result *res,
		 struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int64_t t0;
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	result_init(res);
	t0 = util_monotonic_ms();
	PI_RUN(pi, device, rc = o->submit(pi->handle, req, res, err));
	if (rc != AMTPROV_OK) {
		pi_ca_result_release(res);
		ca_counted(pi, "submit", t0, rc, res);
		return amtprov_error_set(err, rc, pi->name, "CA '%s' submit failed: %s", pi->name,
					 amtprov_strerror(rc));
	}
	return ca_counted(pi, "submit", t0, check_result(pi, "submit", 1, res, err), res);
}

int pi_ca_csr_attributes(struct plugin_instance *pi, const char *device,
			 const struct amtprov_ca_request *req, struct amtprov_secret **attrs,
			 struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int rc;

	*attrs = NULL;
	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_ca_ops, csr_attributes))
		return AMTPROV_OK; /* a CA before ABI 1.1 wants none */
	PI_RUN(pi, device, rc = o->csr_attributes(pi->handle, req, attrs, err));
	if (rc != AMTPROV_OK) {
		util_secret_free(*attrs);
		*attrs = NULL;
		return amtprov_error_set(err, rc, pi->name, "CA '%s' csr_attributes failed: %s",
					 pi->name, err->msg[0] ? err->msg : amtprov_strerror(rc));
	}
	return AMTPROV_OK;
}

int pi_ca_poll(struct plugin_instance *pi, const char *device,
	       const struct amtprov_ca_request *req, const char *cookie,
	       struct amtprov_ca_result *res, struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	char ck[AMTPROV_CA_COOKIE_SIZE];
	int64_t t0;
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	/* The caller may pass the previous result's own cookie: copy it before that result is
	 * cleared for the new answer. */
	snprintf(ck, sizeof(ck), "%s", cookie ? cookie : "");
	result_init(res);
	if (!SLOT(o, struct amtprov_ca_ops, poll) || !plugin_instance_has_cap(pi, AMTPROV_CAP_CA_POLL))
		return AMTPROV_OK; /* outcome NOT_SUPPORTED */
	t0 = util_monotonic_ms();
	PI_RUN(pi, device, rc = o->poll(pi->handle, req, ck, res, err));
	if (rc != AMTPROV_OK) {
		pi_ca_result_release(res);
		ca_counted(pi, "poll", t0, rc, res);
		return amtprov_error_set(err, rc, pi->name, "CA '%s' poll failed: %s", pi->name,
					 amtprov_strerror(rc));
	}
	return ca_counted(pi, "poll", t0, check_result(pi, "poll", 1, res, err), res);
}

int pi_ca_revoke(struct plugin_instance *pi, const char *device,
		 const struct amtprov_ca_revocation *rev, struct amtprov_ca_result *res,
		 struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int64_t t0;
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	result_init(res);
	if (!SLOT(o, struct amtprov_ca_ops, revoke) ||
	    !plugin_instance_has_cap(pi, AMTPROV_CAP_CA_REVOKE))
		return AMTPROV_OK;
	t0 = util_monotonic_ms();
	PI_RUN(pi, device, rc = o->revoke(pi->handle, rev, res, err));
	if (rc != AMTPROV_OK) {
		pi_ca_result_release(res);
		ca_counted(pi, "revoke", t0, rc, res);
		return amtprov_error_set(err, rc, pi->name, "CA '%s' revoke failed: %s", pi->name,
					 amtprov_strerror(rc));
	}
	return ca_counted(pi, "revoke", t0, check_result(pi, "revoke", 0, res, err), res);
}

int pi_ca_fetch_crl(struct plugin_instance *pi, uint8_t **der, size_t *len,
		    struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_ca_ops, fetch_crl) || !plugin_instance_has_cap(pi, AMTPROV_CAP_CA_CRL))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
					 "CA '%s' does not publish a CRL", pi->name);
	*der = NULL;
	*len = 0;
	PI_RUN(pi, NULL, rc = o->fetch_crl(pi->handle, der, len, err));
	if (rc == AMTPROV_OK && (!*der || !*len)) {
		free(*der);
		*der = NULL;
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "CA '%s' returned an empty CRL", pi->name);
	}
	return rc;
}

int pi_ca_fetch_roots(struct plugin_instance *pi, char **pem, struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_ca_ops, fetch_roots) ||
	    !plugin_instance_has_cap(pi, AMTPROV_CAP_CA_ROOTS))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
					 "CA '%s' cannot return its roots", pi->name);
	*pem = NULL;
	PI_RUN(pi, NULL, rc = o->fetch_roots(pi->handle, pem, err));
	return rc;
}

int pi_ca_list_templates(struct plugin_instance *pi, amtprov_ca_template_cb cb, void *ctx,
			 struct amtprov_error *err)
{
	const struct amtprov_ca_ops *o = ca_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_ca_ops, list_templates) ||
	    !plugin_instance_has_cap(pi, AMTPROV_CAP_CA_TEMPLATES))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
					 "CA '%s' cannot list templates", pi->name);
	PI_RUN(pi, NULL, rc = o->list_templates(pi->handle, cb, ctx, err));
	return rc;
}

static const struct amtprov_credstore_ops *cs_ops(struct plugin_instance *pi,
						  struct amtprov_error *err)
{
	if (pi->mod->desc->kind != AMTPROV_KIND_CREDSTORE) {
		wrong_kind(pi, AMTPROV_KIND_CREDSTORE, err);
		return NULL;
	}
	return pi->mod->desc->ops;
}

int pi_credstore_get(struct plugin_instance *pi, const char *name,
		     struct amtprov_secret **out, struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *o = cs_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	*out = NULL;
	PI_RUN(pi, NULL, rc = o->get(pi->handle, name, out, err));
	if (rc == AMTPROV_OK && !*out)
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "credential store '%s' returned no secret", pi->name);
	return rc;
}

int pi_credstore_put(struct plugin_instance *pi, const char *name,
		     const struct amtprov_secret *value, struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *o = cs_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, NULL, rc = o->put(pi->handle, name, value, err));
	return rc;
}

int pi_credstore_remove(struct plugin_instance *pi, const char *name,
			struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *o = cs_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, NULL, rc = o->remove(pi->handle, name, err));
	return rc;
}

int pi_credstore_list(struct plugin_instance *pi, amtprov_credstore_name_cb cb, void *ctx,
		      struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *o = cs_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_credstore_ops, list))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
					 "credential store '%s' cannot list records", pi->name);
	PI_RUN(pi, NULL, rc = o->list(pi->handle, cb, ctx, err));
	return rc;
}

int pi_credstore_rotate(struct plugin_instance *pi, struct amtprov_error *err)
{
	const struct amtprov_credstore_ops *o = cs_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (!SLOT(o, struct amtprov_credstore_ops, rotate_key) ||
	    !plugin_instance_has_cap(pi, AMTPROV_CAP_CREDSTORE_ROTATE))
		return amtprov_error_set(err, AMTPROV_E_NOT_SUPPORTED, pi->name,
					 "credential store '%s' cannot rotate its key", pi->name);
	PI_RUN(pi, NULL, rc = o->rotate_key(pi->handle, err));
	return rc;
}

static const struct amtprov_transport_ops *tr_ops(struct plugin_instance *pi,
						  struct amtprov_error *err)
{
	if (pi->mod->desc->kind != AMTPROV_KIND_TRANSPORT) {
		wrong_kind(pi, AMTPROV_KIND_TRANSPORT, err);
		return NULL;
	}
	return pi->mod->desc->ops;
}

int pi_transport_session_open(struct plugin_instance *pi,
			      const struct amtprov_transport_target *target, void **session,
			      struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	*session = NULL;
	PI_RUN(pi, target->device ? target->device->fqdn : NULL,
	       rc = o->session_open(pi->handle, target, session, err));
	if (rc == AMTPROV_OK && !*session)
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "transport '%s' opened no session", pi->name);
	return rc;
}

void pi_transport_session_close(struct plugin_instance *pi, void *session)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, NULL);

	if (!o || !session)
		return;
	PI_RUN(pi, NULL, o->session_close(pi->handle, session));
}

void pi_transport_device_idle(struct plugin_instance *pi, const char *address, uint16_t port)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, NULL);

	if (!o || !address || !AMTPROV_HAS_SLOT(o, struct amtprov_transport_ops, device_idle) ||
	    !o->device_idle)
		return;
	PI_RUN(pi, NULL, o->device_idle(pi->handle, address, port));
}

int pi_transport_begin(struct plugin_instance *pi, void *session, uint32_t op,
		       const json_t *params, amtprov_transport_done_cb done, void *cb_ctx,
		       struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, NULL, rc = o->begin(pi->handle, session, op, params, done, cb_ctx, err));
	/* begin() has no result to give at once: OK would leave the caller waiting for a
	 * done callback that the ABI does not promise. */
	if (rc == AMTPROV_OK)
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "transport '%s' answered begin() with OK instead of AGAIN",
					 pi->name);
	return rc;
}

int pi_transport_get_wait(struct plugin_instance *pi, struct amtprov_wait *wait,
			  struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	wait->fd = -1;
	wait->events = 0;
	wait->timeout_ms = -1;
	PI_RUN(pi, NULL, rc = o->get_wait(pi->handle, wait, err));
	return rc;
}

int pi_transport_drive(struct plugin_instance *pi, struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, NULL, rc = o->drive(pi->handle, err));
	return rc;
}

int pi_transport_finish(struct plugin_instance *pi, void *session, json_t **result,
			struct amtprov_error *err)
{
	const struct amtprov_transport_ops *o = tr_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	*result = NULL;
	PI_RUN(pi, NULL, rc = o->finish(pi->handle, session, result, err));
	if (rc == AMTPROV_OK && !*result)
		return amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->mod->path,
					 "transport '%s' finished an operation without a result",
					 pi->name);
	if (rc != AMTPROV_OK && *result) {
		json_decref(*result);
		*result = NULL;
	}
	return rc;
}

static const struct amtprov_directory_ops *dir_ops(struct plugin_instance *pi,
						   struct amtprov_error *err)
{
	if (pi->mod->desc->kind != AMTPROV_KIND_DIRECTORY) {
		wrong_kind(pi, AMTPROV_KIND_DIRECTORY, err);
		return NULL;
	}
	return pi->mod->desc->ops;
}

int pi_directory_create(struct plugin_instance *pi, const char *device,
			const struct amtprov_directory_account *acct,
			struct amtprov_secret **password, struct amtprov_error *err)
{
	const struct amtprov_directory_ops *o = dir_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (password)
		*password = NULL;
	PI_RUN(pi, device, rc = o->create_account(pi->handle, acct, password, err));
	return rc;
}

int pi_directory_delete(struct plugin_instance *pi, const char *device, const char *fqdn,
			struct amtprov_error *err)
{
	const struct amtprov_directory_ops *o = dir_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, device, rc = o->delete_account(pi->handle, fqdn, err));
	return rc;
}

int pi_directory_keyinfo(struct plugin_instance *pi, const char *fqdn,
			 struct amtprov_directory_keyinfo *out, struct amtprov_error *err)
{
	const struct amtprov_directory_ops *o = dir_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	memset(out, 0, sizeof(*out));
	out->struct_size = sizeof(*out);
	if (!SLOT(o, struct amtprov_directory_ops, account_keyinfo))
		return no_slot(pi, "report an account's Kerberos keys", "account_keyinfo", "", err);
	PI_RUN(pi, fqdn, rc = o->account_keyinfo(pi->handle, fqdn, out, err));
	/* the plugin's strings are ours to print: make sure they end */
	out->realm[sizeof(out->realm) - 1] = '\0';
	out->salt[sizeof(out->salt) - 1] = '\0';
	if (rc == AMTPROV_OK && (!out->realm[0] || !out->kvno))
		rc = amtprov_error_set(err, AMTPROV_E_PROTOCOL, pi->name,
				       "directory plugin '%s' reported no realm or key version "
				       "for %s", pi->name, fqdn);
	return rc;
}

int pi_directory_resolve_sid(struct plugin_instance *pi, const char *device, const char *name,
			     char *sid, size_t sid_size, struct amtprov_error *err)
{
	const struct amtprov_directory_ops *o = dir_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	if (sid_size)
		sid[0] = '\0';
	if (!SLOT(o, struct amtprov_directory_ops, resolve_sid)) {
		char hint[512];

		snprintf(hint, sizeof(hint), ": give '%s' as a SID", name);
		return no_slot(pi, "resolve names to SIDs", "resolve_sid", hint, err);
	}
	PI_RUN(pi, device, rc = o->resolve_sid(pi->handle, name, sid, sid_size, err));
	if (sid_size)
		sid[sid_size - 1] = '\0';
	return rc;
}

static const struct amtprov_netprofile_ops *np_ops(struct plugin_instance *pi,
						   struct amtprov_error *err)
{
	if (pi->mod->desc->kind != AMTPROV_KIND_NETPROFILE) {
		wrong_kind(pi, AMTPROV_KIND_NETPROFILE, err);
		return NULL;
	}
	return pi->mod->desc->ops;
}

int pi_netprofile_cert_needs(struct plugin_instance *pi, const json_t *profiles,
			     const struct amtprov_device_info *device,
			     amtprov_netprofile_need_cb cb, void *ctx, struct amtprov_error *err)
{
	const struct amtprov_netprofile_ops *o = np_ops(pi, err);
	int rc;

	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, device ? device->fqdn : NULL,
	       rc = o->cert_needs(pi->handle, profiles, device, cb, ctx, err));
	return rc;
}

int pi_netprofile_render(struct plugin_instance *pi, const json_t *profiles,
			 const struct amtprov_device_info *device,
			 const struct amtprov_netprofile_cert *certs, size_t n_certs,
			 json_t **params, struct amtprov_error *err)
{
	const struct amtprov_netprofile_ops *o = np_ops(pi, err);
	int rc;

	*params = NULL;
	if (!o)
		return AMTPROV_E_INTERNAL;
	PI_RUN(pi, device ? device->fqdn : NULL,
	       rc = o->render(pi->handle, profiles, device, certs, n_certs, params, err));
	if (rc == AMTPROV_OK && !json_is_object(*params))
		rc = amtprov_error_set(err, AMTPROV_E_INTERNAL, pi->name,
				       "netprofile plugin '%s' rendered no object", pi->name);
	if (rc != AMTPROV_OK && *params) {
		json_decref(*params);
		*params = NULL;
	}
	return rc;
}
