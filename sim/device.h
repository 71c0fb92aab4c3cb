/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated AMT device: everything provisioning can see or change, persisted per device
 * as one JSON file. Behaviour that differs between firmware generations is asked through the
 * device_* helpers below, never by comparing version numbers at call sites, so the version
 * rules live in one place.
 */
#ifndef AMTSIM_DEVICE_H
#define AMTSIM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#define DEV_MAX_HASHES 33      /* MEI CERT_HASH_MAX_NUMBER */
#define DEV_MAX_USER_HASHES 3  /* custom hashes addable in MEBx / remotely */
#define DEV_MAX_USERS 16
#define DEV_MAX_CERTS 32
#define DEV_MAX_KEYS 16
#define DEV_MAX_WIFI 16        /* AMT: 16 wireless profiles in total ... */
#define DEV_MAX_WIFI_USER 8    /* ... of which at most 8 user (host-synced) profiles */
#define DEV_MAX_CTX 32
#define DEV_MAX_TRUSTED_CN 4
#define DEV_MAX_SPN 4
#define DEV_AUDIT_MAX 256      /* ring: oldest entries are dropped, keeps memory bounded */

enum dev_prov_state { DEV_PRE = 0, DEV_IN = 1, DEV_POST = 2 };
enum dev_control_mode { DEV_CM_NONE = 0, DEV_CM_CCM = 1, DEV_CM_ACM = 2 };
enum dev_hash_algo { DEV_HASH_SHA1 = 1, DEV_HASH_SHA256 = 2, DEV_HASH_SHA384 = 3 };

struct dev_root_hash {
	char name[64];
	int algo;                 /* enum dev_hash_algo */
	unsigned char hash[48];
	bool is_default;          /* embedded by Intel/OEM: survives unprovision */
	bool enabled;
};

struct dev_user {
	uint32_t handle;
	char username[17];
	char ha1[33];             /* hex MD5(user:realm:password), what Digest needs */
	char kerberos_sid[64];    /* base64, may be empty */
	int access;               /* 0 local, 1 network, 2 both */
	uint32_t realms;          /* bit n = realm n (2..24) */
	bool enabled;
};

struct dev_cert {
	uint32_t handle;
	char *der_b64;            /* owned */
	bool trusted_root;
	bool read_only;
};

struct dev_key {
	uint32_t handle;
	char *pem;                /* private key PEM, owned */
};

struct dev_tls_settings {
	bool enabled;
	bool mutual_auth;
	bool accept_non_secure;
	char trusted_cn[DEV_MAX_TRUSTED_CN][64];
	int n_trusted_cn;
	uint32_t cert_handle;     /* 0 = none: the self-signed certificate is used */
};

struct dev_kerberos {
	bool enabled;
	char realm[128];
	char spn[DEV_MAX_SPN][128];
	int spn_protocol[DEV_MAX_SPN];
	int n_spn;
	int key_version;
	int encryption_algorithm;
	char master_key_b64[64];
	int clock_tolerance;      /* minutes */
};

struct dev_port {
	char mac[18];
	bool dhcp;
	bool ip_sync;
	bool shared_static_ip;
	char ip[46];
	char mask[46];
	char gateway[46];
	char dns1[46];
	char dns2[46];
	bool link_up;
	int enabled_state;        /* wireless: CIM_WiFiPort RequestStateChange values */
};

struct dev_8021x {
	bool enabled;
	int protocol;
	char username[129];
	char password[33];
	char domain[129];
	char roaming_identity[129];
	char server_cert_name[129];
	int server_cert_name_comparison;
	int pxe_timeout;
	uint32_t client_cert_handle;
	uint32_t root_cert_handle;
	int ips_enabled;          /* IPS_IEEE8021xSettings.Enabled: 2 on, 3 off, 6 on without certs */
	bool available_in_s0;
};

struct dev_wifi {
	char name[33];
	char ssid[33];
	int priority;
	int auth_method;
	int encryption;
	char psk[64];
	bool user_profile;        /* synced from the host, not IT-defined */
	int ieee8021x_protocol;   /* -1 when not 802.1X */
	char ieee8021x_username[129];
	uint32_t client_cert_handle;
	uint32_t ca_cert_handle;
};

struct dev_ctx {
	char type[40];            /* "TLS", "802.1X", "WiFi", ... */
	uint32_t cert_handle;
	char providing[128];      /* InstanceID of the element providing context */
};

/*
 * Fault injection (fleet JSON "faults", fleet-wide and per device; docs/amtsim.md). Not
 * persisted: the fleet description decides on every start. Random choices come from a
 * per-device generator seeded with seed ^ hash(device id), so runs repeat exactly.
 */
struct dev_faults {
	unsigned latency_ms;          /* added to every response */
	unsigned latency_jitter_ms;   /* plus 0..jitter, seeded */
	unsigned long drop_nth;       /* close instead of answering request N (1-based) */
	bool drop_repeat;             /* ... and every N-th request after it */
	unsigned drop_percent;        /* seeded random drops, 0..100 */
	unsigned long hang_nth;       /* never answer request N: the connection stays open */
	bool hang_repeat;             /* ... and every N-th request after it */
	int commit_fail;              /* CommitChanges returns this ReturnValue (0 = no fault) */
	unsigned commit_latency_ms;   /* a WS-Man CommitChanges that succeeded answers only after
				       * this long: the device is committed, the client not told */
	unsigned long flash_writes;   /* flash writes allowed before 38 FLASH_WRITE_LIMIT_EXCEEDED
				       * (0 = unlimited) */
	bool wrong_otp;               /* ProvisioningServerOTP reads back a different value */
	unsigned long digest_fail_nth;/* refuse correct Digest credentials on authenticated
				       * request N ... */
	bool digest_fail_repeat;      /* ... and every N-th after it */
	unsigned digest_fail_percent; /* seeded random Digest refusals */
	int hostile;                  /* enum hostile_kind: the answer to a matching request is
				       * replaced by a hostile one (sim/hostile.c) */
	char hostile_match[128];      /* ... requests whose body contains this ("" = any) */
	unsigned long hostile_nth;    /* ... only the N-th matching one (0 = every one) */
	unsigned hostile_drip_ms;     /* slow_drip: one byte every this many ms */
	unsigned long hostile_seen;   /* matching requests so far */
	int mei;                      /* enum sim_mei_fault: the simulated MEI misbehaves */
	uint64_t seed;
	/* state */
	uint64_t rng;
	unsigned long requests, auth_requests, flash_writes_done;
};

struct dev_audit {
	time_t when;
	char *event;              /* owned */
};

struct device {
	char id[64];
	char uuid[37];            /* lower-case, canonical 8-4-4-4-12 */
	char version[32];         /* "11.8.50" */
	int ver_major, ver_minor, ver_build;
	int prov_state;           /* enum dev_prov_state */
	int control_mode;         /* enum dev_control_mode */
	char realm[48];           /* "Digest:" + 32 upper-case hex */
	char mebx_password[33];
	bool mebx_password_default;
	char admin_user[17];
	char admin_ha1[33];       /* hex MD5(admin:realm:pw); provisioning uses an empty pw */
	struct dev_user users[DEV_MAX_USERS];
	int n_users;
	uint32_t next_handle;
	char host_name[64];
	char domain_name[192];
	char pki_dns_suffix[224];
	char dhcp_domain[192];    /* DHCP option 15 */
	char config_server_fqdn[256];
	struct dev_root_hash hashes[DEV_MAX_HASHES];
	int n_hashes;
	char otp[33];             /* set by the host agent; empty = none */
	struct dev_cert certs[DEV_MAX_CERTS];
	int n_certs;
	struct dev_key keys[DEV_MAX_KEYS];
	int n_keys;
	struct dev_tls_settings tls_remote, tls_local;
	/* TLS settings Put waits for CommitChanges (AMT-PROTOCOL.md §8.5); TrustedCN does not. */
	struct dev_tls_settings tls_remote_pending, tls_local_pending;
	bool tls_pending;
	int clock_offset;         /* device clock minus real time, seconds (SetHighAccuracyTimeSynch) */
	struct dev_kerberos kerberos;
	char power_scheme[64];
	bool redirection_listener, sol_enabled, ider_enabled, kvm_enabled, web_ui_enabled;
	bool ping_enabled, rmcp_ping_enabled;
	struct dev_port wired, wireless;
	struct dev_8021x ieee8021x;
	struct dev_wifi wifi[DEV_MAX_WIFI];
	int n_wifi;
	int wifi_sync_mode;       /* localProfileSynchronizationEnabled */
	struct dev_ctx ctxs[DEV_MAX_CTX];
	int n_ctx;
	struct dev_audit audit[DEV_AUDIT_MAX];
	int audit_start, audit_len;
	/* The self-signed TLS identity (PEM), created on first start and then kept. */
	char *self_cert_pem;
	char *self_key_pem;
	/* Lets today's clients (which refuse TLS < 1.2) reach a simulated pre-12.0 device:
	 * real firmware cannot do this. Off by default. */
	bool tls_modern_override;
	/* Runtime only, not persisted. */
	char address[46];         /* the 127.x.y.z the device listens on */
	char state_path[4096];
	bool dirty;
	unsigned tls_generation;  /* bumped when the TLS identity to serve changes */
	unsigned keygen_ms;       /* modelled GenerateKeyPair latency */
	/* Connection model (fleet "max_requests_per_connection", "keepalive_timeout_s",
	 * "tls_resumption", overridable per device): 0 = unlimited requests per connection. */
	unsigned max_requests_per_conn;
	unsigned keepalive_s;
	unsigned nonce_lifetime; /* 0: the fleet's nonce_lifetime */
	bool tls_resumption;
	bool krb_credential_cache; /* AMT_KerberosSettingData credential cache state */
	struct dev_faults faults;
	/* IPS_HostBasedSetupService: certificates from AddNextCertInChain (base64 DER, owned). */
	char *hbs_chain[4];
	int hbs_chain_len;
	bool hbs_chain_complete;
	unsigned char hbs_nonce[20];
	void *runtime;            /* owned by the server (struct sim_dev_rt) */
};

/* Version-dependent behaviour (AMT-PROTOCOL.md §12.2). */
bool device_has_legacy_soap(const struct device *d);   /* EOI SOAP only below 9.0 */
int device_version_code(const struct device *d);       /* major * 100 + minor */
int device_min_tls_version(const struct device *d);    /* OpenSSL TLS1_x_VERSION */
int device_max_tls_version(const struct device *d);
bool device_refuses_sha1_and_small_rsa(const struct device *d); /* CSME 16+ */
/* AMT 22+: SHA-256 and RSA 2048 deprecated for provisioning and management certificates;
 * amtsim enforces SHA-384 and RSA 3072 (issue 17 item 11). */
bool device_needs_sha384_rsa3072(const struct device *d);
/* The firmware's algorithm rules for one certificate (CSME 16: no SHA-1, RSA >= 2048;
 * AMT 22: SHA-384 or stronger, RSA >= 3072). Returns false with @p reason naming @p name
 * and the rule when @p x breaks one. */
struct x509_st;
bool device_cert_strong_enough(const struct device *d, struct x509_st *x, const char *name,
			       char *reason, size_t rsize);
bool device_has_default_sha1_hashes(const struct device *d);    /* removed in 11.0 */
bool device_has_psk(const struct device *d);                    /* removed in 11.0 */
bool device_has_control_modes(const struct device *d);          /* 7.0+ */
bool device_allows_non_tls(const struct device *d);             /* closed from 16.1 */
bool device_has_preprov_tls(const struct device *d);            /* On-Die CA chain, 19+ */

/** Parses "M.m.b" into the device's version fields. @return 0 or -1. */
int device_set_version(struct device *d, const char *version);

/** Initialises @p d with factory defaults for @p version (pre-provisioned). @return 0/-1. */
int device_init(struct device *d, const char *id, const char *version);

/** Frees owned memory inside @p d (not @p d itself). */
void device_clear(struct device *d);

/** Fresh realm "Digest:" + 32 upper-case hex into @p out (>= 40 bytes). */
void device_new_realm(char *out, size_t size);

/** hex MD5(user ":" realm ":" password) into @p out (33 bytes). */
void device_ha1(const char *user, const char *realm, const char *password, char out[33]);

/** Appends an audit entry (printf-style) and marks the device dirty. */
void device_audit(struct device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Adds a root hash. @return 0, -1 full/invalid, -2 duplicate. */
int device_add_hash(struct device *d, const char *name, int algo, const unsigned char *hash,
		    bool is_default, bool enabled);

/** Full unprovision: back to PRE, user hashes/ACLs/certs/keys/profiles removed. */
void device_unprovision(struct device *d);

/** Sets the OTP (8..32 printable chars). @return 0 or -1 (wrong state or length). */
int device_set_otp(struct device *d, const char *otp);

/** Applies fleet-description overrides (same keys as the state file). @return 0/-1. */
int device_apply_json(struct device *d, json_t *obj, char *err, size_t errlen);

/** Serialises the whole device state. Caller owns the result. */
json_t *device_to_json(const struct device *d, bool include_secrets);

/** Loads state from @p path into @p d (initialised). @return 0 or -1 with @p err. */
int device_load(struct device *d, const char *path, char *err, size_t errlen);

/** Writes the state atomically to @p path. @return 0 or -1. */
int device_save(struct device *d, const char *path);

/** Adds a wireless profile, enforcing AMT's limits: 16 in total, at most 8 user profiles
 * (a 9th user profile replaces the oldest one). @return 0, -1 full, -2 duplicate name. */
int device_add_wifi(struct device *d, const struct dev_wifi *w);

/** Applies the fleet's fault-injection settings: @p fleet (fleet-wide "faults", may be NULL),
 * then @p dev (the device's own, may be NULL). @return 0 or -1 with @p err. */
int device_apply_faults(struct device *d, json_t *fleet, json_t *dev, char *err, size_t errlen);

/** Next value of the device's seeded generator. */
uint64_t device_fault_rand(struct device *d);

/** Counts one request; true when fault injection drops it. */
bool device_fault_drop(struct device *d);
/** Hostile answers (faults "hostile"): HOSTILE_NONE or the kind that replaces the answer to
 * an authenticated request with body @p body (counted when it matches). */
enum hostile_kind {
	HOSTILE_NONE = 0,
	HOSTILE_EMPTY_BODY,
	HOSTILE_WRONG_ELEMENT,
	HOSTILE_FAULT_NO_DETAIL,
	HOSTILE_HUGE_BODY,
	HOSTILE_TRUNCATED_BODY,
	HOSTILE_SLOW_DRIP,
};
int device_fault_hostile(struct device *d, const char *body);
/** Name of a hostile kind ("empty_body", ...), NULL when unknown; and back (-1: unknown). */
const char *hostile_kind_name(int kind);
int hostile_kind_parse(const char *name);
/** After device_fault_drop counted the request: true when it must never be answered. */
bool device_fault_hang(struct device *d);

/** Counts one correctly authenticated request; true when it must be refused anyway. */
bool device_fault_digest(struct device *d);

/** Latency to add to a response, ms. */
unsigned device_fault_latency(struct device *d);

/** Counts one flash write. @return false when the write limit is exhausted (38). */
bool device_flash_write(struct device *d);

const char *device_state_name(int state);
int device_state_parse(const char *s);

#endif
