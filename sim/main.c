/* SPDX-License-Identifier: Apache-2.0 */
/*
 * amtsim: an Intel AMT firmware simulator. `serve` runs a fleet of devices in one event loop
 * (each on its own 127.x.y.z at the real ports); `agent` plays the host agent (sets an OTP,
 * prints what `amtprov device add --from-json` reads); `dump` prints a device's state.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <openssl/evp.h>

#include "device.h"
#include "http.h"
#include "mei.h"
#include "odca.h"
#include "simutil.h"
#include "soap_legacy.h"
#include "tls.h"
#include "wsman.h"

#define EXIT_USAGE 2

struct fleet {
	struct device **devs;
	int n;
	char state_dir[2048];
	char control_path[4096];
	struct sim_server srv;
	struct tls_keypool pool;
	struct event *save_timer, *sig_int, *sig_term;
	struct evconnlistener *control;
	bool json_log;
	long fd_limit;
	struct sim_mei *mei;      /* --mei-dir: each device's simulated MEI (sim/mei.c) */
};

static struct device *fleet_find(struct fleet *f, const char *id)
{
	for (int i = 0; i < f->n; i++)
		if (!strcmp(f->devs[i]->id, id))
			return f->devs[i];
	return NULL;
}

static bool valid_id(const char *id)
{
	if (!id[0] || strlen(id) >= 64 || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static void save_dirty(struct fleet *f)
{
	for (int i = 0; i < f->n; i++) {
		struct device *d = f->devs[i];

		if (d->dirty && device_save(d, d->state_path) != 0)
			fprintf(stderr, "amtsim: cannot save %s: %s\n", d->state_path, strerror(errno));
	}
}

/* ---- request routing ------------------------------------------------------------------- */

static void route(struct sim_server *srv, struct device *d, const struct http_request *req,
		  struct http_response *r)
{
	if (!strcmp(req->path, "/wsman")) {
		if (strcmp(req->method, "POST") != 0) {
			r->status = 405;
			return;
		}
		wsman_handle(d, req, r);
	} else if (soap_legacy_path(req->path)) {
		if (!device_has_legacy_soap(d)) {
			r->status = 404; /* EOI SOAP was removed in AMT 9.0 */
			return;
		}
		if (strcmp(req->method, "POST") != 0) {
			r->status = 405;
			return;
		}
		soap_legacy_handle(d, req, r);
	} else if (!strcmp(req->path, "/") || !strcmp(req->path, "/index.htm")) {
		if (!d->web_ui_enabled) {
			r->status = 404;
			return;
		}
		r->status = 200;
		r->content_type = "text/html";
		sbuf_add(&r->body, "<html><head><title>Intel&reg; Active Management Technology</title>"
				   "</head><body><h1>amtsim device ");
		sbuf_add_xml(&r->body, d->id);
		sbuf_add(&r->body, "</h1><p>AMT ");
		sbuf_add_xml(&r->body, d->version);
		sbuf_add(&r->body, "</p></body></html>\n");
	} else {
		r->status = 404;
	}
	(void)srv;
}

/* ---- control socket -------------------------------------------------------------------- */

static json_t *agent_set_otp(struct device *d, char *err, size_t errlen)
{
	static const char alnum[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	unsigned char rnd[16], md[32];
	char otp[17], hex[65], fqdn[300];
	unsigned int mdlen = 0;
	json_t *o;

	if (sim_random(rnd, sizeof(rnd)) != 0)
		return NULL;
	for (size_t i = 0; i < 16; i++)
		otp[i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	otp[16] = '\0';
	if (device_set_otp(d, otp) != 0) {
		snprintf(err, errlen, "device %s is provisioned (state %s): the OTP cannot be set", d->id,
			 device_state_name(d->prov_state));
		return NULL;
	}
	/* The agent reports only the hash (ConfigMgr's model); the server compares it with the
	 * hash of the OTP it reads from the firmware. */
	EVP_Digest(otp, strlen(otp), md, &mdlen, EVP_sha256(), NULL);
	sim_hex(md, 32, hex, false);
	snprintf(fqdn, sizeof(fqdn), "%s.%s", d->host_name, d->domain_name);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "fqdn", fqdn, "uuid", d->uuid, "amt_version",
		      d->version, "wired_ip", d->wired.ip[0] ? d->wired.ip : d->address, "otp_hash",
		      hex, "provisioning_state", device_state_name(d->prov_state), "wireless",
		      d->wireless.enabled_state != 3);
	return o;
}

static json_t *control_command(struct fleet *f, json_t *cmd)
{
	const char *c = json_string_value(json_object_get(cmd, "cmd"));
	const char *id = json_string_value(json_object_get(cmd, "device"));
	struct device *d = id ? fleet_find(f, id) : NULL;
	char err[256];

	if (!c)
		return json_pack("{s:b,s:s}", "ok", 0, "error", "missing \"cmd\"");
	if (!strcmp(c, "list")) {
		json_t *a = json_array();

		for (int i = 0; i < f->n; i++)
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "id", f->devs[i]->id,
							   "address", f->devs[i]->address, "amt_version",
							   f->devs[i]->version, "provisioning_state",
							   device_state_name(f->devs[i]->prov_state)));
		return json_pack("{s:b,s:o}", "ok", 1, "devices", a);
	}
	if (!strcmp(c, "stats")) {
		unsigned long req = 0, af = 0, hf = 0, hs = 0, rs = 0, ch = 0, lc = 0;

		for (int i = 0; i < f->n; i++) {
			struct sim_dev_rt *rt = f->devs[i]->runtime;

			req += rt ? rt->requests : 0;
			af += rt ? rt->auth_failures : 0;
			hf += rt ? rt->handshake_failures : 0;
			hs += rt ? rt->handshakes : 0;
			rs += rt ? rt->resumed : 0;
			ch += rt ? rt->challenges : 0;
			lc += rt ? rt->limit_closes : 0;
		}
		return json_pack("{s:b,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ok", 1, "devices",
				 f->n, "connections", (json_int_t)f->srv.connections, "requests",
				 (json_int_t)req, "auth_failures", (json_int_t)af,
				 "handshake_failures", (json_int_t)hf, "handshakes", (json_int_t)hs,
				 "resumed", (json_int_t)rs, "challenges", (json_int_t)ch,
				 "limit_closes", (json_int_t)lc);
	}
	if (!d)
		return json_pack("{s:b,s:s}", "ok", 0, "error", "unknown or missing \"device\"");
	if (!strcmp(c, "dump")) {
		json_t *st = device_to_json(d, false);
		struct sim_dev_rt *rt = d->runtime;

		if (rt)
			json_object_set_new(st, "runtime",
					    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests",
						      (json_int_t)rt->requests, "auth_failures",
						      (json_int_t)rt->auth_failures, "handshake_failures",
						      (json_int_t)rt->handshake_failures, "handshakes",
						      (json_int_t)rt->handshakes, "resumed",
						      (json_int_t)rt->resumed, "challenges",
						      (json_int_t)rt->challenges, "limit_closes",
						      (json_int_t)rt->limit_closes));
		return json_pack("{s:b,s:o}", "ok", 1, "device", st);
	}
	if (!strcmp(c, "agent")) {
		json_t *o = agent_set_otp(d, err, sizeof(err));

		if (!o)
			return json_pack("{s:b,s:s}", "ok", 0, "error", err);
		save_dirty(f);
		return json_pack("{s:b,s:o}", "ok", 1, "agent", o);
	}
	if (!strcmp(c, "wifi_user_profile")) {
		/* The host OS syncing one of its wireless profiles into AMT (user profile). */
		struct dev_wifi w;
		const char *name = json_string_value(json_object_get(cmd, "name"));
		const char *ssid = json_string_value(json_object_get(cmd, "ssid"));
		int rc;

		if (!d->wifi_sync_mode)
			return json_pack("{s:b,s:s}", "ok", 0, "error",
					 "host profile synchronisation is disabled "
					 "(localProfileSynchronizationEnabled = 0)");
		memset(&w, 0, sizeof(w));
		w.ieee8021x_protocol = -1;
		w.user_profile = true;
		w.auth_method = 6;
		w.encryption = 4;
		if (!name || !ssid || sim_strlcpy(w.name, name, sizeof(w.name)) ||
		    sim_strlcpy(w.ssid, ssid, sizeof(w.ssid)) || !name[0])
			return json_pack("{s:b,s:s}", "ok", 0, "error", "need \"name\" and \"ssid\" (<= 32)");
		rc = device_add_wifi(d, &w);
		if (rc)
			return json_pack("{s:b,s:s}", "ok", 0, "error",
					 rc == -2 ? "duplicate profile name" : "16 profiles already");
		device_audit(d, "wireless: user profile \"%s\" synced from the host", name);
		return json_pack("{s:b,s:i}", "ok", 1, "profiles", d->n_wifi);
	}
	return json_pack("{s:b,s:s}", "ok", 0, "error", "unknown command");
}

static void control_read(struct bufferevent *bev, void *arg)
{
	struct fleet *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF))) {
		json_error_t je;
		json_t *cmd = json_loadb(line, len, 0, &je), *res;
		char *s;

		free(line);
		res = cmd ? control_command(f, cmd) : json_pack("{s:b,s:s}", "ok", 0, "error", je.text);
		json_decref(cmd);
		s = res ? json_dumps(res, JSON_COMPACT) : NULL;
		json_decref(res);
		if (s) {
			evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", s);
			free(s);
		}
	}
	if (evbuffer_get_length(in) > 65536)
		bufferevent_free(bev);
}

static void control_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			   int salen, void *arg)
{
	struct fleet *f = arg;
	struct bufferevent *bev = bufferevent_socket_new(f->srv.base, fd, BEV_OPT_CLOSE_ON_FREE);

	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, control_read, NULL, control_event, f);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int control_listen(struct fleet *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	if (sim_strlcpy(sun.sun_path, f->control_path, sizeof(sun.sun_path)) != 0) {
		fprintf(stderr, "amtsim: control socket path too long\n");
		return -1;
	}
	unlink(f->control_path);
	f->control = evconnlistener_new_bind(f->srv.base, control_accept, f, LEV_OPT_CLOSE_ON_FREE,
					     16, (struct sockaddr *)&sun, sizeof(sun));
	if (!f->control) {
		fprintf(stderr, "amtsim: cannot listen on %s: %s\n", f->control_path, strerror(errno));
		return -1;
	}
	chmod(f->control_path, 0600);
	return 0;
}

/* One request/response over the control socket (client side). */
static json_t *control_call(const char *path, json_t *cmd, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;
	char *s = json_dumps(cmd, JSON_COMPACT);
	struct sbuf resp = {0};
	char buf[4096];
	ssize_t n;
	json_t *o = NULL;
	json_error_t je;

	if (!s || sim_strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) != 0) {
		free(s);
		snprintf(err, errlen, "bad control socket path");
		return NULL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(s);
		return NULL;
	}
	if (write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0) {
		snprintf(err, errlen, "write: %s", strerror(errno));
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		sbuf_addn(&resp, buf, (size_t)n);
		if (memchr(buf, '\n', (size_t)n))
			break;
	}
	o = resp.data ? json_loads(resp.data, 0, &je) : NULL;
	if (!o)
		snprintf(err, errlen, "no or bad answer from %s", path);
out:
	close(fd);
	free(s);
	sbuf_free(&resp);
	return o;
}

/* ---- serve ----------------------------------------------------------------------------- */

static void on_save_timer(evutil_socket_t fd, short what, void *arg)
{
	save_dirty(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct fleet *f = arg;

	event_base_loopexit(f->srv.base, NULL);
}

/* The connection model of one device: the fleet's value of each key, the device's own
 * over it. */
static int conn_model_uint(const json_t *fleet, const json_t *dev, const char *key,
			   unsigned max, unsigned *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(dev, key);

	if (!v)
		v = json_object_get(fleet, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer 0..%u", key, max);
		return -1;
	}
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int conn_model(struct device *d, const json_t *fleet, const json_t *dev, char *err,
		      size_t errlen)
{
	const json_t *v = json_object_get(dev, "tls_resumption");

	d->max_requests_per_conn = 0;
	d->keepalive_s = 0;
	d->nonce_lifetime = 0;
	if (conn_model_uint(fleet, dev, "max_requests_per_connection", 1000000,
			    &d->max_requests_per_conn, err, errlen) ||
	    conn_model_uint(NULL, dev, "nonce_lifetime", 86400, &d->nonce_lifetime, err,
			    errlen) ||
	    conn_model_uint(fleet, dev, "keepalive_timeout_s", 86400, &d->keepalive_s, err,
			    errlen))
		return -1;
	if (!v)
		v = json_object_get(fleet, "tls_resumption");
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "\"tls_resumption\" must be true or false");
		return -1;
	}
	d->tls_resumption = v && json_is_true(v);
	return 0;
}

static int load_fleet(struct fleet *f, json_t *fleet, int tls_port_def, int http_port_def)
{
	json_t *devs = json_object_get(fleet, "devices"), *e;
	json_t *defaults = json_object_get(fleet, "defaults");
	size_t i;
	char err[512];
	long listeners = 0;

	if (!json_is_array(devs)) {
		fprintf(stderr, "amtsim: fleet: \"devices\" must be an array\n");
		return -1;
	}
	json_t *kl = json_object_get(fleet, "keygen_latency_ms");
	unsigned keygen_ms_def = 1500; /* real firmware needs seconds for an RSA-2048 key */

	if (kl && (!json_is_integer(kl) || json_integer_value(kl) < 0 ||
		   json_integer_value(kl) > 600000)) {
		fprintf(stderr, "amtsim: fleet: keygen_latency_ms: 0..600000\n");
		return -1;
	}
	if (kl)
		keygen_ms_def = (unsigned)json_integer_value(kl);
	/* Fleet-wide faults: the top-level "faults", then "defaults"."faults" key by key (both
	 * apply to every device; a device's own "faults" override them key by key). The merged
	 * object replaces the top-level one in the fleet document, which owns it. */
	json_t *fleet_faults = json_object_get(fleet, "faults");
	json_t *default_faults = defaults ? json_object_get(defaults, "faults") : NULL;

	if (default_faults) {
		json_t *merged;

		if (!json_is_object(default_faults) || (fleet_faults && !json_is_object(fleet_faults))) {
			fprintf(stderr, "amtsim: fleet: faults and defaults.faults must be objects\n");
			return -1;
		}
		merged = fleet_faults ? json_deep_copy(fleet_faults) : json_object();
		if (!merged)
			return -1;
		if (json_object_update(merged, default_faults) != 0) {
			json_decref(merged);
			return -1;
		}
		if (json_object_set_new(fleet, "faults", merged) != 0)
			return -1;
		fleet_faults = merged;
	}
	f->devs = calloc(json_array_size(devs) + 1, sizeof(*f->devs));
	if (!f->devs)
		return -1;
	json_array_foreach(devs, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *addr = json_string_value(json_object_get(e, "address"));
		const char *ver = json_string_value(json_object_get(e, "amt_version"));
		json_t *tp = json_object_get(e, "tls_port"), *hp = json_object_get(e, "http_port");
		struct device *d;
		int tls_port = tls_port_def, http_port;

		if (!ver && defaults)
			ver = json_string_value(json_object_get(defaults, "amt_version"));
		if (!id || !valid_id(id) || !addr || fleet_find(f, id)) {
			fprintf(stderr, "amtsim: fleet: devices[%zu]: need a unique \"id\" ([A-Za-z0-9._-]) and \"address\"\n", i);
			return -1;
		}
		d = calloc(1, sizeof(*d));
		if (!d)
			return -1;
		f->devs[f->n++] = d;
		if (device_init(d, id, ver ? ver : "11.8.50") != 0) {
			fprintf(stderr, "amtsim: fleet: %s: bad amt_version\n", id);
			return -1;
		}
		sim_strlcpy(d->address, addr, sizeof(d->address));
		if (snprintf(d->state_path, sizeof(d->state_path), "%s/%s.json", f->state_dir, id) >=
		    (int)sizeof(d->state_path)) {
			fprintf(stderr, "amtsim: state path too long\n");
			return -1;
		}
		if (access(d->state_path, F_OK) == 0) {
			/* The state file wins: a restarted fleet continues where it stopped.
			 * device_clear() wipes the whole device, its state path included: keep
			 * a copy to load from and to restore. */
			char path[sizeof(d->state_path)];

			sim_strlcpy(path, d->state_path, sizeof(path));
			device_clear(d);
			if (device_init(d, id, ver ? ver : "11.8.50") != 0 ||
			    device_load(d, path, err, sizeof(err)) != 0) {
				fprintf(stderr, "amtsim: %s\n", err);
				return -1;
			}
			sim_strlcpy(d->state_path, path, sizeof(d->state_path));
			sim_strlcpy(d->address, addr, sizeof(d->address));
		} else {
			if ((defaults && device_apply_json(d, defaults, err, sizeof(err)) != 0) ||
			    device_apply_json(d, e, err, sizeof(err)) != 0) {
				fprintf(stderr, "amtsim: fleet: %s: %s\n", id, err);
				return -1;
			}
			if (!d->host_name[0])
				sim_strlcpy(d->host_name, id, sizeof(d->host_name));
			if (!d->domain_name[0])
				sim_strlcpy(d->domain_name, d->dhcp_domain[0] ? d->dhcp_domain : "amtsim.test",
					    sizeof(d->domain_name));
			if (!d->wired.ip[0])
				sim_strlcpy(d->wired.ip, addr, sizeof(d->wired.ip));
			device_audit(d, "device created from fleet description (AMT %s, state %s)",
				     d->version, device_state_name(d->prov_state));
		}
		if (tls_ensure_self_cert(d, &f->pool) != 0) {
			fprintf(stderr, "amtsim: %s: cannot create TLS certificate\n", id);
			return -1;
		}
		if (d->dirty && device_save(d, d->state_path) != 0) {
			fprintf(stderr, "amtsim: cannot write %s: %s\n", d->state_path, strerror(errno));
			return -1;
		}
		/* Fault injection and key-generation latency come from the fleet on every start,
		 * whether or not a state file exists. */
		if (device_apply_faults(d, fleet_faults, json_object_get(e, "faults"), err,
					sizeof(err)) != 0) {
			fprintf(stderr, "amtsim: fleet: %s: %s\n", id, err);
			return -1;
		}
		d->keygen_ms = keygen_ms_def;
		if (json_is_integer(json_object_get(e, "keygen_latency_ms")))
			d->keygen_ms = (unsigned)json_integer_value(json_object_get(e, "keygen_latency_ms"));
		if (conn_model(d, fleet, e, err, sizeof(err)) != 0) {
			fprintf(stderr, "amtsim: fleet: %s: %s\n", id, err);
			return -1;
		}
		if (json_is_integer(tp))
			tls_port = (int)json_integer_value(tp);
		http_port = device_allows_non_tls(d) ? http_port_def : 0;
		if (json_is_integer(hp))
			http_port = (int)json_integer_value(hp);
		/* Say so before the descriptors run out (which would otherwise surface as an odd
		 * failure to write some state file); 64 stay free for state files, the control
		 * socket and at least a few connections. */
		listeners += (tls_port > 0) + (http_port > 0);
		if (f->fd_limit > 0 && listeners + 64 > f->fd_limit) {
			fprintf(stderr, "amtsim: fleet: %s: %ld listening sockets do not fit in "
					"RLIMIT_NOFILE (%ld; hard limit reached): every device listens "
					"on 16993 and, below CSME 16.1, on 16992: raise the hard limit "
					"or give fewer devices a plain HTTP port\n",
				id, listeners, f->fd_limit);
			return -1;
		}
		if (http_device_listen(&f->srv, d, tls_port, http_port, err, sizeof(err)) != 0) {
			fprintf(stderr, "amtsim: %s\n", err);
			return -1;
		}
	}
	return 0;
}

static void fleet_free(struct fleet *f)
{
	if (f->control)
		evconnlistener_free(f->control);
	if (f->control_path[0])
		unlink(f->control_path);
	http_server_close_all(&f->srv);
	for (int i = 0; i < f->n; i++) {
		http_device_stop(f->devs[i]);
		device_clear(f->devs[i]);
		free(f->devs[i]);
	}
	sim_mei_free(f->mei);
	free(f->devs);
	if (f->save_timer)
		event_free(f->save_timer);
	if (f->sig_int)
		event_free(f->sig_int);
	if (f->sig_term)
		event_free(f->sig_term);
	if (f->srv.ssl_ctx)
		SSL_CTX_free(f->srv.ssl_ctx);
	if (f->srv.base)
		event_base_free(f->srv.base);
	tls_keypool_free(&f->pool);
}

/* Returns the soft limit on descriptors after raising it as far as allowed. */
static long raise_fd_limit(void)
{
	struct rlimit rl;

	/* Two listeners per device: thousands of devices need far more than 1024 fds. */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 0x7fffffff ? 0x7fffffff
									: (long)rl.rlim_cur;
}

static int cmd_serve(const char *fleet_path, const char *state_dir, const char *control,
		     const char *mei_dir, int tls_port, int http_port, bool quiet)
{
	struct fleet f;
	json_error_t je;
	json_t *fleet;
	struct timeval one = {1, 0};
	int rc = 1, pool_n, bits;
	json_t *v;

	memset(&f, 0, sizeof(f));
	fleet = json_load_file(fleet_path, JSON_REJECT_DUPLICATES, &je);
	if (!fleet) {
		fprintf(stderr, "amtsim: %s:%d: %s\n", fleet_path, je.line, je.text);
		return EXIT_USAGE;
	}
	if (sim_strlcpy(f.state_dir, state_dir, sizeof(f.state_dir)) != 0 ||
	    (mkdir(state_dir, 0700) != 0 && errno != EEXIST)) {
		fprintf(stderr, "amtsim: cannot use state dir %s: %s\n", state_dir, strerror(errno));
		json_decref(fleet);
		return 1;
	}
	if (control)
		sim_strlcpy(f.control_path, control, sizeof(f.control_path));
	else
		if (snprintf(f.control_path, sizeof(f.control_path), "%s/control.sock", state_dir) >=
		    (int)sizeof(f.control_path)) {
			json_decref(fleet);
			return EXIT_USAGE;
		}
	f.fd_limit = raise_fd_limit();
	v = json_object_get(fleet, "key_pool");
	pool_n = json_is_integer(v) ? (int)json_integer_value(v) : 4;
	v = json_object_get(fleet, "key_bits");
	bits = json_is_integer(v) ? (int)json_integer_value(v) : 2048;
	if (pool_n < 1 || pool_n > 1024 || bits < 1024 || bits > 8192) {
		fprintf(stderr, "amtsim: fleet: key_pool 1..1024, key_bits 1024..8192\n");
		json_decref(fleet);
		return EXIT_USAGE;
	}
	v = json_object_get(fleet, "nonce_lifetime");
	f.srv.nonce_lifetime = json_is_integer(v) ? (int)json_integer_value(v) : 300;
	f.srv.handler = route;
	f.srv.base = event_base_new();
	f.srv.ssl_ctx = tls_server_ctx();
	if (!f.srv.base || !f.srv.ssl_ctx ||
	    tls_keypool_init(&f.pool, state_dir, pool_n, bits) != 0) {
		fprintf(stderr, "amtsim: initialisation failed (event base, TLS or key pool)\n");
		goto out;
	}
	if (odca_init(state_dir) != 0) {
		fprintf(stderr, "amtsim: cannot make or read %s/odca.pem (the On-Die CA of "
				"AMT 19+ pre-provisioning TLS)\n", state_dir);
		goto out;
	}
	wsman_set_keypool(&f.pool);
	if (load_fleet(&f, fleet, tls_port, http_port) != 0 || control_listen(&f) != 0)
		goto out;
	if (mei_dir) {
		char err[512];

		f.mei = sim_mei_start(f.srv.base, f.devs, f.n, mei_dir, err, sizeof(err));
		if (!f.mei) {
			fprintf(stderr, "amtsim: --mei-dir: %s\n", err);
			goto out;
		}
	}
	f.save_timer = event_new(f.srv.base, -1, EV_PERSIST, on_save_timer, &f);
	f.sig_int = evsignal_new(f.srv.base, SIGINT, on_signal, &f);
	f.sig_term = evsignal_new(f.srv.base, SIGTERM, on_signal, &f);
	if (!f.save_timer || !f.sig_int || !f.sig_term || event_add(f.save_timer, &one) ||
	    event_add(f.sig_int, NULL) || event_add(f.sig_term, NULL))
		goto out;
	if (!quiet)
		fprintf(stderr, "amtsim: serving %d device(s); control socket %s\n", f.n,
			f.control_path);
	event_base_dispatch(f.srv.base);
	save_dirty(&f);
	rc = 0;
out:
	fleet_free(&f);
	odca_free();
	json_decref(fleet);
	return rc;
}

/* ---- agent / dump ---------------------------------------------------------------------- */

static int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static int cmd_agent(const char *state_dir, const char *control, const char *id)
{
	char sock[4096], path[4096], err[512];
	json_t *cmd, *res, *o;
	struct device d;
	int rc;

	if (!valid_id(id)) {
		fprintf(stderr, "amtsim: bad device id '%s'\n", id);
		return EXIT_USAGE;
	}
	if (control)
		sim_strlcpy(sock, control, sizeof(sock));
	else
		if (snprintf(sock, sizeof(sock), "%s/control.sock", state_dir) >= (int)sizeof(sock))
			return EXIT_USAGE;
	/* A running fleet owns the device: ask it, so its next save does not undo ours. */
	if (access(sock, F_OK) == 0) {
		cmd = json_pack("{s:s,s:s}", "cmd", "agent", "device", id);
		res = control_call(sock, cmd, err, sizeof(err));
		json_decref(cmd);
		if (res) {
			o = json_object_get(res, "agent");
			rc = o ? print_json(o) : 1;
			if (!o)
				fprintf(stderr, "amtsim: %s\n",
					json_string_value(json_object_get(res, "error")));
			json_decref(res);
			return rc;
		}
	}
	if (snprintf(path, sizeof(path), "%s/%s.json", state_dir, id) >= (int)sizeof(path))
		return EXIT_USAGE;
	if (device_init(&d, id, "11.0.0") != 0 || device_load(&d, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "amtsim: %s\n", err);
		device_clear(&d);
		return 1;
	}
	o = agent_set_otp(&d, err, sizeof(err));
	if (!o) {
		fprintf(stderr, "amtsim: %s\n", err);
		device_clear(&d);
		return 1;
	}
	rc = device_save(&d, path) == 0 ? print_json(o) : 1;
	json_decref(o);
	device_clear(&d);
	return rc;
}

static int cmd_dump(const char *control, const char *id)
{
	char err[512];
	json_t *cmd = json_pack("{s:s,s:s}", "cmd", id ? "dump" : "list", "device", id ? id : "");
	json_t *res = control_call(control, cmd, err, sizeof(err));
	json_t *o;
	int rc;

	json_decref(cmd);
	if (!res) {
		fprintf(stderr, "amtsim: %s\n", err);
		return 1;
	}
	o = json_object_get(res, id ? "device" : "devices");
	if (!o) {
		fprintf(stderr, "amtsim: %s\n", json_string_value(json_object_get(res, "error")));
		json_decref(res);
		return 1;
	}
	rc = print_json(o);
	json_decref(res);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: amtsim serve --fleet FLEET.json --state-dir DIR [--control SOCKET]\n"
		"                    [--mei-dir MDIR] [--tls-port N] [--http-port N] [--quiet]\n"
		"       amtsim agent --state-dir DIR --device ID [--control SOCKET]\n"
		"       amtsim dump --control SOCKET [DEVICE]\n"
		"\n"
		"serve   run every device of FLEET.json on its own 127.x.y.z address (TLS 16993,\n"
		"        plain HTTP 16992 where the firmware version allows it); state is kept in\n"
		"        DIR/<id>.json; the control socket defaults to DIR/control.sock;\n"
		"        --mei-dir MDIR serves each device's AMT host interface on\n"
		"        MDIR/<id>.sock (what amtprov-agent --mei PATH talks to)\n"
		"agent   play the host agent: set a random OTP and print the JSON that\n"
		"        `amtprov device add --from-json` reads\n"
		"dump    print a device's state as JSON (no DEVICE: list the devices)\n"
		"Output of agent and dump is always JSON (--json is accepted for symmetry).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"fleet", required_argument, NULL, 'f'},
		{"state-dir", required_argument, NULL, 's'},
		{"control", required_argument, NULL, 'c'},
		{"device", required_argument, NULL, 'd'},
		{"tls-port", required_argument, NULL, 'T'},
		{"http-port", required_argument, NULL, 'H'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"mei-dir", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *fleet = NULL, *state = NULL, *control = NULL, *dev = NULL, *cmd;
	const char *mei_dir = NULL;
	long long tls_port = 16993, http_port = 16992;
	bool quiet = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "f:s:c:d:T:H:M:jqh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fleet = optarg; break;
		case 's': state = optarg; break;
		case 'c': control = optarg; break;
		case 'd': dev = optarg; break;
		case 'T':
			if (sim_parse_ll(optarg, 0, 65535, &tls_port) != 0) {
				fprintf(stderr, "amtsim: --tls-port: 0..65535\n");
				return EXIT_USAGE;
			}
			break;
		case 'H':
			if (sim_parse_ll(optarg, 0, 65535, &http_port) != 0) {
				fprintf(stderr, "amtsim: --http-port: 0..65535\n");
				return EXIT_USAGE;
			}
			break;
		case 'j': break;
		case 'q': quiet = true; break;
		case 'M': mei_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	signal(SIGPIPE, SIG_IGN);
	xmlInitParser();
	if (!strcmp(cmd, "serve") && fleet && state && optind == argc) {
		rc = cmd_serve(fleet, state, control, mei_dir, (int)tls_port, (int)http_port, quiet);
	} else if (!strcmp(cmd, "agent") && state && dev && optind == argc) {
		rc = cmd_agent(state, control, dev);
	} else if (!strcmp(cmd, "dump") && control && argc - optind <= 1) {
		rc = cmd_dump(control, optind < argc ? argv[optind] : NULL);
	} else {
		usage(stderr);
		rc = EXIT_USAGE;
	}
	xmlCleanupParser();
	return rc;
}
