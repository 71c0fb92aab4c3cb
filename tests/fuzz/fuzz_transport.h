/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_transport.h - runs amt-transport operations without a network: each request the step
 * machine prepares is answered by a callback, whose body goes through at_check_response and
 * the op's response handling exactly as on_http_done() does after a transfer. Shared by the
 * two transport harnesses and by make_corpus (which answers from amtsim's handlers).
 */
#ifndef AMTPROV_FUZZ_TRANSPORT_H
#define AMTPROV_FUZZ_TRANSPORT_H

#include <stddef.h>

#include "at_internal.h"

/** Answers the request in s->req (s->proto, s->path, s->soap_action): fills @p body (the
 * callback's, borrowed until the next call) and @p code; 0, or -1 for "no answer" (the
 * transfer failed: the run stops). */
typedef int (*ft_answer_fn)(void *ctx, const struct at_session *s, const char **body,
			    size_t *len, long *code);

/** The operations exercised, with parameters that pass their checks. */
struct ft_op {
	uint32_t op;
	const char *params; /* JSON */
};
extern const struct ft_op ft_ops[];
extern const size_t ft_n_ops;

/** Runs ft_ops[@p i] against firmware @p amt_major; returns the op's final code. */
int ft_run(size_t i, int amt_major, ft_answer_fn answer, void *ctx);

/** HTTP status of an answer from the selector byte that starts each fuzzed answer:
 * 'a' 200, 'b' 400, 'c' 500, 'd' 404, 'e' 403, anything else 200. */
long ft_code(unsigned char sel);
/** The selector byte for @p code (make_corpus writes it). */
unsigned char ft_selector(long code);

/** The harnesses' entry: @p data = op selector byte, then answers separated by NUL bytes,
 * each a selector byte and a body. Selector ft_n_ops: the rest is a CRL (at_crl_parse). */
int ft_fuzz_one(const unsigned char *data, size_t size, int amt_major);

#endif
