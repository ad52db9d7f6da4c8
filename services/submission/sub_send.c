/* sub_send: auth.v1.sign and queue.v1.add (see header). */
#include "sub_send.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

#include "auth.pb-c.h"
#include "queue.pb-c.h"

int sub_sign(struct mf_bus *bus, const char *cid, const char *domain, const char *blob_key,
	     char **headers_r, enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__SignRequest in = MAILFLEET__V1__SIGN_REQUEST__INIT;
	Mailfleet__V1__SignReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	*headers_r = NULL;
	in.domain = (char *)domain;
	in.blob_key = (char *)blob_key;
	len = mailfleet__v1__sign_request__get_packed_size(&in);
	buf = mf_xmalloc(len + 1);
	mailfleet__v1__sign_request__pack(&in, buf);
	if (mf_bus_request(bus, "auth.v1.sign", cid, buf, len, SUB_SIGN_TIMEOUT_MS, &reply) < 0) {
		*status_r = reply.status;
		*error_r = mf_errorf("%s", reply.message);
		goto out;
	}
	out = mailfleet__v1__sign_reply__unpack(NULL, reply.body_len, reply.body);
	if (out == NULL || strnlen(out->headers, SUB_SIGNATURES_MAX + 1) > SUB_SIGNATURES_MAX) {
		*status_r = MF_BUS_TEMPORARY;
		*error_r = "malformed or oversized sign reply from dnsauth";
	} else {
		size_t hl = strlen(out->headers);
		/* The fields go in front of the message as they are: they must
		 * be whole header lines. */
		if (hl > 0 && (hl < 2 || memcmp(out->headers + hl - 2, "\r\n", 2) != 0)) {
			*status_r = MF_BUS_TEMPORARY;
			*error_r = "sign reply from dnsauth does not end in CRLF";
		} else {
			*headers_r = mf_xstrdup(out->headers);
			ret = 0;
		}
	}
	if (out != NULL)
		mailfleet__v1__sign_reply__free_unpacked(out, NULL);
out:
	mf_bus_reply_free(&reply);
	free(buf);
	return ret;
}

int sub_queue_add(struct mf_bus *bus, const struct sub_queue_msg *m,
		  enum mf_bus_status *status_r, const char **error_r)
{
	Mailfleet__V1__QueueAddRequest in = MAILFLEET__V1__QUEUE_ADD_REQUEST__INIT;
	Mailfleet__V1__QueueRecipient *rcpts, **rcptp;
	Mailfleet__V1__QueueAddRequest__ExtraEntry *extras = NULL, **extrap = NULL;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int ret = -1;

	rcpts = mf_xcalloc(m->rcpts_count, sizeof(*rcpts));
	rcptp = mf_xcalloc(m->rcpts_count, sizeof(*rcptp));
	for (size_t i = 0; i < m->rcpts_count; i++) {
		mailfleet__v1__queue_recipient__init(&rcpts[i]);
		rcpts[i].address = m->rcpts[i].address;
		rcpts[i].dsn_notify = m->rcpts[i].notify;
		rcpts[i].dsn_orcpt = m->rcpts[i].orcpt != NULL ? m->rcpts[i].orcpt : "";
		rcptp[i] = &rcpts[i];
	}
	if (m->extras_count > 0) {
		extras = mf_xcalloc(m->extras_count, sizeof(*extras));
		extrap = mf_xcalloc(m->extras_count, sizeof(*extrap));
		for (size_t i = 0; i < m->extras_count; i++) {
			mailfleet__v1__queue_add_request__extra_entry__init(&extras[i]);
			extras[i].key = m->extras[i].key;
			extras[i].value = m->extras[i].value;
			extrap[i] = &extras[i];
		}
	}
	in.account = (char *)m->account;
	in.mail_from = (char *)m->mail_from;
	in.recipients = rcptp;
	in.n_recipients = m->rcpts_count;
	in.blob_key = (char *)m->blob_key;
	in.size = m->size;
	in.message_id = (char *)(m->message_id != NULL ? m->message_id : "");
	in.release_unix_ms = m->release_unix_ms;
	in.requiretls = m->requiretls;
	in.smtputf8 = m->smtputf8;
	in.has_8bit = m->has_8bit;
	in.dsn_envid = (char *)(m->envid != NULL ? m->envid : "");
	in.dsn_ret = (char *)(m->ret == SMTP_RET_FULL ? "FULL" : m->ret == SMTP_RET_HDRS ? "HDRS" : "");
	in.extra = extrap;
	in.n_extra = m->extras_count;
	in.cid = (char *)m->cid;
	len = mailfleet__v1__queue_add_request__get_packed_size(&in);
	buf = mf_xmalloc(len + 1);
	mailfleet__v1__queue_add_request__pack(&in, buf);
	if (mf_bus_request(bus, "queue.v1.add", m->cid, buf, len, SUB_QUEUE_TIMEOUT_MS,
			   &reply) < 0) {
		*status_r = reply.status;
		*error_r = mf_errorf("%s", reply.message);
	} else {
		*status_r = MF_BUS_OK;
		ret = 0;
	}
	mf_bus_reply_free(&reply);
	free(buf);
	free(rcpts);
	free(rcptp);
	free(extras);
	free(extrap);
	return ret;
}
