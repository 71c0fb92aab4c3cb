/* SPDX-License-Identifier: Apache-2.0 */
#include "hostile.h"

#include <string.h>

#define NS12 "http://www.w3.org/2003/05/soap-envelope"
#define NS11 "http://schemas.xmlsoap.org/soap/envelope/"

/* The envelope opening: SOAP 1.2 for WS-Man (/wsman), 1.1 for the legacy services. */
static void open_env(struct sbuf *b, const struct http_request *req)
{
	sbuf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope xmlns:a=\"%s\">"
		       "<a:Header/>",
		    strcmp(req->path, "/wsman") ? NS11 : NS12);
}

void hostile_rewrite(struct device *d, const struct http_request *req, struct http_response *r,
		     int kind)
{
	struct sbuf b = {0};

	device_audit(d, "fault injection: hostile answer %s to %s", hostile_kind_name(kind),
		     req->path);
	switch (kind) {
	case HOSTILE_EMPTY_BODY:
		open_env(&b, req);
		sbuf_add(&b, "<a:Body/></a:Envelope>");
		r->status = 200;
		break;
	case HOSTILE_WRONG_ELEMENT:
		/* Well-formed, a 200, but nothing the client asked for. */
		open_env(&b, req);
		sbuf_add(&b, "<a:Body><h:AMTSIM_Unexpected xmlns:h=\"urn:amtsim:hostile\">"
			     "<h:Noise>hostile</h:Noise><h:ReturnValue>0</h:ReturnValue>"
			     "</h:AMTSIM_Unexpected></a:Body></a:Envelope>");
		r->status = 200;
		break;
	case HOSTILE_FAULT_NO_DETAIL:
		open_env(&b, req);
		sbuf_add(&b, "<a:Body><a:Fault/></a:Body></a:Envelope>");
		r->status = 500;
		break;
	case HOSTILE_HUGE_BODY: {
		static const char pad[] = "<h:Pad>0123456789abcdef0123456789abcdef</h:Pad>";

		open_env(&b, req);
		sbuf_add(&b, "<a:Body><h:Huge xmlns:h=\"urn:amtsim:hostile\">");
		while (b.len < HOSTILE_HUGE_BYTES && !b.failed)
			sbuf_addn(&b, pad, sizeof(pad) - 1);
		sbuf_add(&b, "</h:Huge></a:Body></a:Envelope>");
		r->status = 200;
		break;
	}
	case HOSTILE_TRUNCATED_BODY:
		/* The real answer cut in half, sent with a length that matches the cut. */
		if (r->body.len > 1) {
			r->body.len /= 2;
			r->body.data[r->body.len] = '\0';
		}
		return;
	default:
		return; /* slow_drip: the server trickles the real answer */
	}
	sbuf_free(&r->body);
	r->body = b;
	r->content_type = strcmp(req->path, "/wsman") ? "text/xml; charset=utf-8"
						      : "application/soap+xml;charset=UTF-8";
}
