/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MEI transport: the kernel's /dev/mei0 (connect ioctl to the AMTHI client by GUID,
 * then one write per request and one read per answer), or a Unix socket that carries the
 * same byte messages in frames (amtsim's simulated MEI; docs/agent.md, "Socket framing").
 * Which one is decided by what PATH is, so nothing else in the agent differs.
 */
#ifndef AMTPROV_AGENT_MEI_DEV_H
#define AMTPROV_AGENT_MEI_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mei_rc {
	MEI_OK = 0,
	MEI_ENODEV = -1,    /* no such device: no MEI hardware or no mei driver */
	MEI_EACCES = -2,    /* not allowed to open it (root only) */
	MEI_ENOCLIENT = -3, /* the firmware has no AMTHI client: no AMT, or AMT disabled */
	MEI_EBUSY = -4,     /* the AMTHI client is in use (another agent, LMS) */
	MEI_EIO = -5,       /* read/write failed, or a malformed frame */
	MEI_ETIMEDOUT = -6, /* no answer in time */
};

struct mei_dev {
	int fd;
	bool is_socket;
	uint32_t max_msg;   /* the client's max_msg_length */
	uint8_t protocol;
	int timeout_ms;
};

/** Opens @p path and connects to the AMTHI client. @return MEI_OK or an mei_rc with
 * a sentence in @p err. */
int mei_open(struct mei_dev *m, const char *path, int timeout_ms, char *err, size_t errlen);

/** Sends one request and reads one answer into @p resp (at most @p cap bytes). An empty
 * answer (*@p rlen 0) is MEI_OK: the firmware's way of saying AMT is disabled. */
int mei_call(struct mei_dev *m, const uint8_t *req, size_t len, uint8_t *resp, size_t cap,
	     size_t *rlen, char *err, size_t errlen);

void mei_close(struct mei_dev *m);

#endif
