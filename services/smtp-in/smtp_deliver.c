/* smtp_deliver: store.v1.deliver requests and the combined reply. */
#include "smtp_deliver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "store.pb-c.h"

char *smtp_deliver_header_prefix(const struct smtp_mail *mail, const char *address,
				 const char *auth_results)
{
	char *from = mail->null_sender ? mf_xstrdup("") : mf_address_format(&mail->from);
	char *prefix = mf_xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n%s", from, address,
				    auth_results != NULL ? auth_results : "");

	free(from);
	return prefix;
}

struct job {
	struct mf_bus *bus;
	const struct smtp_deliver_message *msg;
	const struct smtp_target *target;
	struct smtp_deliver_outcome *out;
	pthread_t thread;
	bool started;
};

static void set_outcome(struct smtp_deliver_outcome *o, bool temporary, unsigned code,
			const char *enhanced, const char *text)
{
	o->temporary = temporary;
	o->code = code;
	snprintf(o->enhanced, sizeof(o->enhanced), "%s", enhanced);
	snprintf(o->text, sizeof(o->text), "%s", text);
}

/* Sanity of a code coming from another service: never trust it to be a
 * valid SMTP reply. */
static bool code_ok(unsigned code, const char *enhanced)
{
	return code >= 200 && code <= 599 && enhanced != NULL && strlen(enhanced) >= 5 &&
	       strlen(enhanced) < 16 && enhanced[0] == (char)('0' + code / 100) &&
	       enhanced[1] == '.' && strspn(enhanced, "0123456789.") == strlen(enhanced);
}

static void deliver_one(struct job *j)
{
	const struct smtp_deliver_message *m = j->msg;
	const struct smtp_mail *mail = m->mail;
	Mailfleet__V1__DeliverRequest req = MAILFLEET__V1__DELIVER_REQUEST__INIT;
	Mailfleet__V1__DeliverRecipient rcpt = MAILFLEET__V1__DELIVER_RECIPIENT__INIT;
	Mailfleet__V1__DeliverRecipient *rcpts[1] = { &rcpt };
	Mailfleet__V1__DeliverReply *reply = NULL;
	struct mf_bus_reply br;
	char *from = mail->null_sender ? mf_xstrdup("") : mf_address_format(&mail->from);
	char *prefix = smtp_deliver_header_prefix(mail, j->target->address,
						  m->authentication_results);
	char *subject = mf_xasprintf("store.v1.deliver.%s", j->target->account);
	uint8_t *body;
	size_t len;

	req.account = j->target->account;
	req.blob_key = (char *)m->blob_key;
	req.message_id = (char *)m->message_id;
	req.mail_from = from;
	req.received_unix_ms = m->received_unix_ms;
	req.n_recipients = 1;
	req.recipients = rcpts;
	req.dsn_envid = mail->envid != NULL ? mail->envid : "";
	req.dsn_ret = mail->ret == SMTP_RET_FULL ? "FULL" : mail->ret == SMTP_RET_HDRS ? "HDRS" : "";
	req.requiretls = mail->requiretls;
	req.smtputf8 = mail->smtputf8;
	rcpt.address = j->target->address;
	rcpt.special_use = (char *)(m->special_use != NULL ? m->special_use : "");
	rcpt.header_prefix.data = (uint8_t *)prefix;
	rcpt.header_prefix.len = strlen(prefix);
	rcpt.dsn_notify = j->target->notify;
	rcpt.dsn_orcpt = j->target->orcpt != NULL ? j->target->orcpt : "";

	len = mailfleet__v1__deliver_request__get_packed_size(&req);
	body = mf_xmalloc(len > 0 ? len : 1);
	mailfleet__v1__deliver_request__pack(&req, body);
	if (mf_bus_request(j->bus, subject, m->cid, body, len, m->timeout_ms, &br) < 0) {
		bool temp = br.status != MF_BUS_PERMANENT;
		mf_log_warn("smtp-in", m->cid, "store delivery failed",
			    "msgid=%s account=%s status=%s error=%s", m->message_id,
			    j->target->account, mf_bus_status_name(br.status), br.message);
		set_outcome(j->out, temp, temp ? 451 : 554, temp ? "4.3.0" : "5.3.0",
			    temp ? "temporary failure storing the message, try again later" :
				   "the mailbox cannot take this message");
		goto out;
	}
	reply = mailfleet__v1__deliver_reply__unpack(NULL, br.body_len, br.body);
	if (reply == NULL || reply->n_results != 1 || reply->results[0]->status == NULL) {
		mf_log_error("smtp-in", m->cid, "malformed store reply", "msgid=%s account=%s",
			     m->message_id, j->target->account);
		set_outcome(j->out, true, 451, "4.3.0",
			    "temporary failure storing the message, try again later");
		goto out;
	}
	{
		const Mailfleet__V1__DeliverResult *r = reply->results[0];
		int code = r->status->code;
		if (code == MAILFLEET__V1__STATUS__CODE__OK) {
			set_outcome(j->out, false, 250, "2.0.0", "delivered");
		} else {
			bool temp = code != MAILFLEET__V1__STATUS__CODE__PERMANENT;
			unsigned c = r->smtp_code;
			const char *e = r->enhanced_code;
			if (!code_ok(c, e) || (temp != (c < 500)) || c < 400) {
				c = temp ? 451 : 550;
				e = temp ? "4.3.0" : "5.3.0";
			}
			set_outcome(j->out, temp, c, e,
				    r->status->message != NULL && r->status->message[0] != '\0' ?
				    r->status->message : "the mailbox cannot take this message");
		}
		mf_log(code == 0 ? MF_LOG_INFO : MF_LOG_WARN, "smtp-in", m->cid,
		       code == 0 ? "delivered" : "delivery refused by the store",
		       "msgid=%s account=%s address=%s code=%u mailbox=%s uid=%u",
		       m->message_id, j->target->account, j->target->address, j->out->code,
		       r->mailbox != NULL ? r->mailbox : "", r->uid);
	}
out:
	if (reply != NULL)
		mailfleet__v1__deliver_reply__free_unpacked(reply, NULL);
	mf_bus_reply_free(&br);
	free(body);
	free(subject);
	free(prefix);
	free(from);
}

static void *job_thread(void *arg)
{
	deliver_one(arg);
	return NULL;
}

char *smtp_deliver(struct mf_bus *bus, const struct smtp_deliver_message *msg,
		   const struct smtp_targets *targets, struct smtp_deliver_outcome **outcomes_r)
{
	size_t n = targets->count;
	struct smtp_deliver_outcome *out = mf_xcalloc(n > 0 ? n : 1, sizeof(*out));
	struct job *jobs = mf_xcalloc(n > 0 ? n : 1, sizeof(*jobs));
	char *reply;

	for (size_t base = 0; base < n; base += SMTP_DELIVER_PARALLEL) {
		size_t end = base + SMTP_DELIVER_PARALLEL < n ? base + SMTP_DELIVER_PARALLEL : n;
		for (size_t i = base; i < end; i++) {
			jobs[i] = (struct job){ .bus = bus, .msg = msg, .target = &targets->items[i],
						.out = &out[i] };
			/* The first job of a batch runs on this thread. */
			if (i > base && pthread_create(&jobs[i].thread, NULL, job_thread, &jobs[i]) == 0)
				jobs[i].started = true;
		}
		for (size_t i = base; i < end; i++) {
			if (!jobs[i].started)
				deliver_one(&jobs[i]);
		}
		for (size_t i = base; i < end; i++) {
			if (jobs[i].started)
				pthread_join(jobs[i].thread, NULL);
		}
	}
	reply = smtp_deliver_combine(out, n);
	free(jobs);
	*outcomes_r = out;
	return reply;
}

char *smtp_deliver_combine(const struct smtp_deliver_outcome *o, size_t n)
{
	const struct smtp_deliver_outcome *temp = NULL, *perm = NULL;
	size_t ok = 0;

	for (size_t i = 0; i < n; i++) {
		if (!o[i].temporary && o[i].code < 300)
			ok++;
		else if (o[i].temporary && temp == NULL)
			temp = &o[i];
		else if (!o[i].temporary && perm == NULL)
			perm = &o[i];
	}
	if (temp != NULL)
		return mf_xasprintf("%u %s %s%s", temp->code, temp->enhanced, temp->text,
				    ok > 0 ? " (some recipients have it already)" : "");
	if (perm != NULL)
		return mf_xasprintf("%u %s %s%s", perm->code, perm->enhanced, perm->text,
				    ok > 0 ? " (for some of the recipients)" : "");
	return mf_xstrdup("250 2.0.0 message delivered");
}
