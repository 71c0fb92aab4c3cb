/* SPDX-License-Identifier: Apache-2.0 */
/*
 * winrm.c - a WS-Management remote shell [MS-WSMV 3.1.4.11-.14] that runs one program:
 * `certutil [-config X] -revoke SERIAL [REASON]`. Create, Command, Receive, Signal and
 * Delete behave as on Windows; any other command line ends with exit code 1 and a
 * message on stderr, as a constrained endpoint would refuse it. The CA checks the
 * caller's officer right ("Issue and Manage Certificates") exactly as for certutil.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"
#include "server.h"

#define NS_WSA04 "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NS_RSP "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define NS_TRANSFER "http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define NS_WSMANFAULT "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
#define URI_CMD NS_RSP "/cmd"
#define MAX_SHELLS 16
#define MAX_ARGS 16

struct command {
	char id[48];
	struct sb out, err;
	int exit_code;
	int received;
};

struct shell {
	char id[48];
	char owner[64];
	struct command cmd;
	int has_cmd;
};

struct winrm_shells {
	struct shell s[MAX_SHELLS];
	int used[MAX_SHELLS];
};

static void env_open(struct sb *b, const char *action, const char *relates)
{
	char id[64];

	soap_uuid(id, sizeof(id));
	sb_add(b, "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:a=\"" NS_WSA04 "\" xmlns:w=\""
		  NS_WSMAN "\" xmlns:rsp=\"" NS_RSP "\" xmlns:x=\"" NS_TRANSFER "\"><s:Header>"
		  "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
		  "<a:Action s:mustUnderstand=\"true\">");
	sb_esc(b, action);
	sb_printf(b, "</a:Action><a:MessageID>uuid:%s</a:MessageID>", id + 9);
	if (relates) {
		sb_add(b, "<a:RelatesTo>");
		sb_esc(b, relates);
		sb_add(b, "</a:RelatesTo>");
	}
	sb_add(b, "</s:Header><s:Body>");
}

static void wsman_fault(struct http_resp *resp, const char *relates, const char *subcode,
			unsigned long code, const char *msg)
{
	struct sb b = { 0 };

	env_open(&b, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates);
	sb_printf(&b, "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:%s"
		  "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">", subcode);
	sb_esc(&b, msg);
	sb_printf(&b, "</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f=\"" NS_WSMANFAULT
		  "\" Code=\"%lu\" Machine=\"adcssim\"><f:Message>", code);
	sb_esc(&b, msg);
	sb_add(&b, "</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>");
	adcs_reply_xml(resp, 500, &b);
}

static struct shell *find_shell(struct adcs *s, xmlDocPtr doc, const char *owner)
{
	xmlNodePtr set = soap_child(soap_header(doc), NS_WSMAN, "SelectorSet"), c;
	char *id = NULL;
	int i;

	for (c = set ? set->children : NULL; c && !id; c = c->next) {
		xmlChar *name = c->type == XML_ELEMENT_NODE ?
				xmlGetProp(c, (const xmlChar *)"Name") : NULL;

		if (name && !strcmp((const char *)name, "ShellId"))
			id = soap_text(c);
		xmlFree(name);
	}
	if (!id)
		return NULL;
	for (i = 0; i < MAX_SHELLS; i++)
		if (s->shells->used[i] && !strcmp(s->shells->s[i].id, id) &&
		    !strcasecmp(s->shells->s[i].owner, owner)) {
			free(id);
			return &s->shells->s[i];
		}
	free(id);
	return NULL;
}

static void drop_command(struct command *c)
{
	sb_free(&c->out);
	sb_free(&c->err);
	memset(c, 0, sizeof(*c));
}

/* Splits a command line on blanks, honouring double quotes. */
static int split(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	while (*p && n < max) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (*p == '"') {
			argv[n++] = ++p;
			while (*p && *p != '"')
				p++;
		} else {
			argv[n++] = p;
			while (*p && *p != ' ' && *p != '\t')
				p++;
		}
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static int is_certutil(const char *prog)
{
	const char *base = strrchr(prog, '\\');

	base = base ? base + 1 : prog;
	return !strcasecmp(base, "certutil") || !strcasecmp(base, "certutil.exe");
}

/* Runs the command; only certutil -revoke is accepted. */
static void run(struct adcs *s, const struct seed_account *who, char *line, struct command *c)
{
	char *argv[MAX_ARGS], *serials = NULL, *reason = NULL, *save = NULL, *one;
	int argc = split(line, argv, MAX_ARGS), i = 1, rc = 0;

	if (argc < 1 || !is_certutil(argv[0]))
		goto refuse;
	if (i + 1 < argc && (!strcasecmp(argv[i], "-config") || !strcasecmp(argv[i], "/config")))
		i += 2;
	if (i >= argc || (strcasecmp(argv[i], "-revoke") && strcasecmp(argv[i], "/revoke")))
		goto refuse;
	i++;
	if (i >= argc || argc - i > 2)
		goto refuse;
	serials = argv[i++];
	if (i < argc)
		reason = argv[i];
	if (!who->officer) {
		sb_add(&c->err, "CertUtil: -revoke command FAILED: 0x80070005 (WIN32: 5 "
				"ERROR_ACCESS_DENIED)\nCertUtil: Access is denied.\n");
		c->exit_code = 5;
		return;
	}
	for (one = strtok_r(serials, ",", &save); one; one = strtok_r(NULL, ",", &save))
		rc |= admin_revoke(s, one, reason, who->name, &c->out);
	c->exit_code = rc;
	return;
refuse:
	sb_add(&c->err, "This endpoint runs only: certutil [-config CA] -revoke SerialNumber "
			"[Reason]\n");
	c->exit_code = 1;
}

static char *command_line(xmlNodePtr cl)
{
	struct sb line = { 0 };
	xmlNodePtr c;
	char *t = soap_text(soap_child(cl, NS_RSP, "Command"));

	if (!t)
		return NULL;
	sb_add(&line, t);
	free(t);
	for (c = cl->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Arguments"))
			continue;
		t = soap_text(c);
		sb_add(&line, " ");
		sb_add(&line, t ? t : "");
		free(t);
	}
	if (line.oom) {
		sb_free(&line);
		return NULL;
	}
	return line.p;
}

static void stream(struct sb *b, const char *name, const char *cmd, const struct sb *data)
{
	sb_printf(b, "<rsp:Stream Name=\"%s\" CommandId=\"%s\">", name, cmd);
	if (data->len)
		sb_b64(b, (const unsigned char *)data->p, data->len);
	sb_printf(b, "</rsp:Stream><rsp:Stream Name=\"%s\" CommandId=\"%s\" End=\"true\">"
		  "</rsp:Stream>", name, cmd);
}

void winrm_handle(struct adcs *s, xmlDocPtr doc, const struct seed_account *who,
		  struct http_resp *resp)
{
	xmlNodePtr hdr = soap_header(doc), body = soap_body_first(doc);
	char *action = soap_text(soap_child(hdr, NS_WSA04, "Action"));
	char *msgid = soap_text(soap_child(hdr, NS_WSA04, "MessageID"));
	char *uri = soap_text(soap_child(hdr, NS_WSMAN, "ResourceURI")), *line;
	struct sb b = { 0 };
	struct shell *sh;
	int i;

	if (!s->shells)
		s->shells = calloc(1, sizeof(*s->shells));
	if (!s->shells || !action) {
		wsman_fault(resp, msgid, "InvalidParameter", 2150858882UL, "no action");
		goto out;
	}
	if (!uri || strcmp(uri, URI_CMD)) {
		wsman_fault(resp, msgid, "DestinationUnreachable", 2150858770UL,
			    "The WS-Management service cannot process the request: only the cmd "
			    "shell resource is served.");
		goto out;
	}
	if (!strcmp(action, NS_TRANSFER "/Create")) {
		for (i = 0; i < MAX_SHELLS && s->shells->used[i]; i++)
			;
		if (i == MAX_SHELLS) {
			wsman_fault(resp, msgid, "QuotaLimit", 2150859173UL, "too many shells");
			goto out;
		}
		sh = &s->shells->s[i];
		memset(sh, 0, sizeof(*sh));
		s->shells->used[i] = 1;
		soap_uuid(sh->id, sizeof(sh->id));
		memmove(sh->id, sh->id + 9, strlen(sh->id + 9) + 1);
		snprintf(sh->owner, sizeof(sh->owner), "%s", who->name);
		env_open(&b, NS_TRANSFER "/CreateResponse", msgid);
		sb_printf(&b, "<x:ResourceCreated><a:Address>%s/wsman</a:Address>"
			  "<a:ReferenceParameters><w:ResourceURI>" URI_CMD "</w:ResourceURI>"
			  "<w:SelectorSet><w:Selector Name=\"ShellId\">%s</w:Selector>"
			  "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
			  "<rsp:Shell><rsp:ShellId>%s</rsp:ShellId></rsp:Shell>",
			  s->https_base, sh->id, sh->id);
		goto reply;
	}
	sh = find_shell(s, doc, who->name);
	if (!sh) {
		wsman_fault(resp, msgid, "InvalidSelectors", 2150858843UL,
			    "The request for the Windows Remote Shell with ShellId failed because "
			    "the shell was not found on the server.");
		goto out;
	}
	if (!strcmp(action, NS_RSP "/Command")) {
		line = body && !strcmp((const char *)body->name, "CommandLine") ?
		       command_line(body) : NULL;
		if (!line) {
			wsman_fault(resp, msgid, "InvalidParameter", 2150858882UL, "no CommandLine");
			goto out;
		}
		drop_command(&sh->cmd);
		soap_uuid(sh->cmd.id, sizeof(sh->cmd.id));
		memmove(sh->cmd.id, sh->cmd.id + 9, strlen(sh->cmd.id + 9) + 1);
		run(s, who, line, &sh->cmd);
		free(line);
		sh->has_cmd = 1;
		env_open(&b, NS_RSP "/CommandResponse", msgid);
		sb_printf(&b, "<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId>"
			  "</rsp:CommandResponse>", sh->cmd.id);
	} else if (!strcmp(action, NS_RSP "/Receive")) {
		if (!sh->has_cmd) {
			wsman_fault(resp, msgid, "InvalidParameter", 2150858882UL, "no command");
			goto out;
		}
		env_open(&b, NS_RSP "/ReceiveResponse", msgid);
		sb_add(&b, "<rsp:ReceiveResponse>");
		stream(&b, "stdout", sh->cmd.id, &sh->cmd.out);
		stream(&b, "stderr", sh->cmd.id, &sh->cmd.err);
		sb_printf(&b, "<rsp:CommandState CommandId=\"%s\" State=\"" NS_RSP
			  "/CommandState/Done\"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>"
			  "</rsp:ReceiveResponse>", sh->cmd.id, sh->cmd.exit_code);
	} else if (!strcmp(action, NS_RSP "/Signal")) {
		env_open(&b, NS_RSP "/SignalResponse", msgid);
		sb_add(&b, "<rsp:SignalResponse/>");
		drop_command(&sh->cmd);
		sh->has_cmd = 0;
	} else if (!strcmp(action, NS_TRANSFER "/Delete")) {
		drop_command(&sh->cmd);
		s->shells->used[sh - s->shells->s] = 0;
		env_open(&b, NS_TRANSFER "/DeleteResponse", msgid);
	} else {
		wsman_fault(resp, msgid, "ActionNotSupported", 2150858771UL,
			    "The action is not supported by the service.");
		goto out;
	}
reply:
	sb_add(&b, "</s:Body></s:Envelope>");
	adcs_reply_xml(resp, 200, &b);
out:
	free(action);
	free(msgid);
	free(uri);
}

void winrm_free(struct adcs *s)
{
	int i;

	if (!s->shells)
		return;
	for (i = 0; i < MAX_SHELLS; i++)
		drop_command(&s->shells->s[i].cmd);
	free(s->shells);
	s->shells = NULL;
}
