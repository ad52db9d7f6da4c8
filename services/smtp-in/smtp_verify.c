/* smtp_verify: auth.v1.verify and the policy applied to its answer. */
#include "smtp_verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#define PKG "smtp-in"

static const char reply_tempfail[] =
	"451 4.4.3 cannot check the sender's authentication now, try again later";
static const char reply_dmarc_reject[] =
	"550 5.7.26 message fails DMARC and the author domain's policy is reject";
static const char reply_several_authors[] =
	"550 5.7.1 several author domains in From: DMARC cannot be checked, refused";

bool smtp_verify_ruleset_allows(const struct smtp_targets *targets,
				const Mailfleet__V1__VerifyReply *reply)
{
	(void)targets;
	(void)reply;
	return false;
}

bool smtp_verify_field_ok(const char *s, size_t len)
{
	static const char name[] = "Authentication-Results:";

	if (len > SMTP_VERIFY_AR_MAX || len < sizeof(name) - 1 + 2 ||
	    strncasecmp(s, name, sizeof(name) - 1) != 0 || s[len - 2] != '\r' || s[len - 1] != '\n')
		return false;
	/* at least the authserv-id */
	size_t k = sizeof(name) - 1;
	while (k < len && strchr(" \t\r\n", s[k]) != NULL && s[k] != '\0')
		k++;
	if (k == len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			return false;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return false;
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				return false;
			/* A line break inside the field must be folding (RFC
			 * 5322 2.2.3), or the "field" would smuggle in others. */
			if (i + 2 < len && s[i + 2] != ' ' && s[i + 2] != '\t')
				return false;
		}
	}
	return true;
}

static void set(struct smtp_verify_result *r, enum smtp_verify_verdict v, const char *reply,
		char *why)
{
	r->verdict = v;
	r->reply = reply;
	free(r->why);
	r->why = why;
}

static const char *dmarc_result_name(Mailfleet__V1__DmarcResult r)
{
	switch (r) {
	case MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_NONE: return "none";
	case MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS: return "pass";
	case MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_FAIL: return "fail";
	case MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_TEMPERROR: return "temperror";
	case MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PERMERROR: return "permerror";
	default: return "?";
	}
}

void smtp_verify_decide(const struct smtp_verify_input *in, enum mf_bus_status status,
			const char *message, const uint8_t *body, size_t len,
			struct smtp_verify_result *r)
{
	Mailfleet__V1__VerifyReply *vr = NULL;
	const Mailfleet__V1__DmarcCheck *dm;
	const char *ar;
	const char *domain;

	memset(r, 0, sizeof(*r));
	if (status != MF_BUS_OK) {
		set(r, SMTP_VERIFY_TEMPFAIL, reply_tempfail,
		    mf_xasprintf("dnsauth: %s: %s", mf_bus_status_name(status),
				 message != NULL ? message : ""));
		goto out;
	}
	if (len > SMTP_VERIFY_REPLY_MAX ||
	    (vr = mailfleet__v1__verify_reply__unpack(NULL, len, body)) == NULL) {
		set(r, SMTP_VERIFY_TEMPFAIL, reply_tempfail,
		    mf_xstrdup("dnsauth: malformed or oversized VerifyReply"));
		goto out;
	}
	dm = vr->dmarc;
	ar = vr->authentication_results;
	if (dm == NULL || ar == NULL || !smtp_verify_field_ok(ar, strlen(ar))) {
		set(r, SMTP_VERIFY_TEMPFAIL, reply_tempfail,
		    mf_xstrdup(dm == NULL ? "dnsauth: VerifyReply without DMARC result" :
			       "dnsauth: Authentication-Results is not one header field"));
		goto out;
	}
	domain = dm->domain != NULL && dm->domain[0] != '\0' ? dm->domain : "-";
	if (dm->result == MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PERMERROR) {
		set(r, SMTP_VERIFY_REJECT, reply_several_authors,
		    mf_xasprintf("dmarc=permerror reason=\"%s\"",
				 dm->reason != NULL ? dm->reason : ""));
		goto out;
	}
	if (dm->disposition == MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_REJECT) {
		if (!smtp_verify_ruleset_allows(in->targets, vr)) {
			set(r, SMTP_VERIFY_REJECT, reply_dmarc_reject,
			    mf_xasprintf("dmarc=%s policy=reject from=%s",
					 dmarc_result_name(dm->result), domain));
			goto out;
		}
		/* A ruleset accepts it: delivered, but as junk, since the
		 * author domain asked for rejection. */
		set(r, SMTP_VERIFY_JUNK, NULL,
		    mf_xasprintf("dmarc=%s policy=reject from=%s allowed by a ruleset",
				 dmarc_result_name(dm->result), domain));
	} else if (dm->disposition == MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_QUARANTINE) {
		set(r, SMTP_VERIFY_JUNK, NULL,
		    mf_xasprintf("dmarc=%s policy=quarantine from=%s",
				 dmarc_result_name(dm->result), domain));
	} else {
		set(r, SMTP_VERIFY_ACCEPT, NULL,
		    mf_xasprintf("dmarc=%s from=%s", dmarc_result_name(dm->result), domain));
	}
	free(r->authentication_results);
	r->authentication_results = mf_xstrdup(ar);
out:
	if (vr != NULL)
		mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
}

void smtp_verify_message(const struct smtp_verify_input *in, struct smtp_verify_result *r)
{
	Mailfleet__V1__VerifyRequest req = MAILFLEET__V1__VERIFY_REQUEST__INIT;
	struct mf_bus_reply br = { 0 };
	const struct smtp_targets *t = in->targets;
	char *from = NULL, **rcpts = NULL;
	uint8_t *body = NULL;
	size_t len;

	memset(r, 0, sizeof(*r));
	if (in->bus == NULL) {
		set(r, SMTP_VERIFY_NOT_CONFIGURED, NULL,
		    mf_xstrdup("verification switched off (smtp-in verify no)"));
		return;
	}
	from = in->mail->null_sender ? mf_xstrdup("") : mf_address_format(&in->mail->from);
	req.client_ip = (char *)(in->remote_ip != NULL ? in->remote_ip : "");
	req.helo = (char *)(in->helo != NULL ? in->helo : "");
	req.mail_from = from;
	req.blob_key = (char *)in->blob_key;
	if (t != NULL && t->count > 0) {
		rcpts = mf_xcalloc(t->count, sizeof(*rcpts));
		for (size_t i = 0; i < t->count; i++)
			rcpts[i] = t->items[i].rcpt != NULL ? t->items[i].rcpt : t->items[i].address;
		req.recipients = rcpts;
		req.n_recipients = t->count;
	}
	len = mailfleet__v1__verify_request__get_packed_size(&req);
	body = mf_xmalloc(len > 0 ? len : 1);
	mailfleet__v1__verify_request__pack(&req, body);
	mf_bus_request(in->bus, SMTP_VERIFY_SUBJECT, in->cid, body, len,
		       in->timeout_ms > 0 ? in->timeout_ms : SMTP_VERIFY_TIMEOUT_MS, &br);
	smtp_verify_decide(in, br.status, br.message, br.body, br.body_len, r);
	if (r->verdict == SMTP_VERIFY_TEMPFAIL)
		mf_log_warn(PKG, in->cid, "sender verification failed", "msgid=%s error=\"%s\"",
			    in->message_id, r->why);
	mf_bus_reply_free(&br);
	free(body);
	free(rcpts);
	free(from);
}

/* --- RFC 8601 5: obscuring fields that claim to be ours --------------------- */

/* End of the field starting at i: after the CRLF not followed by WSP. */
static size_t field_end(const char *h, size_t len, size_t i)
{
	while (i < len) {
		if (h[i] == '\r' && i + 1 < len && h[i + 1] == '\n' &&
		    !(i + 2 < len && (h[i + 2] == ' ' || h[i + 2] == '\t')))
			return i + 2;
		i++;
	}
	return len;
}

/* Whether the field h[i..end) is an Authentication-Results field whose
 * authserv-id (RFC 8601 2.2: after CFWS, a value up to ';') is id. */
static bool claims(const char *h, size_t i, size_t end, const char *id)
{
	static const char name[] = "Authentication-Results";
	size_t n = sizeof(name) - 1, k, start, idlen = strlen(id);
	int depth = 0;

	if (end - i <= n || strncasecmp(h + i, name, n) != 0)
		return false;
	k = i + n;
	while (k < end && (h[k] == ' ' || h[k] == '\t'))
		k++;
	if (k >= end || h[k] != ':')
		return false;
	/* CFWS: white space, folding and (nested) comments. */
	for (k++; k < end; k++) {
		char c = h[k];
		if (depth > 0) {
			if (c == '\\' && k + 1 < end)
				k++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
		} else if (c == '(') {
			depth++;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
	}
	start = k;
	while (k < end && h[k] != ';' && h[k] != ' ' && h[k] != '\t' && h[k] != '\r' &&
	       h[k] != '(')
		k++;
	return k - start == idlen && idlen > 0 && strncasecmp(h + start, id, idlen) == 0;
}

char *smtp_verify_obscure_header(const char *hdr, size_t len, const char *authserv_id,
				 size_t *len_r)
{
	struct mf_buf out;
	size_t i = 0, copied = 0;
	bool found = false;

	mf_buf_init(&out, 0);
	while (i < len) {
		size_t end = field_end(hdr, len, i);
		if (claims(hdr, i, end, authserv_id)) {
			mf_buf_append(&out, hdr + copied, i - copied);
			/* "X-Forged-" before the name as it was written */
			mf_buf_append_str(&out, "X-Forged-");
			copied = i;
			found = true;
		}
		i = end;
	}
	if (!found) {
		mf_buf_free(&out);
		return NULL;
	}
	mf_buf_append(&out, hdr + copied, len - copied);
	*len_r = out.len;
	return mf_buf_steal(&out);
}

int smtp_verify_obscure_blob(struct mf_blob_store *blobs, const char *key, const char *new_key,
			     const char *authserv_id, const char **error_r)
{
	struct mf_blob_writer *w = NULL;
	char *buf = mf_xmalloc(SMTP_VERIFY_HEADER_SCAN), *hdr = NULL;
	size_t n = 0, hlen, newlen;
	int fd = -1, ret = -1, r;

	if ((r = mf_blob_open(blobs, key, &fd, error_r)) <= 0) {
		if (r == 0)
			*error_r = "incoming blob vanished";
		goto out;
	}
	while (n < SMTP_VERIFY_HEADER_SCAN) {
		ssize_t got = read(fd, buf + n, SMTP_VERIFY_HEADER_SCAN - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*error_r = mf_errorf("reading %s: %s", key, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	/* The header section ends at the first empty line; without one
	 * (only a header, or a cut-off scan) everything read is header. */
	hlen = n;
	for (size_t i = 0; i + 3 < n; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			hlen = i + 2;
			break;
		}
	}
	if ((hdr = smtp_verify_obscure_header(buf, hlen, authserv_id, &newlen)) == NULL) {
		ret = 0;
		goto out;
	}
	if (mf_blob_put_begin(blobs, new_key, &w, error_r) < 0 ||
	    mf_blob_write(w, hdr, newlen, error_r) < 0 ||
	    mf_blob_write(w, buf + hlen, n - hlen, error_r) < 0)
		goto out;
	for (;;) {
		ssize_t got = read(fd, buf, SMTP_VERIFY_HEADER_SCAN);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*error_r = mf_errorf("reading %s: %s", key, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (mf_blob_write(w, buf, (size_t)got, error_r) < 0)
			goto out;
	}
	if (mf_blob_put_commit(&w, error_r) < 0)
		goto out;
	ret = 1;
out:
	mf_blob_put_abort(&w);
	if (fd >= 0)
		close(fd);
	free(hdr);
	free(buf);
	return ret;
}

void smtp_verify_result_clear(struct smtp_verify_result *r)
{
	free(r->why);
	free(r->authentication_results);
	memset(r, 0, sizeof(*r));
}
