/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_transport.c - see fuzz_transport.h. */
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "fuzz_host.h"
#include "fuzz_transport.h"

/* Short opaque base64 values: the ops pass them through, the device judges them. */
#define B64 "MIIBfzCCASWgAwIBAgIUFuzz"

const struct ft_op ft_ops[] = {
	{AMTPROV_AMT_GET_CORE_VERSION, "{}"},
	{AMTPROV_AMT_GET_SETUP_STATE, "{}"},
	{AMTPROV_AMT_GET_OTP_HASH, "{}"},
	{AMTPROV_AMT_GET_HASHES, "{}"},
	{AMTPROV_AMT_SET_TIME, "{\"time\":1798675200}"},
	{AMTPROV_AMT_SET_HOST_NAME, "{\"host\":\"pc1\",\"domain\":\"corp.example\"}"},
	{AMTPROV_AMT_GENERATE_KEY_PAIR, "{\"bits\":2048}"},
	{AMTPROV_AMT_SIGN_CSR, "{\"key_handle\":\"Intel(r) AMT Key: Handle: 0\","
			       "\"csr_der_b64\":\"" B64 "\"}"},
	{AMTPROV_AMT_ADD_KEY, "{\"key_der_b64\":\"" B64 "\"}"},
	{AMTPROV_AMT_ADD_CERTIFICATE, "{\"cert_der_b64\":\"" B64 "\",\"chain\":[\"" B64 "\"],"
				      "\"key_der_b64\":\"" B64 "\"}"},
	{AMTPROV_AMT_ENABLE_TLS, "{\"cert_handle\":\"Intel(r) AMT Certificate: Handle: 1\","
				 "\"mutual\":false,\"replace\":true}"},
	{AMTPROV_AMT_SET_ADMIN_PASSWORD, "{\"credential\":\"amt/admin\"}"},
	{AMTPROV_AMT_SET_MEBX_PASSWORD, "{\"credential\":\"amt/mebx\"}"},
	{AMTPROV_AMT_COMMIT, "{}"},
	{AMTPROV_AMT_UNPROVISION, "{}"},
	{AMTPROV_AMT_SET_ACLS, "{\"accounts\":[{\"user\":\"ops\",\"credential\":\"amt/ops\","
			       "\"access\":2,\"realms\":[3,4]},{\"sid\":\"S-1-5-21-1\"}]}"},
	{AMTPROV_AMT_SET_KERBEROS, "{\"enabled\":true,\"properties\":{\"RealmName\":\"CORP\"}}"},
	{AMTPROV_AMT_SET_POWER_POLICY, "{\"policy\":\"on-in-s0-s3-s4-5\"}"},
	{AMTPROV_AMT_SET_REDIRECTION, "{\"sol\":true,\"ider\":false,\"web_ui\":true}"},
	{AMTPROV_AMT_SET_PING, "{\"enabled\":true,\"rmcp\":false}"},
	{AMTPROV_AMT_SET_8021X,
	 "{\"wired\":{\"settings\":{\"ElementName\":\"lan\",\"AuthenticationProtocol\":2,"
	 "\"Username\":\"amt\",\"Enabled\":6},\"password_credential\":\"amt/8021x\","
	 "\"server_ca_der_b64\":\"" B64 "\"},"
	 "\"wireless\":[{\"settings\":{\"ElementName\":\"w1\",\"SSID\":\"corp\","
	 "\"AuthenticationMethod\":7,\"EncryptionMethod\":4,\"Priority\":1},"
	 "\"ieee8021x\":{\"ElementName\":\"w1\",\"AuthenticationProtocol\":2,\"Username\":\"amt\"},"
	 "\"server_ca_der_b64\":\"" B64 "\"}]}"},
	{AMTPROV_AMT_GET_DEVICE_CERT, "{}"},
	{AMTPROV_AMT_DELETE_CERTIFICATE, "{\"cert_handle\":\"Intel(r) AMT Certificate: Handle: 1\"}"},
	{AMTPROV_AMT_WSMAN_GET, "{\"class\":\"AMT_GeneralSettings\"}"},
	{AMTPROV_AMT_WSMAN_PUT, "{\"class\":\"AMT_GeneralSettings\",\"properties\":{\"HostName\":"
				"\"pc1\",\"PingResponseEnabled\":true}}"},
	{AMTPROV_AMT_WSMAN_CREATE, "{\"class\":\"AMT_UserInitiatedConnectionService\","
				   "\"properties\":{\"ElementName\":\"x\"}}"},
	{AMTPROV_AMT_WSMAN_DELETE, "{\"class\":\"AMT_PublicKeyCertificate\",\"selectors\":"
				   "{\"InstanceID\":\"Intel(r) AMT Certificate: Handle: 1\"}}"},
	{AMTPROV_AMT_WSMAN_ENUMERATE, "{\"class\":\"AMT_PublicKeyCertificate\"}"},
	{AMTPROV_AMT_WSMAN_INVOKE, "{\"class\":\"AMT_SetupAndConfigurationService\",\"selectors\":"
				   "{\"Name\":\"Intel(r) AMT Setup and Configuration Service\"},"
				   "\"method\":\"GetUuid\",\"args\":{}}"},
};
const size_t ft_n_ops = sizeof(ft_ops) / sizeof(ft_ops[0]);

long ft_code(unsigned char sel)
{
	switch (sel) {
	case 'b': return 400;
	case 'c': return 500;
	case 'd': return 404;
	case 'e': return 403;
	default: return 200;
	}
}

unsigned char ft_selector(long code)
{
	switch (code) {
	case 400: return 'b';
	case 500: return 'c';
	case 404: return 'd';
	case 403: return 'e';
	default: return 'a';
	}
}

int ft_run(size_t i, int amt_major, ft_answer_fn answer, void *ctx)
{
	struct at_instance in = {
		.host = fuzz_host(),
		.cfg = {.timeout_ms = 1000, .max_pulls = 16, .max_sessions = 1},
		.epfd = -1,
	};
	struct at_session s = {
		.in = &in,
		.address = "fuzz-device",
		.port = 16993,
		.mode = AMTPROV_TRANSPORT_PROVISIONING,
		.amt_major = amt_major,
		.good_account = -1,
		.op = ft_ops[i].op,
	};
	int rc;

	s.params = json_loads(ft_ops[i].params, 0, NULL);
	if (!s.params)
		abort(); /* a harness bug, not a finding in the code under test */
	rc = at_op_step(&s);
	while (rc == AMTPROV_AGAIN) {
		const char *body;
		size_t len;

		if (answer(ctx, &s, &body, &len, &s.http_code) != 0) {
			rc = amtprov_error_set(&s.err, AMTPROV_E_UNREACHABLE, s.address,
					       "no answer (end of the fuzz input)");
			break;
		}
		/* What send_request() and write_cb() do with a response. */
		at_buf_reset(&s.resp);
		if (len)
			at_buf_addn(&s.resp, body, len);
		rc = at_check_response(&s);
		if (rc == AMTPROV_OK)
			rc = at_op_step(&s);
	}
	if (rc != AMTPROV_OK && s.err.code == AMTPROV_OK)
		abort(); /* an error code without a message: the contract says never */
	json_decref(s.params);
	json_decref(s.result);
	json_decref(s.scratch);
	if (s.doc)
		xmlFreeDoc(s.doc);
	at_buf_free(&s.req);
	at_buf_free(&s.resp);
	return rc;
}

struct fuzz_input {
	const unsigned char *p, *end;
};

/* The next answer: a selector byte, then the body up to a NUL byte or the end. */
static int next_answer(void *ctx, const struct at_session *s, const char **body, size_t *len,
		       long *code)
{
	struct fuzz_input *in = ctx;
	const unsigned char *nul;

	(void)s;
	if (in->p >= in->end)
		return -1;
	*code = ft_code(*in->p++);
	nul = memchr(in->p, '\0', (size_t)(in->end - in->p));
	*body = (const char *)in->p;
	*len = (size_t)((nul ? nul : in->end) - in->p);
	in->p = nul ? nul + 1 : in->end;
	return 0;
}

int ft_fuzz_one(const unsigned char *data, size_t size, int amt_major)
{
	struct fuzz_input in;

	if (size < 1)
		return 0;
	if (data[0] % (ft_n_ops + 1) == ft_n_ops) {
		/* The one answer that is not SOAP: a CRL fetched for MANAGED mode (DER or PEM). */
		X509_CRL *crl = at_crl_parse((const char *)data + 1, size - 1);

		X509_CRL_free(crl);
		return 0;
	}
	in.p = data + 1;
	in.end = data + size;
	ft_run(data[0] % (ft_n_ops + 1), amt_major, next_answer, &in);
	return 0;
}
