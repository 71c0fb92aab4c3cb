/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /dev/mei0 and its socket stand-in (mei_dev.h). The kernel device delivers one message
 * per read(); the socket frames each message as a little-endian u32 length and the bytes,
 * and its first frame is the connect request with the client GUID (docs/agent.md).
 */
#include "mei_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/mei.h>

#include "mei_msg.h"

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r; /* 1 ready, 0 timed out, -1 error */
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly @p n bytes from the socket. @return MEI_OK, MEI_ETIMEDOUT or MEI_EIO. */
static int read_exact(struct mei_dev *m, uint8_t *b, size_t n)
{
	while (n) {
		int r = wait_fd(m->fd, POLLIN, m->timeout_ms);
		ssize_t got;

		if (r == 0)
			return MEI_ETIMEDOUT;
		if (r < 0)
			return MEI_EIO;
		got = read(m->fd, b, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return MEI_EIO;
		b += got;
		n -= (size_t)got;
	}
	return MEI_OK;
}

static int sock_send(struct mei_dev *m, const uint8_t *b, size_t n)
{
	uint8_t len[4];

	amthi_put32(len, (uint32_t)n);
	return write_all(m->fd, len, 4) || (n && write_all(m->fd, b, n)) ? MEI_EIO : MEI_OK;
}

/* One frame into @p b (at most @p cap bytes; a longer frame is an error, never a
 * truncation). */
static int sock_recv(struct mei_dev *m, uint8_t *b, size_t cap, size_t *n, char *err,
		     size_t errlen)
{
	uint8_t len[4];
	uint32_t l;
	int rc = read_exact(m, len, 4);

	if (rc == MEI_OK) {
		l = amthi_get32(len);
		if (l > cap || l > AMTHI_MAX_MSG) {
			snprintf(err, errlen, "a frame of %u bytes is longer than %zu", l,
				 cap < AMTHI_MAX_MSG ? cap : (size_t)AMTHI_MAX_MSG);
			return MEI_EIO;
		}
		rc = read_exact(m, b, l);
		*n = l;
	}
	if (rc == MEI_ETIMEDOUT)
		snprintf(err, errlen, "no answer within %d ms", m->timeout_ms);
	else if (rc != MEI_OK)
		snprintf(err, errlen, "the connection closed or failed");
	return rc;
}

static int sock_open(struct mei_dev *m, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	uint8_t ans[MEI_SOCK_CONNECT_ANSWER_LEN];
	size_t n = 0;
	int rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", path);
		return MEI_ENODEV;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0 || connect(m->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		rc = errno == EACCES ? MEI_EACCES : MEI_ENODEV;
		snprintf(err, errlen, "%s: cannot connect: %s", path, strerror(errno));
		return rc;
	}
	m->is_socket = true;
	/* The connect step carries the GUID, so the far end checks it as the kernel does. */
	if (sock_send(m, AMTHI_GUID, sizeof(AMTHI_GUID)) != MEI_OK) {
		snprintf(err, errlen, "%s: cannot send the connect request", path);
		return MEI_EIO;
	}
	rc = sock_recv(m, ans, sizeof(ans), &n, err, errlen);
	if (rc != MEI_OK)
		return rc;
	if (n != sizeof(ans)) {
		snprintf(err, errlen, "%s: connect answer of %zu bytes, not %zu", path, n,
			 sizeof(ans));
		return MEI_EIO;
	}
	if (ans[0] == MEI_SOCK_NO_CLIENT) {
		snprintf(err, errlen, "%s: the firmware has no AMT host interface client", path);
		return MEI_ENOCLIENT;
	}
	if (ans[0] == MEI_SOCK_BUSY) {
		snprintf(err, errlen, "%s: the AMT host interface is in use", path);
		return MEI_EBUSY;
	}
	if (ans[0] != MEI_SOCK_CONNECTED) {
		snprintf(err, errlen, "%s: unknown connect answer %u", path, ans[0]);
		return MEI_EIO;
	}
	m->max_msg = amthi_get32(ans + 1);
	m->protocol = ans[5];
	return MEI_OK;
}

static int dev_open(struct mei_dev *m, const char *path, char *err, size_t errlen)
{
	struct mei_connect_client_data data;
	int r = -1;

	m->fd = open(path, O_RDWR | O_CLOEXEC);
	if (m->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s%s", path, strerror(e),
			 e == ENOENT || e == ENXIO || e == ENODEV
				 ? " (no MEI device: no Intel ME, or the mei_me driver is not loaded)"
				 : e == EACCES ? " (run as root)" : "");
		return e == EACCES || e == EPERM ? MEI_EACCES : MEI_ENODEV;
	}
	/* The client may be held for a moment by another caller: try three times. */
	for (int i = 0; i < 3; i++) {
		memset(&data, 0, sizeof(data));
		memcpy(&data.in_client_uuid, AMTHI_GUID, sizeof(AMTHI_GUID));
		r = ioctl(m->fd, IOCTL_MEI_CONNECT_CLIENT, &data);
		if (r == 0 || errno != EBUSY)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
	}
	if (r != 0) {
		int e = errno;

		snprintf(err, errlen, "%s: connecting to the AMT host interface: %s", path,
			 strerror(e));
		/* ENOTTY: the kernel found no client with that GUID (drivers/misc/mei). */
		return e == ENOTTY || e == ENODEV ? MEI_ENOCLIENT : e == EBUSY ? MEI_EBUSY : MEI_EIO;
	}
	m->max_msg = data.out_client_properties.max_msg_length;
	m->protocol = data.out_client_properties.protocol_version;
	return MEI_OK;
}

int mei_open(struct mei_dev *m, const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	if (stat(path, &st) != 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s%s", path, strerror(e),
			 e == ENOENT ? " (no MEI device: no Intel ME, or the mei_me driver is not "
				       "loaded)"
				     : "");
		return e == EACCES ? MEI_EACCES : MEI_ENODEV;
	}
	rc = S_ISSOCK(st.st_mode) ? sock_open(m, path, err, errlen) : dev_open(m, path, err, errlen);
	if (rc != MEI_OK) {
		mei_close(m);
		return rc;
	}
	if (m->max_msg < AMTHI_HDR_LEN + 4) {
		snprintf(err, errlen, "%s: the client's max message length %u is too small", path,
			 m->max_msg);
		mei_close(m);
		return MEI_EIO;
	}
	return MEI_OK;
}

int mei_call(struct mei_dev *m, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	     size_t *rlen, char *err, size_t errlen)
{
	ssize_t got;
	int r;

	*rlen = 0;
	if (len > m->max_msg) {
		snprintf(err, errlen, "request of %zu bytes is over the client's %u", len,
			 m->max_msg);
		return MEI_EIO;
	}
	if (m->is_socket) {
		if (sock_send(m, req, len) != MEI_OK) {
			snprintf(err, errlen, "write failed: %s", strerror(errno));
			return MEI_EIO;
		}
		return sock_recv(m, resp, cap, rlen, err, errlen);
	}
	if (write_all(m->fd, req, len) != 0) {
		int e = errno;

		snprintf(err, errlen, "write failed: %s", strerror(e));
		return e == EBUSY ? MEI_EBUSY : MEI_EIO;
	}
	r = wait_fd(m->fd, POLLIN, m->timeout_ms);
	if (r == 0) {
		snprintf(err, errlen, "no answer within %d ms", m->timeout_ms);
		return MEI_ETIMEDOUT;
	}
	do
		got = read(m->fd, resp, cap);
	while (got < 0 && errno == EINTR);
	if (r < 0 || got < 0) {
		snprintf(err, errlen, "read failed: %s", strerror(errno));
		return MEI_EIO;
	}
	*rlen = (size_t)got;
	return MEI_OK;
}

void mei_close(struct mei_dev *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}
