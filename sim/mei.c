/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated MEI: a device's AMT host interface on DIR/<id>.sock. The byte messages are
 * the ones /dev/mei0 carries (agent/mei_msg.h, one definition for both ends), framed as
 * docs/agent.md says; the first frame is the connect request with the client GUID.
 *
 * Firmware rules modelled here (docs/amtsim.md): one host connection to the AMTHI client
 * at a time (a second one is refused as busy), SetProvisioningServerOTP in pre and in
 * states only, StartConfiguration(Ex) moves pre -> in (the provisioning listener then wants
 * a client certificate and shows the OTP over WS-Man), StopConfiguration moves in -> pre.
 */
#include "mei.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "mei_msg.h"
#include "simutil.h"

struct mei_port {
	struct sim_mei *m;
	struct device *d;
	struct evconnlistener *l;
	char path[4096];
	int connected; /* host connections to the AMTHI client (at most one) */
};

struct sim_mei {
	struct mei_port *ports;
	int n;
};

struct mei_conn {
	struct mei_port *port;
	struct bufferevent *bev;
	bool connected;
};

int sim_mei_fault_parse(const char *s)
{
	static const char *const names[] = {"none", "absent", "disabled", "busy", "not_ready"};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

/* ---- answers ----------------------------------------------------------------------- */

static size_t reply(uint32_t cmd, uint32_t status, const uint8_t *body, size_t blen,
		    uint8_t *out, size_t cap)
{
	uint8_t tmp[AMTHI_MAX_MSG];

	if (blen > sizeof(tmp) - 4)
		return 0;
	amthi_put32(tmp, status);
	if (blen)
		memcpy(tmp + 4, body, blen);
	return amthi_encode(cmd | AMTHI_RESPONSE_BIT, tmp, 4 + blen, out, cap);
}

static size_t put_version(uint8_t *b, size_t at, const char *desc, const char *ver)
{
	size_t dl = strlen(desc), vl = strlen(ver);

	dl = dl > AMTHI_UNICODE_LEN ? AMTHI_UNICODE_LEN : dl;
	vl = vl > AMTHI_UNICODE_LEN ? AMTHI_UNICODE_LEN : vl;
	memset(b + at, 0, AMTHI_VERSION_TYPE_LEN);
	amthi_put16(b + at, (uint16_t)dl);
	memcpy(b + at + 2, desc, dl);
	amthi_put16(b + at + 2 + AMTHI_UNICODE_LEN, (uint16_t)vl);
	memcpy(b + at + 4 + AMTHI_UNICODE_LEN, ver, vl);
	return at + AMTHI_VERSION_TYPE_LEN;
}

static size_t code_versions(struct device *d, uint8_t *b)
{
	char build[16], ver[32];
	const char *const pairs[][2] = {
		{"Flash", ver},		 {"Netstack", ver},	     {"AMTApps", ver},
		{"AMT", ver},		 {"Sku", "16392"},	     {"VendorID", "8086"},
		{"Build Number", build}, {"Recovery Version", ver}, {"Recovery Build Num", build},
		{"Legacy Mode", "False"},
	};
	size_t at = AMTHI_BIOS_VERSION_LEN + 4;

	snprintf(ver, sizeof(ver), "%d.%d.%d", d->ver_major, d->ver_minor, d->ver_build);
	snprintf(build, sizeof(build), "%d", 1000 + d->ver_build);
	memset(b, 0, at);
	snprintf((char *)b, AMTHI_BIOS_VERSION_LEN, "AMTSIM.%d.%d", d->ver_major, d->ver_minor);
	amthi_put32(b + AMTHI_BIOS_VERSION_LEN, sizeof(pairs) / sizeof(pairs[0]));
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		at = put_version(b, at, pairs[i][0], pairs[i][1]);
	return at;
}

static void lan_settings(const struct dev_port *p, bool wireless, const char *fallback_ip,
			 uint8_t b[AMTHI_LAN_LEN])
{
	struct in_addr a = {0};
	unsigned mac[6] = {0};
	const char *ip = p->ip[0] ? p->ip : fallback_ip;

	memset(b, 0, AMTHI_LAN_LEN);
	amthi_put32(b, wireless ? p->enabled_state != 3 : 1);
	if (ip && inet_pton(AF_INET, ip, &a) == 1)
		amthi_put32(b + 4, ntohl(a.s_addr));
	amthi_put32(b + 8, p->dhcp);
	b[12] = p->dhcp ? 1 : 0; /* DHCP mode: 1 active */
	b[13] = wireless ? 0 : p->link_up;
	if (sscanf(p->mac, "%2x:%2x:%2x:%2x:%2x:%2x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
		   &mac[5]) == 6)
		for (int i = 0; i < 6; i++)
			b[14 + i] = (uint8_t)mac[i];
}

static size_t hash_entry(struct device *d, uint32_t handle, uint8_t *out, size_t cap)
{
	uint8_t b[4 + 4 + AMTHI_HASH_FIELD + 1 + 2 + sizeof(d->hashes[0].name)];
	const struct dev_root_hash *h;
	size_t nl;

	/* Handles are table positions + 1 (EnumerateHashHandles lists them). */
	if (handle == 0 || handle > (uint32_t)d->n_hashes)
		return reply(AMTHI_CMD_GET_CERTHASH_ENTRY, AMT_STATUS_INVALID_HANDLE, NULL, 0, out,
			     cap);
	h = &d->hashes[handle - 1];
	nl = strlen(h->name);
	memset(b, 0, sizeof(b));
	amthi_put32(b, h->is_default);
	amthi_put32(b + 4, h->enabled);
	/* dev_hash_algo uses the firmware's numbers: 1 SHA-1, 2 SHA-256, 3 SHA-384. */
	memcpy(b + 8, h->hash, amthi_hash_size((unsigned)h->algo));
	b[8 + AMTHI_HASH_FIELD] = (uint8_t)h->algo;
	amthi_put16(b + 9 + AMTHI_HASH_FIELD, (uint16_t)nl);
	memcpy(b + 11 + AMTHI_HASH_FIELD, h->name, nl);
	return reply(AMTHI_CMD_GET_CERTHASH_ENTRY, AMT_STATUS_SUCCESS, b, 11 + AMTHI_HASH_FIELD + nl,
		     out, cap);
}

static size_t set_otp(struct device *d, const uint8_t *body, size_t blen, uint8_t *out,
		      size_t cap)
{
	char otp[AMTHI_OTP_MAX + 1];
	uint16_t n = blen >= 2 ? amthi_get16(body) : 0;
	uint32_t st;

	if (blen < 2 || blen != 2 + (size_t)n)
		st = AMT_STATUS_INVALID_MESSAGE_LENGTH;
	else if (d->prov_state == DEV_POST)
		st = AMT_STATUS_INVALID_AMT_MODE;
	else if (n < AMTHI_OTP_MIN || n > AMTHI_OTP_MAX)
		st = AMT_STATUS_INVALID_PARAMETER;
	else {
		memcpy(otp, body + 2, n);
		otp[n] = '\0';
		st = device_set_otp(d, otp) == 0 ? AMT_STATUS_SUCCESS : AMT_STATUS_INVALID_PARAMETER;
		memset(otp, 0, sizeof(otp));
	}
	return reply(AMTHI_CMD_SET_PROVISIONING_SERVER_OTP, st, NULL, 0, out, cap);
}

static size_t start_configuration(struct device *d, uint32_t cmd, size_t blen, uint8_t *out,
				  size_t cap)
{
	uint32_t st = AMT_STATUS_SUCCESS;

	if (blen != (cmd == AMTHI_CMD_START_CONFIGURATION_EX ? 1u : 0u))
		st = AMT_STATUS_INVALID_MESSAGE_LENGTH;
	else if (cmd == AMTHI_CMD_START_CONFIGURATION_EX && d->ver_major < 6)
		st = AMT_STATUS_INVALID_PARAMETER; /* StartConfigurationEx came with AMT 6.0 */
	else if (d->prov_state != DEV_PRE)
		st = AMT_STATUS_INVALID_AMT_MODE;
	if (st == AMT_STATUS_SUCCESS) {
		d->prov_state = DEV_IN;
		device_audit(d, "MEI %s: remote configuration started (state in)",
			     cmd == AMTHI_CMD_START_CONFIGURATION ? "StartConfiguration"
								  : "StartConfigurationEx");
	}
	return reply(cmd, st, NULL, 0, out, cap);
}

static size_t stop_configuration(struct device *d, size_t blen, uint8_t *out, size_t cap)
{
	uint32_t st = blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH
		      : d->prov_state != DEV_IN ? AMT_STATUS_INVALID_AMT_MODE : AMT_STATUS_SUCCESS;

	if (st == AMT_STATUS_SUCCESS) {
		d->prov_state = DEV_PRE;
		device_audit(d, "MEI StopConfiguration: back to state pre");
	}
	return reply(AMTHI_CMD_STOP_CONFIGURATION, st, NULL, 0, out, cap);
}

size_t sim_mei_answer(struct device *d, const uint8_t *req, size_t len, uint8_t *out,
		      size_t cap)
{
	uint8_t b[AMTHI_MAX_MSG];
	uint32_t cmd, v;
	const uint8_t *body = req + AMTHI_HDR_LEN;
	size_t blen, n;

	if (d->faults.mei == SIM_MEI_DISABLED)
		return 0;
	cmd = len >= 8 ? amthi_get32(req + 4) & ~AMTHI_RESPONSE_BIT : 0;
	if (len < AMTHI_HDR_LEN || amthi_get32(req + 8) != len - AMTHI_HDR_LEN)
		return reply(cmd, AMT_STATUS_INVALID_MESSAGE_LENGTH, NULL, 0, out, cap);
	if (req[0] != AMTHI_VER_MAJOR || req[1] != AMTHI_VER_MINOR || amthi_get16(req + 2))
		return reply(cmd, AMT_STATUS_INVALID_PARAMETER, NULL, 0, out, cap);
	if (d->faults.mei == SIM_MEI_NOT_READY)
		return reply(cmd, AMT_STATUS_NOT_READY, NULL, 0, out, cap);
	blen = len - AMTHI_HDR_LEN;
	switch (cmd) {
	case AMTHI_CMD_GET_CODE_VERSIONS:
		n = code_versions(d, b);
		return reply(cmd, blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH : 0, b, blen ? 0 : n,
			     out, cap);
	case AMTHI_CMD_GET_PROVISIONING_STATE:
	case AMTHI_CMD_GET_CONTROL_MODE:
		v = cmd == AMTHI_CMD_GET_CONTROL_MODE ? (uint32_t)d->control_mode
						      : (uint32_t)d->prov_state;
		amthi_put32(b, v);
		return reply(cmd, blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH : 0, b, blen ? 0 : 4,
			     out, cap);
	case AMTHI_CMD_GET_UUID:
		if (amthi_uuid_from_text(d->uuid, b) != 0)
			return reply(cmd, AMT_STATUS_INTERNAL_ERROR, NULL, 0, out, cap);
		return reply(cmd, blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH : 0, b, blen ? 0 : 16,
			     out, cap);
	case AMTHI_CMD_GET_PKI_FQDN_SUFFIX:
		n = strlen(d->pki_dns_suffix);
		amthi_put16(b, (uint16_t)n);
		memcpy(b + 2, d->pki_dns_suffix, n);
		return reply(cmd, blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH : 0, b,
			     blen ? 0 : 2 + n, out, cap);
	case AMTHI_CMD_GET_LAN_INTERFACE_SETTINGS:
		if (blen != 4)
			return reply(cmd, AMT_STATUS_INVALID_MESSAGE_LENGTH, NULL, 0, out, cap);
		v = amthi_get32(body);
		if (v > 1)
			return reply(cmd, AMT_STATUS_INVALID_PARAMETER, NULL, 0, out, cap);
		lan_settings(v ? &d->wireless : &d->wired, v == 1, v ? NULL : d->address, b);
		return reply(cmd, 0, b, AMTHI_LAN_LEN, out, cap);
	case AMTHI_CMD_ENUMERATE_HASH_HANDLES:
		amthi_put32(b, (uint32_t)d->n_hashes);
		for (int i = 0; i < d->n_hashes; i++)
			amthi_put32(b + 4 + 4 * i, (uint32_t)i + 1);
		return reply(cmd, blen ? AMT_STATUS_INVALID_MESSAGE_LENGTH : 0, b,
			     blen ? 0 : 4 + 4 * (size_t)d->n_hashes, out, cap);
	case AMTHI_CMD_GET_CERTHASH_ENTRY:
		if (blen != 4)
			return reply(cmd, AMT_STATUS_INVALID_MESSAGE_LENGTH, NULL, 0, out, cap);
		return hash_entry(d, amthi_get32(body), out, cap);
	case AMTHI_CMD_SET_PROVISIONING_SERVER_OTP:
		return set_otp(d, body, blen, out, cap);
	case AMTHI_CMD_START_CONFIGURATION:
	case AMTHI_CMD_START_CONFIGURATION_EX:
		return start_configuration(d, cmd, blen, out, cap);
	case AMTHI_CMD_STOP_CONFIGURATION:
		return stop_configuration(d, blen, out, cap);
	default:
		/* What real firmware answers to a command it lacks is not documented. */
		return reply(cmd, AMT_STATUS_INVALID_PARAMETER, NULL, 0, out, cap);
	}
}

/* ---- the socket ------------------------------------------------------------------- */

static void conn_free(struct mei_conn *c)
{
	if (c->connected)
		c->port->connected--;
	bufferevent_free(c->bev);
	free(c);
}

static void send_frame(struct mei_conn *c, const uint8_t *b, size_t n)
{
	uint8_t len[4];

	amthi_put32(len, (uint32_t)n);
	evbuffer_add(bufferevent_get_output(c->bev), len, 4);
	if (n)
		evbuffer_add(bufferevent_get_output(c->bev), b, n);
}

/* The connect frame: the client GUID. Only the AMTHI client exists here. */
static bool on_connect(struct mei_conn *c, const uint8_t *b, size_t n)
{
	struct device *d = c->port->d;
	uint8_t ans[MEI_SOCK_CONNECT_ANSWER_LEN] = {MEI_SOCK_CONNECTED};

	if (n != 16 || memcmp(b, AMTHI_GUID, 16) != 0 || d->faults.mei == SIM_MEI_ABSENT)
		ans[0] = MEI_SOCK_NO_CLIENT;
	else if (d->faults.mei == SIM_MEI_BUSY || c->port->connected > 0)
		ans[0] = MEI_SOCK_BUSY;
	amthi_put32(ans + 1, AMTHI_MAX_MSG);
	ans[5] = 1;
	send_frame(c, ans, sizeof(ans));
	if (ans[0] != MEI_SOCK_CONNECTED)
		return false;
	c->connected = true;
	c->port->connected++;
	return true;
}

static void conn_event(struct bufferevent *bev, short what, void *arg);

static void on_close_after_write(struct bufferevent *bev, void *arg)
{
	conn_free(arg);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct mei_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t len[4], req[AMTHI_MAX_MSG], ans[AMTHI_MAX_MSG];

	while (evbuffer_get_length(in) >= 4) {
		uint32_t n;

		evbuffer_copyout(in, len, 4);
		n = amthi_get32(len);
		if (n > AMTHI_MAX_MSG) {
			/* The kernel refuses a write over max_msg_length; a stream cannot resync. */
			conn_free(c);
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)n)
			return;
		evbuffer_drain(in, 4);
		evbuffer_remove(in, req, n);
		if (!c->connected) {
			if (!on_connect(c, req, n)) {
				bufferevent_disable(bev, EV_READ);
				bufferevent_setcb(bev, NULL, on_close_after_write, conn_event, c);
				return;
			}
			continue;
		}
		send_frame(c, ans, sim_mei_answer(c->port->d, req, n, ans, sizeof(ans)));
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct mei_port *p = arg;
	struct mei_conn *c = calloc(1, sizeof(*c));

	if (c)
		c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
						BEV_OPT_CLOSE_ON_FREE);
	if (!c || !c->bev) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->port = p;
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct sim_mei *sim_mei_start(struct event_base *base, struct device **devs, int n,
			      const char *dir, char *err, size_t errlen)
{
	struct sim_mei *m = calloc(1, sizeof(*m));

	if (!m || !(m->ports = calloc((size_t)n + 1, sizeof(*m->ports)))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		sim_mei_free(m);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		struct mei_port *p = &m->ports[i];
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		p->m = m;
		p->d = devs[i];
		m->n = i + 1;
		if (snprintf(p->path, sizeof(p->path), "%s/%s.sock", dir, devs[i]->id) >=
			    (int)sizeof(p->path) ||
		    sim_strlcpy(sun.sun_path, p->path, sizeof(sun.sun_path)) != 0) {
			snprintf(err, errlen, "%s/%s.sock: path too long for a socket", dir,
				 devs[i]->id);
			sim_mei_free(m);
			return NULL;
		}
		unlink(p->path);
		p->l = evconnlistener_new_bind(base, on_accept, p, LEV_OPT_CLOSE_ON_FREE, 16,
					       (struct sockaddr *)&sun, sizeof(sun));
		if (!p->l) {
			snprintf(err, errlen, "cannot listen on %s: %s", p->path, strerror(errno));
			sim_mei_free(m);
			return NULL;
		}
		/* Only the host's own root may talk to /dev/mei0; only we to the socket. */
		chmod(p->path, 0600);
	}
	return m;
}

void sim_mei_free(struct sim_mei *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->n; i++) {
		if (m->ports[i].l) {
			evconnlistener_free(m->ports[i].l);
			unlink(m->ports[i].path);
		}
	}
	free(m->ports);
	free(m);
}
