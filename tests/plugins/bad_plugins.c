/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bad_plugins.c - plugins the loader must refuse (or, for optional-thing, accept with only
 * its mandatory slot), one module per defect. Compiled once per module with one of:
 *
 *   BAD_ABI_MAJOR      descriptor built for ABI major + 1 (written by hand, not the macro)
 *   BAD_MAGIC          descriptor whose magic is wrong
 *   NO_DESCRIPTOR      exports some other symbol, no amtprov_plugin
 *   WRONG_NAME         descriptor .name differs from the file stem
 *   CA_MISSING_SUBMIT  CA without its mandatory submit slot
 *   CAP_WITHOUT_SLOT   declares ca:revoke but has no revoke slot
 *   SMALL_STRUCT       struct_size smaller than the ABI 1.0 descriptor
 *   CREATE_FAILS       create() refuses its configuration with a message and a JSON path
 *   OPTIONAL_THING     a valid CA whose vtable stops after submit (an "older" plugin): the
 *                      slots after struct_size hold functions the core must never call
 *
 * Each defect is the only thing wrong with its module, so a test that sees the expected
 * refusal knows which check caught it.
 */
#include <stdint.h>
#include <stdlib.h>

#include <amtprov/ca.h>

/* Some variants leave one of the shared pieces below unreferenced on purpose. */
#define BP_MAYBE_UNUSED __attribute__((unused))

static int bp_create(const struct amtprov_host *host, const struct json_t *config,
		     void **instance, struct amtprov_error *err)
{
#ifdef CREATE_FAILS
	host->log(host, AMTPROV_LOG_DEBUG, "refusing configuration on purpose");
	return amtprov_error_set(err, AMTPROV_E_CONFIG, "/ca_url",
				 "create-fails: ca_url must be an https URL (this plugin always "
				 "fails)");
#else
	/* Any non-NULL handle will do; the instance holds no state. */
	static int dummy;

	*instance = &dummy;
	return AMTPROV_OK;
#endif
}

static void bp_destroy(void *instance)
{
}

BP_MAYBE_UNUSED static int bp_submit(void *instance, const struct amtprov_ca_request *req,
		     struct amtprov_ca_result *res, struct amtprov_error *err)
{
	res->outcome = AMTPROV_CA_REJECTED;
	snprintf(res->message, sizeof(res->message), "bad plugin: never issues");
	return AMTPROV_OK;
}

BP_MAYBE_UNUSED static const char *const bp_caps[] = {
	AMTPROV_CAP_CA_SUBMIT,
#ifdef CAP_WITHOUT_SLOT
	AMTPROV_CAP_CA_REVOKE,
#endif
	NULL,
};

#if defined(OPTIONAL_THING)
/* Placed beyond struct_size: if the core honours struct_size it never calls these. */
static int must_not_poll(void *instance, const struct amtprov_ca_request *req,
			 const char *cookie, struct amtprov_ca_result *res,
			 struct amtprov_error *err)
{
	abort();
}

static int must_not_revoke(void *instance, const struct amtprov_ca_revocation *rev,
			   struct amtprov_ca_result *res, struct amtprov_error *err)
{
	abort();
}

static int must_not_fetch_crl(void *instance, uint8_t **crl_der, size_t *crl_len,
			      struct amtprov_error *err)
{
	abort();
}

static const struct amtprov_ca_ops bp_ops = {
	.struct_size = offsetof(struct amtprov_ca_ops, submit) +
		       sizeof(((struct amtprov_ca_ops *)0)->submit),
	.submit = bp_submit,
	.poll = must_not_poll,
	.revoke = must_not_revoke,
	.fetch_crl = must_not_fetch_crl,
};
#else
static const struct amtprov_ca_ops bp_ops = {
	.struct_size = sizeof(struct amtprov_ca_ops),
#ifndef CA_MISSING_SUBMIT
	.submit = bp_submit,
#endif
};
#endif

#if defined(BAD_ABI_MAJOR)
/* Written out by hand: AMTPROV_PLUGIN_DEFINE would stamp the current ABI. */
AMTPROV_EXPORT const struct amtprov_plugin amtprov_plugin = {
	.magic = AMTPROV_PLUGIN_MAGIC,
	.abi_major = AMTPROV_ABI_MAJOR + 1,
	.abi_minor = 7,
	.struct_size = sizeof(struct amtprov_plugin),
	.kind = AMTPROV_KIND_CA,
	.name = "bad-abi-major",
	.version = "9.9",
	.capabilities = bp_caps,
	.create = bp_create,
	.destroy = bp_destroy,
	.ops = &bp_ops,
};
#elif defined(BAD_MAGIC)
AMTPROV_EXPORT const struct amtprov_plugin amtprov_plugin = {
	.magic = 0x0123456789abcdefULL,
	.abi_major = AMTPROV_ABI_MAJOR,
	.abi_minor = AMTPROV_ABI_MINOR,
	.struct_size = sizeof(struct amtprov_plugin),
	.kind = AMTPROV_KIND_CA,
	.name = "bad-magic",
	.capabilities = bp_caps,
	.create = bp_create,
	.destroy = bp_destroy,
	.ops = &bp_ops,
};
#elif defined(NO_DESCRIPTOR)
/* Looks like a plugin to a careless loader (it has code and an export), but not to ours. */
AMTPROV_EXPORT const struct amtprov_ca_ops *const amtprov_ca_ops_table = &bp_ops;
AMTPROV_EXPORT int (*const amtprov_create_fn)(const struct amtprov_host *, const struct json_t *,
					      void **, struct amtprov_error *) = bp_create;
AMTPROV_EXPORT void (*const amtprov_destroy_fn)(void *) = bp_destroy;
#elif defined(SMALL_STRUCT)
/* An older, shorter descriptor layout: the header is right, the size is not. The loader must
 * refuse it before reading anything past struct_size. */
struct small_descriptor {
	uint64_t magic;
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size;
	uint32_t kind;
	uint32_t flags;
	const char *name;
};
AMTPROV_EXPORT const struct small_descriptor amtprov_plugin = {
	.magic = AMTPROV_PLUGIN_MAGIC,
	.abi_major = AMTPROV_ABI_MAJOR,
	.abi_minor = AMTPROV_ABI_MINOR,
	.struct_size = sizeof(struct small_descriptor),
	.kind = AMTPROV_KIND_CA,
	.name = "small-struct",
};
/* Referenced so the compiler keeps the vtable's functions quiet about being unused. */
AMTPROV_EXPORT const struct amtprov_ca_ops *const small_struct_ops = &bp_ops;
AMTPROV_EXPORT void (*const small_struct_destroy)(void *) = bp_destroy;
AMTPROV_EXPORT int (*const small_struct_create)(const struct amtprov_host *,
						const struct json_t *, void **,
						struct amtprov_error *) = bp_create;
#else
#if defined(WRONG_NAME)
#define BP_NAME "some-other-name"
#elif defined(CA_MISSING_SUBMIT)
#define BP_NAME "ca-missing-submit"
#elif defined(CAP_WITHOUT_SLOT)
#define BP_NAME "cap-without-slot"
#elif defined(CREATE_FAILS)
#define BP_NAME "create-fails"
#elif defined(OPTIONAL_THING)
#define BP_NAME "optional-thing"
#else
#error "compile with one of the defect macros listed at the top"
#endif
AMTPROV_PLUGIN_DEFINE(.kind = AMTPROV_KIND_CA, .name = BP_NAME, .version = "0.1.0",
		      .description = "a test plugin with one defect", .capabilities = bp_caps,
		      .create = bp_create, .destroy = bp_destroy, .ops = &bp_ops);
#endif
