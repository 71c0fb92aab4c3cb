/* SPDX-License-Identifier: Apache-2.0 */
/*
 * at_internal.h - shared declarations of the amt-transport plugin: the instance (one libcurl
 * multi handle and one epoll fd), links (one easy handle each: one kept-alive connection, its
 * TLS session and one Digest state per device and phase, handed from session to session),
 * sessions (one operation at a time on a link), the request builders of the WS-Man and legacy
 * SOAP clients and the operation step machines.
 */
#ifndef AT_INTERNAL_H
#define AT_INTERNAL_H

#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libxml/tree.h>
#include <openssl/x509.h>

#include <amtprov/transport.h>

#define AT_NS_AMT "http://intel.com/wbem/wscim/1/amt-schema/1/"
#define AT_NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
#define AT_NS_IPS "http://intel.com/wbem/wscim/1/ips-schema/1/"
#define AT_NS_WSA "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define AT_NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define AT_NS_WXF "http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define AT_NS_WSEN "http://schemas.xmlsoap.org/ws/2004/09/enumeration"

/* The largest response read from a device; beyond it the transfer stops (a runaway or
 * hostile peer must not make amtprovd buffer without end). */
#define AT_MAX_RESPONSE (16u * 1024 * 1024)

/* libcurl's buffers per easy handle (at_link.c): the upload buffer (libcurl's minimum, 16 KiB)
 * and the receive buffer. */
#define AT_UPLOAD_BUFFER 16384L
#define AT_RECV_BUFFER 4096L

/* ---- growable text buffer: the plugins' shared one (plugins/common/pu_buf.h) ---- */
#include "pu_buf.h"
#define at_buf pu_buf
#define at_buf_addn pu_buf_addn
#define at_buf_add pu_buf_add
#define at_buf_printf pu_buf_printf
#define at_buf_add_xml pu_buf_add_xml
#define at_buf_reset pu_buf_reset
#define at_buf_free pu_buf_free

/* ---- configuration ---- */
struct at_cfg {
	long long timeout_ms;
	long long connect_timeout_ms;
	long long max_sessions;
	long long crl_cache_seconds;
	long long max_pulls;
	int verbose_wire;
	int crl_check;
	int self_signed_name_check;
	int precheck_provisioning_cert;
	int legacy_tls;
	long long keep_alive_ms;
	long long max_idle_links;
	char *odca_roots; /* PEM file: trust anchors of AMT's pre-provisioning On-Die CA chain */
};

struct at_account {
	char *user;
	struct amtprov_secret *password;
};

struct at_crl_entry {
	struct at_crl_entry *next;
	char *url;
	X509_CRL *crl;
	int64_t expires; /* host->now() seconds */
};

enum at_proto { AT_WSMAN = 1, AT_SOAP = 2, AT_CRLGET = 3 };

struct at_session;

/* The provisioning certificate, its chain and key, parsed once per instance (one site load)
 * and shared by every session presenting it; freed with the instance. */
struct at_ident {
	struct at_ident *next;
	unsigned char id[32]; /* SHA-256 of the chain PEM and the key PEM */
	X509 *leaf;
	STACK_OF(X509) *chain;
	EVP_PKEY *key;
};

/* A MANAGED-mode CA bundle, parsed once per instance (keyed by its SHA-256) and shared by
 * every link trusting it; each connection's X509_STORE gets up-references of these, so no
 * PEM is parsed per connection (at_tls.c). Reference counted: the instance's list holds one,
 * each link one (loop thread only). */
struct at_anchors {
	struct at_anchors *next;
	unsigned char id[32];
	int refs;
	STACK_OF(X509) *certs;
	STACK_OF(X509_CRL) *crls; /* a CRL in the bundle is trusted as before */
};

/* A link: one device, one mode (phase), one easy handle, so one kept-alive connection, its
 * TLS session (resumed on a reconnect) and its Digest nonce, used by one session at a time and
 * parked between sessions for keep_alive_ms. Retired (closed when its session closes) after
 * COMMIT or UNPROVISION, after a transport failure, or when a session of the other mode opens
 * for the same address. */
struct at_link {
	struct at_instance *in;
	struct at_link *hnext;                 /* hash bucket */
	struct at_link *idle_prev, *idle_next; /* parked, oldest first */
	int parked;
	struct at_session *cur;                /* the attached session, NULL when parked */
	CURL *easy;
	char *address, *url_host, *crl_url;
	uint16_t port;
	uint32_t mode;
	int amt_major;
	struct at_ident *ident;     /* PROVISIONING */
	unsigned char ca_id[32];    /* MANAGED: SHA-256 of the CA bundle */
	struct at_anchors *anchors; /* MANAGED: the bundle, parsed; NULL if it holds none */
	struct curl_slist *connect_to;
	unsigned char peer_sha256[32];
	int peer_pinned;
	unsigned char *peer_der;
	int peer_der_len;
	int64_t idle_until; /* monotonic ms */
	int fd;             /* its connection's socket, -1 when none */
	int retire;
};

struct at_instance {
	const struct amtprov_host *host;
	struct at_cfg cfg;
	CURLM *multi;
	int epfd;
	int64_t timer_at; /* monotonic ms when curl wants its timeout action; -1: none */
	struct at_session *sessions;
	size_t n_sessions;
	struct at_session *pend_head, *pend_tail; /* finished operations awaiting done() */
	struct at_crl_entry *crls;
	int in_drive;
	struct at_ident *idents;
	STACK_OF(X509) *odca_roots; /* cfg.odca_roots, loaded once (at_tls.c) */
	struct at_anchors *anchors_list;
	size_t n_anchors;
	char *link_key_pem; /* a CRL of no CA: part of libcurl's reuse key, at_link.c */
	unsigned long long link_serial;
	struct at_link **link_hash; /* AT_LINK_BUCKETS */
	struct at_link *idle_head, *idle_tail;
	size_t n_idle;
	struct at_link **fd_owner; /* socket -> link, so a retired link can close its own */
	int fd_cap;
};

#define AT_LINK_BUCKETS 4096

struct at_session {
	struct at_instance *in;
	struct at_session *next, *prev;
	struct at_session *pend_next;
	int pending;

	struct at_link *link;
	CURL *easy; /* link->easy */
	int easy_added;
	char *address, *fqdn, *url_host;
	uint16_t port;
	uint32_t mode;
	int amt_major;
	struct at_ident *ident; /* PROVISIONING: shared, owned by the instance */
	char *ca_bundle_pem, *crl_url;
	struct at_account *accounts;
	size_t n_accounts;
	size_t account;   /* account being tried */
	int good_account; /* index that authenticated, -1 */
	int64_t timeout_ms;

	X509_CRL *crl; /* for MANAGED mode, a reference of the cached CRL */
	unsigned char *peer_der; /* the device certificate seen on this link */
	int peer_der_len;
	char tls_why[256];
	char curl_err[CURL_ERROR_SIZE];

	/* the running operation */
	int busy, finished;
	uint32_t op;
	json_t *params;
	int step;
	json_t *result;
	json_t *scratch;
	int rc;
	struct amtprov_error err;
	amtprov_transport_done_cb done;
	void *cb_ctx;
	int64_t deadline;

	/* the current request and its response */
	enum at_proto proto;
	char path[96];
	struct at_buf req;
	struct at_buf resp;
	long http_code;
	char soap_action[192];
	char method[64];   /* invoked method, for its ReturnValue */
	char verb[24];     /* the WS-Man action's last word (Get, Put, ...), for messages */
	long tolerate_rv;  /* a ReturnValue besides 0 the step wants to see, -1: none */
	long last_rv;
	struct curl_slist *hdrs;
	xmlDocPtr doc;
	xmlNodePtr body;
	unsigned msg_id;
	int auth_rounds;
	int req_sensitive; /* request body carries a secret: never logged */
	CURL *crl_easy;
	struct at_buf crl_buf;
	int crl_wait; /* the first request waits for the CRL */
	int tls_ok; /* a request went through: later TLS failures are not a refusal */

	/* What this session already read from its device, so that no request asks again for
	 * an answer it has (issue 13: each costs 100-500 ms of firmware time). A session is
	 * one device and one phase; both are this device's answers on this session, gone when
	 * it closes. */
	/* AMT_GeneralSettings.DigestRealm from any instance of it read here (read-only in
	 * AMT; forgotten when COMMIT or UNPROVISION begins, the end of a phase). */
	char realm[128];
	/* SHA-256 (hex) of the ProvisioningServerOTP in the AMT_SetupAndConfigurationService
	 * instance GET_SETUP_STATE read: it serves the next operation only, if that is
	 * GET_OTP_HASH (at_begin forgets it otherwise), so nothing can come in between. */
	char setup_otp_hash[65];
};

/* at_begin: forgets what the operation @p op may not take from earlier answers (above). */
void at_session_known_begin(struct at_session *s, uint32_t op);

/* ---- XML helpers (at_xml.c) ---- */
/* Parses without network, without entity expansion; refuses any DOCTYPE. */
xmlDocPtr at_xml_parse(const char *buf, size_t len);
xmlNodePtr at_xml_child(xmlNodePtr parent, const char *local);
xmlNodePtr at_xml_find(xmlNodePtr root, const char *local);
/* Text of an element, malloc'd (never NULL unless out of memory). */
char *at_xml_text(xmlNodePtr n);
/* The text of the first descendant named @p local into @p out; 0 when found. */
int at_xml_find_text(xmlNodePtr root, const char *local, char *out, size_t n);
/** Appends each item of a PullResponse's Items under @p body to @p items as an object with
 * its fields and "_class"; either namespace layout (on the Envelope or on each item). */
void at_xml_pull_items(xmlNodePtr body, json_t *items);
/* Element -> JSON: leaf text, children as object members, repeated names as arrays; NULL
 * for a NULL node (every accessor here tolerates a missing node). */
json_t *at_xml_to_json(xmlNodePtr n);
/* The local name of an element, "" for NULL or a non-element. */
const char *at_xml_local(xmlNodePtr n);
/* An EPR's selectors ({"InstanceID": "..."}) found under @p n, NULL when none. */
json_t *at_xml_epr(xmlNodePtr n);

/* ---- wire log (at_wire.c) ---- */
/* Appends @p body to @p out with the text of every secret-bearing element (OTP, passwords,
 * keys) replaced by "(secret)"; safe on malformed or truncated input. */
void at_wire_mask(const char *body, size_t len, struct at_buf *out);

/* ---- status names (at_status.c) ---- */
const char *at_pt_status_name(long v);
/* Name of a ReturnValue of @p method: the method's own table, else PT_STATUS. */
const char *at_return_name(const char *method, long v);

/* ---- protocol (at_proto.c) ---- */
/* Expands "AMT_x"/"CIM_x"/"IPS_x" to its resource URI; full URIs are kept. */
void at_class_uri(const char *cls, char *out, size_t n);
/* Each builder prepares s->req and returns AMTPROV_AGAIN (or an error). @p sel is a JSON
 * object of selector names and values (may be NULL). */
int at_wsman_get(struct at_session *s, const char *cls, const json_t *sel);
int at_wsman_put(struct at_session *s, const char *cls, const json_t *sel, const json_t *props);
int at_wsman_create(struct at_session *s, const char *cls, const char *body_xml);
int at_wsman_delete(struct at_session *s, const char *cls, const json_t *sel);
int at_wsman_enumerate(struct at_session *s, const char *cls);
int at_wsman_pull(struct at_session *s, const char *cls, const char *context);
int at_wsman_invoke(struct at_session *s, const char *cls, const json_t *sel, const char *method,
		    const char *args_xml);
/* Appends `<h:name>value</h:name>` / an EPR argument to an Invoke argument list. */
void at_arg(struct at_buf *b, const char *name, const char *value);
void at_arg_epr(struct at_buf *b, const char *name, const char *cls, const char *sel_name,
		const char *sel_value);
/* Appends an embedded instance argument (e.g. AddWiFiSettings' WiFiEndpointSettingsInput):
 * `<h:name xmlns:q="URI of cls"><q:Prop>..</q:Prop>..</h:name>`. */
void at_arg_instance(struct at_buf *b, const char *name, const char *cls, const json_t *props);
/* Renders an instance for Put/Create from JSON properties. */
void at_instance_xml(struct at_buf *b, const char *cls, const json_t *props);
/* Legacy EOI SOAP 1.1 call to /<service>Service in namespace .../<service>/2004/01. */
int at_soap_call(struct at_session *s, const char *service, const char *op, const char *args_xml);
/* Checks a completed response (HTTP code, faults, ReturnValue/StatusCode); parses into
 * s->doc / s->body. */
int at_check_response(struct at_session *s);

/* ---- operations (at_ops.c) ---- */
/* Advances the running operation: AMTPROV_AGAIN (a request is in s->req), AMTPROV_OK (result
 * in s->result), or an error (s->err filled). */
int at_op_step(struct at_session *s);
/* Whether @p op is known (so begin() can refuse unknown ones at once). */
int at_op_known(uint32_t op);
const char *at_op_name(uint32_t op);
/* Shared step helpers of at_ops.c for operations in other files. at_get_modify_put runs on
 * s->step 0..2 (Get, then Put of the whole instance with @p changes); at_enum_all keeps its
 * state and the items in s->scratch ("enum", "items"). Both return AMTPROV_AGAIN while a
 * request is out, AMTPROV_OK when done. */
int at_get_modify_put(struct at_session *s, const char *cls, const json_t *sel,
		      const json_t *changes);
int at_enum_all(struct at_session *s, const char *cls);
/* An EPR's InstanceID from the method output element @p local into @p out. */
int at_epr_handle(struct at_session *s, const char *local, char *out, size_t n);
/* The Body's instance of @p cls as JSON, or NULL with s->err naming what came instead. */
json_t *at_body_instance(struct at_session *s, const char *cls);
/* at_8021x.c: AMTPROV_AMT_SET_8021X. */
int at_op_8021x(struct at_session *s);
/* at_pki.c: the semantic operations on keys, certificates, bindings and wireless profiles
 * (LIST_KEYS ... DELETE_WIFI_PROFILE). */
int at_op_pki(struct at_session *s);

/* ---- TLS (at_tls.c) ---- */
/* libcurl's SSL_CTX callback; @p userp is the link. */
CURLcode at_tls_ctx_cb(CURL *curl, void *sslctx, void *userp);
/* The instance's parsed provisioning identity for these PEMs, parsed and checked on first
 * use; borrowed (lives as long as the instance). */
int at_ident_get(struct at_instance *in, const char *chain_pem,
		 const struct amtprov_secret *key_pem, struct at_ident **out,
		 struct amtprov_error *err);
void at_idents_free(struct at_instance *in);
/* Loads cfg.odca_roots (when set) into in->odca_roots; freed by at_idents_free. */
int at_odca_load(struct at_instance *in, struct amtprov_error *err);
X509_CRL *at_crl_parse(const char *buf, size_t len);
/* The parsed CA bundle @p pem (SHA-256 @p id): a new reference in @p *out, NULL when the
 * bundle holds no certificate or CRL (the connection then fails as before); AMTPROV_E_NOMEM
 * on no memory. */
int at_anchors_get(struct at_instance *in, const char *pem, const unsigned char id[32],
		   struct at_anchors **out);
/* Drops a reference (NULL: nothing). */
void at_anchors_put(struct at_anchors *a);
/* Appends the instance's key CRL (PEM, made on first use) to @p out. */
int at_link_key(struct at_instance *in, struct at_buf *out);

/* libcurl write callback appending to the struct at_buf in @p userp (at_plugin.c). */
size_t at_write_cb(char *p, size_t size, size_t n, void *userp);

/* ---- links (at_link.c) ---- */
int at_links_init(struct at_instance *in);
/* A parked link matching @p s (address, mode, trust), or a new one; attaches @p s to it. */
int at_link_attach(struct at_session *s, struct amtprov_error *err);
/* Detaches the session: the link is parked for the next session of the phase, or closed
 * when retired or keep-alive is off. */
void at_link_detach(struct at_session *s);
/* Closes parked links whose keep-alive time ran out; the earliest expiry (ms, -1: none). */
int64_t at_links_expire(struct at_instance *in, int64_t now);
/* The core has no more sessions for the device for now (transport op device_idle): its
 * parked links are closed at once instead of idling for keep_alive_ms. */
void at_links_device_idle(struct at_instance *in, const char *address, uint16_t port);
/* Frees every link (instance teardown, sessions already closed). */
void at_links_free(struct at_instance *in);

#endif /* AT_INTERNAL_H */
