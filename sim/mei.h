/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated MEI (docs/amtsim.md, "Simulated MEI"): each device's AMT host interface on a
 * Unix socket, with the framing of docs/agent.md, answering from the same device state the
 * network side serves.
 */
#ifndef AMTSIM_MEI_H
#define AMTSIM_MEI_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "device.h"

/* faults "mei": how the device's host interface misbehaves. */
enum sim_mei_fault {
	SIM_MEI_NORMAL = 0,
	SIM_MEI_ABSENT,    /* no AMTHI client: the connect is refused (no AMT, or disabled) */
	SIM_MEI_DISABLED,  /* connects, but every answer is empty (AMT disabled in the BIOS) */
	SIM_MEI_BUSY,      /* the connect is refused: the client is in use */
	SIM_MEI_NOT_READY, /* every request answers AMT_STATUS_NOT_READY (firmware busy) */
};
/** "absent", "disabled", "busy", "not_ready", "none" -> the fault; -1 when unknown. */
int sim_mei_fault_parse(const char *s);

struct sim_mei;

/** Listens on DIR/<id>.sock (0600) for every device. @return NULL with @p err. */
struct sim_mei *sim_mei_start(struct event_base *base, struct device **devs, int n,
			      const char *dir, char *err, size_t errlen);
void sim_mei_free(struct sim_mei *m);

/** Answers one AMTHI request as device @p d: the answer's length in @p out (0 = an empty
 * answer). Changes the device (OTP, provisioning state) as the firmware would. */
size_t sim_mei_answer(struct device *d, const uint8_t *req, size_t len, uint8_t *out,
		      size_t cap);

#endif
