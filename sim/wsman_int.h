/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the WS-Management modules: wsman.c (envelope, dispatch, the class
 * table), wsman_pki.c (keys, certificates, TLS credential and settings) and wsman_net.c
 * (time, Kerberos, redirection, power, network, 802.1X, wireless, host-based setup).
 * Not an API: only amtsim's own WS-Man code includes it.
 */
#ifndef AMTSIM_WSMAN_INT_H
#define AMTSIM_WSMAN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "device.h"
#include "http.h"
#include "simutil.h"
#include "wsman.h"

#define MAX_SEL 4

struct wreq {
	char action[512];
	char resource[512];
	char message_id[256];
	struct {
		char name[64];
		char value[512];
	} sel[MAX_SEL];
	int n_sel;
	xmlNodePtr body;   /* <Body> */
	xmlNodePtr input;  /* first element of the body, if any */
};

/* Renders instance @p idx's properties into @p b and its key value into @p key.
 * @return 0, or -1 when @p idx is past the last instance. */
typedef int (*render_fn)(struct device *d, int idx, struct sbuf *b, char *key, size_t keysize);

/* Applies a Put body. @return 0 ok, otherwise fills the fault. */
typedef int (*put_fn)(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
		      struct http_response *r);

/* Runs a method. Writes the _OUTPUT content (without ReturnValue) and returns ReturnValue,
 * or -1 after writing a fault. */
typedef int (*method_fn)(struct device *d, xmlNodePtr input, const struct wreq *w,
			 struct sbuf *out, struct http_response *r);

/* WS-Transfer Create: writes the ResourceCreated reference parameters (ResourceURI +
 * SelectorSet) into @p epr. @return 0, or -1 after writing a fault. */
typedef int (*create_fn)(struct device *d, xmlNodePtr inst, const struct wreq *w,
			 struct sbuf *epr, struct http_response *r);

/* WS-Transfer Delete of instance @p idx. @return 0, or -1 after writing a fault. */
typedef int (*delete_fn)(struct device *d, int idx, const struct wreq *w,
			 struct http_response *r);

struct method {
	const char *name;
	method_fn fn;
};

/* Selector matching: KEY_EXACT compares the selector named by the class key; KEY_ASSOC is
 * for association classes, whose selectors are references: any selector whose text contains
 * the instance key (the referenced certificate's InstanceID) names the instance. */
enum key_match { KEY_EXACT = 0, KEY_ASSOC = 1 };

struct wclass {
	const char *name;
	const char *uri_base;
	const char *key;       /* selector name that identifies an instance */
	render_fn render;
	put_fn put;
	const struct method *methods;
	create_fn create;
	delete_fn del;
	enum key_match match;
};

const char *wm_sel(const struct wreq *w, const char *name);
void wm_fault(struct http_response *r, const struct wreq *w, int status, bool sender,
	      const char *action, const char *subcode_ns, const char *subcode, const char *reason,
	      const char *detail);
void wm_fault_action(struct http_response *r, const struct wreq *w);
void wm_fault_selectors(struct http_response *r, const struct wreq *w);
void wm_fault_schema(struct http_response *r, const struct wreq *w, const char *why);
void wm_fault_access(struct http_response *r, const struct wreq *w, const char *why);
/* wsman:InvalidParameter: a Put/Create value the firmware refuses. */
void wm_fault_invalid(struct http_response *r, const struct wreq *w, const char *why);
/* wsman:AlreadyExists (Create of an instance that exists). */
void wm_fault_exists(struct http_response *r, const struct wreq *w, const char *why);
/* wsman:InternalError, "a:Receiver" (e.g. Delete of a certificate still in use). */
void wm_fault_internal(struct http_response *r, const struct wreq *w, const char *why);

void wm_ps(struct sbuf *b, const char *name, const char *v);
void wm_pi(struct sbuf *b, const char *name, long long v);
void wm_pb(struct sbuf *b, const char *name, bool v);
/* An endpoint reference property <h:NAME> to @p class (AMT/CIM/IPS URI base + name) with one
 * selector. */
void wm_pepr(struct sbuf *b, const char *name, const char *uri_base, const char *cls,
	     const char *sel_name, const char *sel_value);
/* Just the reference parameters (ResourceURI + SelectorSet) of such a reference. */
void wm_refparams(struct sbuf *b, const char *uri_base, const char *cls, const char *sel_name,
		  const char *sel_value);

void wm_arg(xmlNodePtr input, const char *name, char *out, size_t size);
/* Parses "true"/"false"/"1"/"0". @return 0 or -1. */
int wm_bool(const char *s, bool *out);
/* The InstanceID (or other selector) named by a reference argument, or, when the argument is
 * plain text, that text (wsman-messages passes some references as bare InstanceIDs). */
void wm_ref_selector(xmlNodePtr arg, char *out, size_t size);

/* Handles "Intel(r) AMT Certificate: Handle: N" / "Intel(r) AMT Key: Handle: N". */
#define CERT_ID_PREFIX "Intel(r) AMT Certificate: Handle: "
#define KEY_ID_PREFIX "Intel(r) AMT Key: Handle: "
int wm_parse_handle(const char *id, const char *prefix, uint32_t *handle);

/* wsman_pki.c */
int r_pubcert(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int d_pubcert(struct device *d, int idx, const struct wreq *w, struct http_response *r);
int r_keypair(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int d_keypair(struct device *d, int idx, const struct wreq *w, struct http_response *r);
int r_pkms(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method pkms_methods[];
int r_tlsctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int c_tlsctx(struct device *d, xmlNodePtr inst, const struct wreq *w, struct sbuf *epr,
	     struct http_response *r);
int d_tlsctx(struct device *d, int idx, const struct wreq *w, struct http_response *r);
int r_tls(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_tls(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	  struct http_response *r);
/* CommitChanges' TLS part: pending TLS settings become active. @return ReturnValue. */
int wm_commit_tls(struct device *d);

/* wsman_net.c */
int r_timesync(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method timesync_methods[];
int r_kerberos(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_kerberos(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r);
extern const struct method kerberos_methods[];
int r_redir(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_redir(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	    struct http_response *r);
extern const struct method redir_methods[];
int r_webui(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method webui_methods[];
int r_power(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method power_methods[];
int p_ethernet(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r);
int r_hbs(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method hbs_methods[];
int r_wifiport(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
extern const struct method wifiport_methods[];
int r_wifiset(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int d_wifiset(struct device *d, int idx, const struct wreq *w, struct http_response *r);
int r_wifisvc(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_wifisvc(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	      struct http_response *r);
extern const struct method wifisvc_methods[];
int r_8021xprof(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_8021xprof(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
		struct http_response *r);
int r_ips8021x(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int p_ips8021x(struct device *d, int idx, xmlNodePtr inst, const struct wreq *w,
	       struct http_response *r);
extern const struct method ips8021x_methods[];
int r_8021xctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);
int r_credctx(struct device *d, int idx, struct sbuf *b, char *key, size_t ks);

#endif
