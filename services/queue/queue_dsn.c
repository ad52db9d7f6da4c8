#include "queue_dsn.h"
#include "error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *action_name(enum queue_dsn_action a)
{
	switch (a) {
	case QUEUE_DSN_FAILED: return "failed";
	case QUEUE_DSN_DELAYED: return "delayed";
	case QUEUE_DSN_RELAYED: return "relayed";
	case QUEUE_DSN_DELIVERED: return "delivered";
	}
	return "failed";
}

/* RFC 3463 2: class.subject.detail, class 2, 4 or 5, subject 1-3 digits,
 * detail 1-3 digits. */
static bool enhanced_valid(const char *e)
{
	size_t n;

	if (e == NULL || (e[0] != '2' && e[0] != '4' && e[0] != '5') || e[1] != '.')
		return false;
	e += 2;
	for (int part = 0; part < 2; part++) {
		for (n = 0; isdigit((unsigned char)e[n]); n++)
			;
		if (n < 1 || n > 3)
			return false;
		e += n;
		if (part == 0) {
			if (*e != '.')
				return false;
			e++;
		}
	}
	return *e == '\0';
}

const char *queue_dsn_status(unsigned code, const char *enhanced, bool failed)
{
	if (enhanced_valid(enhanced))
		return enhanced;
	if (code >= 500 && code <= 599)
		return "5.0.0";
	if (code >= 400 && code <= 499)
		return "4.0.0";
	if (code >= 200 && code <= 299)
		return "2.0.0";
	return failed ? "5.0.0" : "4.0.0";
}

static void rfc5322_date(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Header values come from the network (addresses, replies): drop control
 * characters so they cannot end a header line early. */
static int append_clean(struct mf_buf *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (mf_buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

/* Appends one line of the reply as the server sent it: "550-5.1.1 text"
 * for all but the last, "550 5.1.1 text" for the last (RFC 5321 4.2.1). */
static int append_reply_line(struct mf_buf *out, unsigned code, const char *enh,
			     const char *line, size_t len, bool last)
{
	char *l = mf_xstrndup(line, len);
	int r = 0;

	if (code != 0)
		r = mf_buf_appendf(out, "%03u%c", code, last ? ' ' : '-');
	if (r == 0 && enh != NULL && *enh != '\0')
		r = mf_buf_appendf(out, "%s ", enh);
	if (r == 0)
		r = append_clean(out, l);
	free(l);
	return r;
}

/* Calls the reply's lines one by one, with "sep" between them. */
static int append_reply(struct mf_buf *out, const struct queue_dsn_rcpt *r, const char *sep)
{
	const char *text = r->text != NULL ? r->text : "";
	const char *enh = enhanced_valid(r->enhanced) ? r->enhanced : NULL;

	for (;;) {
		const char *nl = strchr(text, '\n');
		size_t len = nl != NULL ? (size_t)(nl - text) : strlen(text);
		if (append_reply_line(out, r->code, enh, text, len, nl == NULL) < 0)
			return -1;
		if (nl == NULL)
			return 0;
		if (mf_buf_append_str(out, sep) < 0)
			return -1;
		text = nl + 1;
	}
}

/* The header of the original: up to and including the empty line. */
static size_t header_len(const char *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n')
			return i + 2;
		if (i + 3 < len && memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	}
	return len;
}

/* Appends data with bare LF turned into CRLF. */
static int append_crlf(struct mf_buf *out, const char *data, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n' || (i > 0 && data[i - 1] == '\r'))
			continue;
		if (mf_buf_append(out, data + start, i - start) < 0 ||
		    mf_buf_append(out, "\r\n", 2) < 0)
			return -1;
		start = i + 1;
	}
	if (mf_buf_append(out, data + start, len - start) < 0)
		return -1;
	if (len > 0 && data[len - 1] != '\n')
		return mf_buf_append(out, "\r\n", 2);
	return 0;
}

int queue_dsn_compose(const struct queue_dsn *dsn, struct mf_buf *out, const char **error_r)
{
	char date[64], when[64];
	bool any_failed = false, any_delayed = false;
	const char *subject;
	int r = -1;

	if (dsn->nrcpts == 0 || dsn->nrcpts > QUEUE_DSN_RCPTS_MAX) {
		*error_r = mf_errorf("dsn: %zu recipients (want 1..%d)", dsn->nrcpts,
				     QUEUE_DSN_RCPTS_MAX);
		return -1;
	}
	for (size_t i = 0; i < dsn->nrcpts; i++) {
		any_failed |= dsn->rcpts[i].action == QUEUE_DSN_FAILED;
		any_delayed |= dsn->rcpts[i].action == QUEUE_DSN_DELAYED;
	}
	subject = any_failed ? "mail delivery failed" :
		  any_delayed ? "mail delivery delayed" : "mail delivered";
	rfc5322_date(dsn->now_ms, date, sizeof(date));

	/* RFC 3464 2: From the reporting MTA; the DSN itself goes out with a
	 * null return path so that it can never cause another DSN. */
	if (mf_buf_appendf(out, "From: Mail Delivery Subsystem <postmaster@%s>\r\n", dsn->hostname) < 0 ||
	    mf_buf_append_str(out, "To: <") < 0 || append_clean(out, dsn->to) < 0 ||
	    mf_buf_appendf(out, ">\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n", subject,
			   date, dsn->new_message_id) < 0)
		goto toobig;
	if (dsn->message_id != NULL && *dsn->message_id != '\0') {
		if (mf_buf_append_str(out, "References: ") < 0 ||
		    append_clean(out, dsn->message_id) < 0 ||
		    mf_buf_append_str(out, "\r\nIn-Reply-To: ") < 0 ||
		    append_clean(out, dsn->message_id) < 0 || mf_buf_append_str(out, "\r\n") < 0)
			goto toobig;
	}
	if (mf_buf_appendf(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
			   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			   " boundary=\"%s\"\r\n\r\n"
			   "This is a MIME-formatted delivery status notification.\r\n\r\n",
			   dsn->boundary) < 0)
		goto toobig;

	/* Part 1: for people. */
	if (mf_buf_appendf(out, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: 8bit\r\n\r\n", dsn->boundary) < 0)
		goto toobig;
	if (any_failed && mf_buf_append_str(out, "Your message could not be delivered to "
					   "the following recipients:\r\n\r\n") < 0)
		goto toobig;
	else if (!any_failed && any_delayed &&
		 mf_buf_append_str(out, "Your message has not been delivered yet. Delivery "
				   "will be tried again; you do not need to send it again.\r\n\r\n") < 0)
		goto toobig;
	else if (!any_failed && !any_delayed &&
		 mf_buf_append_str(out, "Your message was delivered:\r\n\r\n") < 0)
		goto toobig;
	for (size_t i = 0; i < dsn->nrcpts; i++) {
		const struct queue_dsn_rcpt *rc = &dsn->rcpts[i];
		if (mf_buf_append_str(out, "<") < 0 || append_clean(out, rc->address) < 0 ||
		    mf_buf_appendf(out, ">: %s", action_name(rc->action)) < 0)
			goto toobig;
		if (rc->remote_mta != NULL && *rc->remote_mta != '\0' &&
		    (mf_buf_append_str(out, ", the server ") < 0 ||
		     append_clean(out, rc->remote_mta) < 0 || mf_buf_append_str(out, " said") < 0))
			goto toobig;
		if (mf_buf_append_str(out, ":\r\n\r\n    ") < 0 || append_reply(out, rc, "\r\n    ") < 0 ||
		    mf_buf_append_str(out, "\r\n\r\n") < 0)
			goto toobig;
	}

	/* Part 2: message/delivery-status (RFC 3464 2.2, 2.3). */
	if (mf_buf_appendf(out, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n"
			   "Reporting-MTA: dns; %s\r\n", dsn->boundary, dsn->hostname) < 0)
		goto toobig;
	if (dsn->envid != NULL && *dsn->envid != '\0' &&
	    (mf_buf_append_str(out, "Original-Envelope-Id: ") < 0 ||
	     append_clean(out, dsn->envid) < 0 || mf_buf_append_str(out, "\r\n") < 0))
		goto toobig;
	if (dsn->arrival_ms > 0) {
		rfc5322_date(dsn->arrival_ms, when, sizeof(when));
		if (mf_buf_appendf(out, "Arrival-Date: %s\r\n", when) < 0)
			goto toobig;
	}
	for (size_t i = 0; i < dsn->nrcpts; i++) {
		const struct queue_dsn_rcpt *rc = &dsn->rcpts[i];
		bool failed = rc->action == QUEUE_DSN_FAILED;
		if (mf_buf_append_str(out, "\r\n") < 0)
			goto toobig;
		if (rc->orcpt != NULL && *rc->orcpt != '\0' &&
		    (mf_buf_append_str(out, "Original-Recipient: ") < 0 ||
		     append_clean(out, rc->orcpt) < 0 || mf_buf_append_str(out, "\r\n") < 0))
			goto toobig;
		if (mf_buf_append_str(out, "Final-Recipient: rfc822; ") < 0 ||
		    append_clean(out, rc->address) < 0 ||
		    mf_buf_appendf(out, "\r\nAction: %s\r\nStatus: %s\r\n", action_name(rc->action),
				   queue_dsn_status(rc->code, rc->enhanced, failed)) < 0)
			goto toobig;
		if (rc->remote_mta != NULL && *rc->remote_mta != '\0' &&
		    (mf_buf_append_str(out, "Remote-MTA: dns; ") < 0 ||
		     append_clean(out, rc->remote_mta) < 0 || mf_buf_append_str(out, "\r\n") < 0))
			goto toobig;
		/* RFC 3464 2.3.6: the reply as received; continuation lines are
		 * folded, so each keeps its own code as the server sent it. */
		if (rc->code != 0) {
			if (mf_buf_append_str(out, "Diagnostic-Code: smtp; ") < 0 ||
			    append_reply(out, rc, "\r\n ") < 0 || mf_buf_append_str(out, "\r\n") < 0)
				goto toobig;
		}
		if (rc->last_attempt_ms > 0) {
			rfc5322_date(rc->last_attempt_ms, when, sizeof(when));
			if (mf_buf_appendf(out, "Last-Attempt-Date: %s\r\n", when) < 0)
				goto toobig;
		}
		if (rc->action == QUEUE_DSN_DELAYED && rc->will_retry_until_ms > 0) {
			rfc5322_date(rc->will_retry_until_ms, when, sizeof(when));
			if (mf_buf_appendf(out, "Will-Retry-Until: %s\r\n", when) < 0)
				goto toobig;
		}
	}

	/* Part 3: the original, whole or its header (RFC 3462 text/rfc822-headers). */
	if (dsn->original != NULL && dsn->original_len > 0) {
		bool full = dsn->ret_full && dsn->original_len <= QUEUE_DSN_ORIGINAL_MAX;
		size_t len = full ? dsn->original_len : header_len(dsn->original, dsn->original_len);
		if (len > QUEUE_DSN_ORIGINAL_MAX)
			len = QUEUE_DSN_ORIGINAL_MAX;
		if (mf_buf_appendf(out, "\r\n--%s\r\nContent-Type: %s\r\n\r\n", dsn->boundary,
				   full ? "message/rfc822" : "text/rfc822-headers") < 0 ||
		    append_crlf(out, dsn->original, len) < 0)
			goto toobig;
	}
	if (mf_buf_appendf(out, "\r\n--%s--\r\n", dsn->boundary) < 0)
		goto toobig;
	r = 0;
	goto out;
toobig:
	*error_r = "dsn: message too large";
out:
	return r;
}
