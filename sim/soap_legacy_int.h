/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the legacy EOI SOAP services: soap_legacy.c (envelope, service table, read
 * operations) and soap_legacy_set.c (the first-stage write operations of R-PROV-10).
 * Not an API: only the legacy SOAP modules include it.
 */
#ifndef AMTSIM_SOAP_LEGACY_INT_H
#define AMTSIM_SOAP_LEGACY_INT_H

#include <libxml/tree.h>

#include "device.h"
#include "simutil.h"

/* One call: the operation element, the out parameters being written, the service prefix. */
struct lcall {
	struct device *d;
	xmlNodePtr in;
	struct sbuf *out;
	const char *pfx; /* "sai", "net", ... as Intel's gSOAP namespace table names them */
};

/* An operation writes its out parameters (after StatusCode) and returns the PT_STATUS. */
typedef long (*lop_fn)(struct lcall *c);

struct lop {
	const char *name;
	lop_fn fn;
};

/* Out parameters <pfx:NAME>value</pfx:NAME>. */
void lout_str(struct lcall *c, const char *name, const char *v);
void lout_num(struct lcall *c, const char *name, unsigned long long v);

/* The text of the in parameter @p name (empty when absent). */
void larg(struct lcall *c, const char *name, char *out, size_t size);

/* soap_legacy_set.c: the write operations, by service. */
extern const struct lop lsai_set_ops[];
extern const struct lop lnet_set_ops[];
extern const struct lop ltim_ops[];

#endif
