/* SPDX-License-Identifier: Apache-2.0 */
#include "dl.h"

#include <pthread.h>
#include <stdlib.h>

#include <ltdl.h>

struct adl {
	lt_dlhandle handle;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;
/* Serializes every libltdl call: its error state is global. */
static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;

static void dl_init(void)
{
	init_failed = lt_dlinit() != 0;
}

int adl_open(const char *path, struct adl **out, struct amtprov_error *err)
{
	lt_dladvise advise;
	lt_dlhandle h = NULL;
	struct adl *dl;
	const char *why = NULL;

	pthread_once(&init_once, dl_init);
	if (init_failed)
		return amtprov_error_set(err, AMTPROV_E_INTERNAL, path, "lt_dlinit failed");
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return amtprov_error_set(err, AMTPROV_E_NOMEM, path, "out of memory");
	pthread_mutex_lock(&dl_lock);
	if (lt_dladvise_init(&advise) == 0) {
		/* Local symbols keep two plugins' helpers from resolving to each other. */
		lt_dladvise_local(&advise);
#ifdef AMTPROV_SANITIZE_BUILD
		/* Keep modules mapped so leak reports still name plugin functions. */
		lt_dladvise_resident(&advise);
#endif
		h = lt_dlopenadvise(path, advise);
		lt_dladvise_destroy(&advise);
	}
	if (!h)
		why = lt_dlerror();
	pthread_mutex_unlock(&dl_lock);
	if (!h) {
		free(dl);
		return amtprov_error_set(err, AMTPROV_E_NOT_FOUND, path,
					 "cannot load plugin: %s (check its dependencies with ldd)",
					 why ? why : "unknown reason");
	}
	dl->handle = h;
	*out = dl;
	return AMTPROV_OK;
}

void *adl_sym(struct adl *dl, const char *name)
{
	void *p;

	if (!dl)
		return NULL;
	pthread_mutex_lock(&dl_lock);
	p = lt_dlsym(dl->handle, name);
	pthread_mutex_unlock(&dl_lock);
	return p;
}

void adl_close(struct adl *dl)
{
	if (!dl)
		return;
	pthread_mutex_lock(&dl_lock);
	lt_dlclose(dl->handle);
	pthread_mutex_unlock(&dl_lock);
	free(dl);
}
