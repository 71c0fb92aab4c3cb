/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest.c - the site manifest loader (core/site/manifest.c): the input is the manifest
 * text. Every refusal must come with a problem and a summary; a loaded manifest is walked
 * (plugins, required capabilities) before it is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Every capability names an instance the manifest declares. */
static int cap_cb(void *ctx, const char *instance, const char *cap, const char *json_path)
{
	const struct manifest *m = ctx;

	if (!instance || !cap || !json_path || !cap[0])
		abort();
	(void)manifest_plugin_find(m, instance);
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static FILE *devnull;
	struct manifest_problems problems = {0};
	struct manifest *m = NULL;
	struct amtprov_error err;
	char *text = malloc(size + 1);
	int rc;

	if (!text)
		return 0;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	memcpy(text, data, size);
	text[size] = '\0';
	amtprov_error_clear(&err);
	/* Relative paths in it resolve against a directory that does not exist. */
	rc = manifest_load_string(text, "/nonexistent/amtprov-fuzz/site.json", &m, &problems,
				  &err);
	if (rc != AMTPROV_OK && (err.code == AMTPROV_OK || m))
		abort(); /* refused without a reason, or refused yet returned */
	if (rc == AMTPROV_OK && !m)
		abort();
	if (m) {
		for (size_t i = 0; i < m->n_plugins; i++)
			if (manifest_plugin_find(m, m->plugins[i].instance) == NULL)
				abort();
		manifest_required_caps(m, cap_cb, m);
	}
	if (devnull)
		manifest_problems_print(&problems, "site.json", devnull);
	manifest_problems_free(&problems);
	manifest_free(m);
	free(text);
	return 0;
}
