/* auth_api: auth.v1.verify and auth.v1.sign. */
#include "auth_api.h"
#include "dkim_private.h"

#include "address.h"
#include "blob.h"
#include "buf.h"
#include "config.h"
#include "domains.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

#include "auth.pb-c.h"
#include "events.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

/* --- verification ---------------------------------------------------------- */

void auth_verify(const struct auth_api *api, const struct auth_verify_input *in,
		 struct auth_verdict *v)
{
	struct dmarc_input din;
	const char *err = NULL;

	memset(v, 0, sizeof(*v));
	if (in->client_ip != NULL && in->client_ip[0] != '\0') {
		struct auth_checks_settings cs = {
			.receiver = api->hostname, .dnsbl_zones = api->dnsbl,
			.dnsbl_count = api->dnsbl_count,
		};
		v->have_ip = auth_checks_run(api->r, &cs, in->client_ip,
					     in->helo != NULL ? in->helo : "",
					     in->mail_from != NULL ? in->mail_from : "", &v->checks,
					     &err) == 0;
	}
	dkim_verify(api->r, &api->dkim, in->msg, in->len, &v->dkim, &v->dkim_count);
	dmarc_message_info(in->msg, in->len, &v->info);

	/* RFC 9989 4.4.2: the SPF identifier is MAIL FROM's domain, or the
	 * HELO identity for the null reverse-path; spf_verify's mail_from
	 * outcome already checks postmaster@HELO then. */
	memset(&din, 0, sizeof(din));
	din.from_domain = v->info.from_domain;
	din.from_domains = v->info.from_domains;
	din.spf = v->have_ip ? v->checks->spf.mail_from.result : SPF_NONE;
	din.spf_domain = v->have_ip ? v->checks->spf.mail_from.domain : NULL;
	din.dkim = v->dkim;
	din.dkim_count = v->dkim_count;
	dmarc_evaluate(api->r, &din, &v->dmarc);
	v->authentication_results = auth_results_header(api->hostname, in, v);
}

void auth_verdict_clear(struct auth_verdict *v)
{
	auth_checks_free(&v->checks);
	dkim_results_free(&v->dkim, v->dkim_count);
	dmarc_message_info_clear(&v->info);
	dmarc_evaluation_clear(&v->dmarc);
	free(v->authentication_results);
	memset(v, 0, sizeof(*v));
}

/* --- Authentication-Results (RFC 8601) ------------------------------------- */

/* A value as an RFC 2045 token when it is one, else a quoted-string;
 * control and 8-bit bytes (from the client) become '?'. */
static void ar_value(struct mf_buf *b, const char *v)
{
	size_t n = strlen(v);
	bool token = n > 0 && n <= AUTH_AR_VALUE_MAX;

	for (size_t i = 0; token && i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c >= 0x7f || strchr("()<>,;:\\\"/[]?=", c) != NULL)
			token = false;
	}
	/* '@' is a tspecial too, but RFC 8601 2.2 allows addresses as
	 * values; domains and addresses need no quoting. */
	if (!token && n > 0 && n <= AUTH_AR_VALUE_MAX) {
		token = true;
		for (size_t i = 0; token && i < n; i++) {
			unsigned char c = (unsigned char)v[i];
			token = isalnum(c) || strchr(".-_@+", c) != NULL;
		}
	}
	if (token) {
		mf_buf_append(b, v, n);
		return;
	}
	mf_buf_append(b, "\"", 1);
	for (size_t i = 0; i < n && i < AUTH_AR_VALUE_MAX; i++) {
		char c = v[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		if (c == '"' || c == '\\')
			mf_buf_append(b, "\\", 1);
		mf_buf_append(b, &c, 1);
	}
	mf_buf_append(b, "\"", 1);
}

/* A comment: parentheses and backslashes escaped, bytes as in ar_value. */
static void ar_comment(struct mf_buf *b, const char *text)
{
	mf_buf_append(b, " (", 2);
	for (size_t i = 0; text[i] != '\0' && i < AUTH_AR_VALUE_MAX; i++) {
		char c = text[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		if (c == '(' || c == ')' || c == '\\')
			mf_buf_append(b, "\\", 1);
		mf_buf_append(b, &c, 1);
	}
	mf_buf_append(b, ")", 1);
}

static void ar_reason(struct mf_buf *b, const char *reason)
{
	if (reason == NULL || reason[0] == '\0')
		return;
	mf_buf_append_str(b, " reason=");
	/* always quoted: reasons are prose */
	mf_buf_append(b, "\"", 1);
	for (size_t i = 0; reason[i] != '\0' && i < AUTH_AR_VALUE_MAX; i++) {
		char c = reason[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		if (c == '"' || c == '\\')
			mf_buf_append(b, "\\", 1);
		mf_buf_append(b, &c, 1);
	}
	mf_buf_append(b, "\"", 1);
}

static void ar_prop(struct mf_buf *b, const char *name, const char *value)
{
	if (value == NULL || value[0] == '\0')
		return;
	mf_buf_appendf(b, " %s=", name);
	ar_value(b, value);
}

static const char *dnssec_note(bool authentic)
{
	/* Whether the DNS answers behind a result were DNSSEC-validated. */
	return authentic ? "dnssec" : "no dnssec";
}

char *auth_results_header(const char *authserv_id, const struct auth_verify_input *in,
			  const struct auth_verdict *v)
{
	struct mf_buf b;
	char ipbuf[64];

	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, "Authentication-Results: ");
	ar_value(&b, authserv_id != NULL ? authserv_id : "localhost");

	if (v->have_ip) {
		struct dns_ip ip;
		dns_ip_parse(in->client_ip, &ip);
		dns_ip_format(&ip, ipbuf, sizeof(ipbuf));
		/* RFC 8601 2.7.3 */
		const struct iprev_outcome *iprev = &v->checks->iprev;
		mf_buf_appendf(&b, ";\r\n\tiprev=%s", iprev_result_name(iprev->result));
		ar_comment(&b, dnssec_note(iprev->authentic));
		ar_reason(&b, iprev->result != IPREV_PASS ? iprev->problem : NULL);
		mf_buf_appendf(&b, " policy.iprev=%s", ipbuf);
		if (iprev->name != NULL)
			ar_comment(&b, iprev->name);

		/* RFC 8601 2.7.2: the MAIL FROM identity, and HELO too. */
		const struct spf_outcome *mf = &v->checks->spf.mail_from, *he = &v->checks->spf.helo;
		mf_buf_appendf(&b, ";\r\n\tspf=%s", spf_result_name(mf->result));
		ar_comment(&b, dnssec_note(mf->authentic));
		ar_reason(&b, mf->problem);
		if (in->mail_from != NULL && in->mail_from[0] != '\0')
			ar_prop(&b, "smtp.mailfrom", mf->domain != NULL ? mf->domain : in->mail_from);
		else
			ar_prop(&b, "smtp.helo", in->helo);
		if (in->mail_from != NULL && in->mail_from[0] != '\0' && in->helo != NULL &&
		    in->helo[0] != '\0') {
			mf_buf_appendf(&b, ";\r\n\tspf=%s", spf_result_name(he->result));
			ar_comment(&b, dnssec_note(he->authentic));
			ar_prop(&b, "smtp.helo", in->helo);
		}
	}

	/* RFC 6376 7.2 / RFC 8601 2.7.1, one entry per signature. */
	if (v->dkim_count == 0)
		mf_buf_append_str(&b, ";\r\n\tdkim=none");
	for (size_t i = 0; i < v->dkim_count; i++) {
		const struct dkim_result *d = &v->dkim[i];
		mf_buf_appendf(&b, ";\r\n\tdkim=%s", dkim_status_name(d->status));
		if (d->domain != NULL)
			ar_comment(&b, dnssec_note(d->authentic));
		if (d->testing)
			ar_comment(&b, "key in testing mode");
		if (d->partial)
			ar_comment(&b, "l= covers part of the body");
		ar_reason(&b, d->error);
		ar_prop(&b, "header.d", d->domain);
		ar_prop(&b, "header.i", d->identity);
		ar_prop(&b, "header.s", d->selector);
		ar_prop(&b, "header.a", d->algorithm);
		ar_prop(&b, "header.b", d->b_prefix);
	}

	/* RFC 9989 9.1: dmarc with header.from and policy.dmarc. */
	const struct dmarc_evaluation *dm = &v->dmarc;
	mf_buf_appendf(&b, ";\r\n\tdmarc=%s", dmarc_result_name(dm->result));
	if (dm->record != NULL) {
		char note[128];
		snprintf(note, sizeof(note), "p=%s%s, %s", dmarc_policy_name(dm->published),
			 dm->record->testing ? " t=y" : "", dnssec_note(dm->authentic));
		ar_comment(&b, note);
	}
	if (dm->result == DMARC_RESULT_TEMPERROR || dm->result == DMARC_RESULT_PERMERROR)
		ar_reason(&b, dm->reason);
	ar_prop(&b, "header.from", dm->domain);
	if (dm->record != NULL)
		ar_prop(&b, "policy.dmarc", dmarc_policy_name(dm->disposition));
	mf_buf_append(&b, "\r\n", 2);
	return mf_buf_steal(&b);
}

/* --- signing ---------------------------------------------------------------- */

int auth_sign(const char *domain, const char *msg, size_t len, int64_t now, char **headers_r,
	      char ***selectors_r, size_t *selectors_count_r, bool *temporary_r,
	      const char **error_r)
{
	struct mf_domains *d = mf_domains_current();
	const struct mf_domain *dom;
	struct mf_buf out;
	char **selectors = NULL;
	size_t n = 0;
	int ret = -1;

	*temporary_r = false;
	mf_buf_init(&out, 0);
	if (d == NULL) {
		*temporary_r = true;
		*error_r = "domains.conf not loaded";
		goto out;
	}
	if ((dom = mf_domains_find_domain(d, domain)) == NULL) {
		*error_r = mf_errorf("domain %s is not configured", domain);
		goto out;
	}
	if (dom->sign_count == 0) {
		*error_r = mf_errorf("domain %s has no DKIM selectors to sign with", domain);
		goto out;
	}
	selectors = mf_xcalloc(dom->sign_count, sizeof(*selectors));
	for (size_t i = 0; i < dom->sign_count; i++) {
		const struct mf_dkim_selector *sel = NULL;
		struct dkim_privkey *key = NULL;
		char *hdr = NULL;
		const char *err = NULL;

		for (size_t k = 0; k < dom->selectors_count; k++) {
			if (strcmp(dom->selectors[k].name, dom->sign[i]) == 0)
				sel = &dom->selectors[k];
		}
		if (sel == NULL) {
			/* domains.c validates references; defensive only */
			*error_r = mf_errorf("selector %s not defined", dom->sign[i]);
			goto out;
		}
		if (dkim_privkey_load(sel->key_file, &key, &err) < 0) {
			/* A missing or unreadable key is an operator problem that
			 * may be fixed while the message waits. */
			*temporary_r = true;
			*error_r = mf_errorf("selector %s: %s", sel->name, err);
			goto out;
		}
		if ((dkim_privkey_type(key) == DKIM_KEY_ED25519) != (sel->algorithm == MF_DKIM_ED25519)) {
			dkim_privkey_free(&key);
			*error_r = mf_errorf("selector %s: key file does not hold an %s key", sel->name,
					     sel->algorithm == MF_DKIM_ED25519 ? "ed25519" : "rsa");
			goto out;
		}
		struct dkim_sign_settings set = {
			.domain = dom->name, .selector = sel->name, .key = key,
			.headers = (const char *const *)sel->headers, .headers_count = sel->headers_count,
			.now = now, .expiration_s = sel->expiration_ms / 1000,
		};
		if (dkim_sign(&set, msg, len, &hdr, &err) < 0) {
			dkim_privkey_free(&key);
			*error_r = mf_errorf("selector %s: %s", sel->name, err);
			goto out;
		}
		dkim_privkey_free(&key);
		mf_buf_append_str(&out, hdr);
		free(hdr);
		selectors[n++] = mf_xstrdup(sel->name);
	}
	*headers_r = mf_buf_steal(&out);
	*selectors_r = selectors;
	*selectors_count_r = n;
	selectors = NULL;
	ret = 0;
out:
	if (selectors != NULL) {
		for (size_t i = 0; i < n; i++)
			free(selectors[i]);
		free(selectors);
	}
	mf_buf_free(&out);
	mf_domains_unref(&d);
	return ret;
}

/* --- protobuf and the bus --------------------------------------------------- */

static void count(struct mf_metric *m, const char *label)
{
	if (m != NULL)
		mf_metric_inc(m, label);
}

static bool str_ok(const char *s, size_t max)
{
	return s != NULL && strlen(s) <= max;
}

/* Reads the message of a request: the blob when named, else the inline
 * bytes.  Returns 0, or -1 with resp set. */
static int load_message(const struct auth_api *api, const char *blob_key,
			const ProtobufCBinaryData *inline_msg, char **msg_r, size_t *len_r,
			struct mf_bus_response *resp)
{
	size_t max = api->message_max != 0 ? api->message_max : AUTH_MESSAGE_MAX_DEFAULT;
	const char *err = NULL;

	if (blob_key != NULL && blob_key[0] != '\0') {
		int r;

		if (api->blobs == NULL) {
			mf_bus_response_set(resp, MF_BUS_TEMPORARY, "no blob store configured");
			return -1;
		}
		if (mf_blob_key_validate(blob_key, &err) < 0) {
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "bad blob key: %s", err);
			return -1;
		}
		r = mf_blob_read_all(api->blobs, blob_key, max, msg_r, len_r, &err);
		if (r == 0) {
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "blob %s does not exist", blob_key);
			return -1;
		}
		if (r < 0) {
			mf_bus_response_set(resp, MF_BUS_TEMPORARY, "reading blob %s: %s", blob_key, err);
			return -1;
		}
		return 0;
	}
	if (inline_msg->len > max) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "message too large");
		return -1;
	}
	*msg_r = mf_xmalloc(inline_msg->len + 1);
	if (inline_msg->len > 0)
		memcpy(*msg_r, inline_msg->data, inline_msg->len);
	(*msg_r)[inline_msg->len] = '\0';
	*len_r = inline_msg->len;
	return 0;
}

static char *nz(const char *s)
{
	return (char *)(s != NULL ? s : "");
}

static Mailfleet__V1__DmarcPolicy policy_pb(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE;
	case DMARC_POLICY_QUARANTINE: return MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_QUARANTINE;
	case DMARC_POLICY_REJECT: return MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_REJECT;
	}
	return MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_NONE;
}

/* Builds a header value of Message-ID for the event (first one, unfolded). */
static char *message_id(const char *msg, size_t len)
{
	struct dkim_message m;
	const char *err;
	char *id = NULL;

	if (dkim_message_parse(msg, len, &m, &err) < 0)
		return NULL;
	for (size_t i = 0; i < m.count && id == NULL; i++) {
		if (!dkim_field_is(&m.fields[i], "Message-ID") || m.fields[i].value_len > 998)
			continue;
		struct mf_buf b;
		mf_buf_init(&b, 1024);
		for (size_t k = 0; k < m.fields[i].value_len; k++) {
			char c = m.fields[i].value[k];
			if (c != '\r' && c != '\n' && !(b.len == 0 && (c == ' ' || c == '\t')))
				mf_buf_append(&b, &c, 1);
		}
		id = b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
		mf_buf_free(&b);
	}
	dkim_message_clear(&m);
	return id;
}

static void publish_dmarc_event(const struct auth_api *api, const char *cid,
				const Mailfleet__V1__VerifyRequest *req,
				const struct auth_verify_input *in, const struct auth_verdict *v)
{
	Mailfleet__V1__DmarcEvaluation ev = MAILFLEET__V1__DMARC_EVALUATION__INIT;
	const struct dmarc_evaluation *dm = &v->dmarc;
	const struct dmarc_record *rec = dm->record;
	Mailfleet__V1__DmarcEvaluation__Dkim *dk = NULL, **dkp = NULL;
	char **rcpt_domains = NULL;
	char *mid = NULL;
	const char *err = NULL;
	struct timeval tv;
	size_t n;
	uint8_t *buf;

	if (api->bus == NULL || rec == NULL)
		return;
	gettimeofday(&tv, NULL);
	ev.time_unix_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	ev.cid = nz(cid);
	ev.source_ip = nz(in->client_ip);
	{
		const char *at = in->mail_from != NULL ? strrchr(in->mail_from, '@') : NULL;
		ev.envelope_from = (char *)(at != NULL ? at + 1 : "");
	}
	if (req->n_recipients > 0) {
		rcpt_domains = mf_xcalloc(req->n_recipients, sizeof(*rcpt_domains));
		for (size_t i = 0; i < req->n_recipients; i++) {
			const char *at = strrchr(req->recipients[i], '@');
			rcpt_domains[i] = (char *)(at != NULL ? at + 1 : "");
		}
		ev.envelope_to = rcpt_domains;
		ev.n_envelope_to = req->n_recipients;
	}
	ev.header_from = nz(dm->domain);
	ev.policy_domain = nz(dm->policy_domain);
	ev.org_domain = nz(dm->org_domain);
	ev.p = (char *)dmarc_policy_name(rec->p);
	ev.sp = (char *)(rec->sp_set ? dmarc_policy_name(rec->sp) : "");
	ev.np = (char *)(rec->np_set ? dmarc_policy_name(rec->np) : "");
	ev.adkim_strict = rec->adkim_strict;
	ev.aspf_strict = rec->aspf_strict;
	char psd[2] = { rec->psd, '\0' };
	ev.psd = psd;
	ev.testing = rec->testing;
	ev.fo = nz(rec->fo);
	ev.rua = rec->rua;
	ev.n_rua = rec->rua_count;
	ev.ruf = rec->ruf;
	ev.n_ruf = rec->ruf_count;
	ev.result = (char *)dmarc_result_name(dm->result);
	ev.disposition = (char *)dmarc_policy_name(dm->disposition);
	ev.dkim_aligned = dm->dkim_aligned;
	ev.spf_aligned = dm->spf_aligned;
	if (v->dkim_count > 0) {
		dk = mf_xcalloc(v->dkim_count, sizeof(*dk));
		dkp = mf_xcalloc(v->dkim_count, sizeof(*dkp));
		for (size_t i = 0; i < v->dkim_count; i++) {
			mailfleet__v1__dmarc_evaluation__dkim__init(&dk[i]);
			dk[i].domain = nz(v->dkim[i].domain);
			dk[i].selector = nz(v->dkim[i].selector);
			dk[i].result = (char *)dkim_status_name(v->dkim[i].status);
			dkp[i] = &dk[i];
		}
		ev.dkim = dkp;
		ev.n_dkim = v->dkim_count;
	}
	if (v->have_ip) {
		bool null_path = in->mail_from == NULL || in->mail_from[0] == '\0';
		ev.spf_domain = nz(v->checks->spf.mail_from.domain);
		ev.spf_scope = (char *)(null_path ? "helo" : "mfrom");
		ev.spf_result = (char *)spf_result_name(v->checks->spf.mail_from.result);
	}
	ev.from_list = v->info.list;
	mid = message_id(in->msg, in->len);
	ev.message_id = nz(mid);

	n = mailfleet__v1__dmarc_evaluation__get_packed_size(&ev);
	buf = mf_xmalloc(n + 1);
	mailfleet__v1__dmarc_evaluation__pack(&ev, buf);
	if (mf_bus_publish(api->bus, AUTH_API_DMARC_EVENT_SUBJECT, buf, n, &err) < 0)
		mf_log_warn("dnsauth", cid, "publishing DMARC evaluation failed", "error=%s", err);
	free(buf);
	free(mid);
	free(dk);
	free(dkp);
	free(rcpt_domains);
}

void auth_api_verify(const struct auth_api *api, const char *cid, const uint8_t *body,
		     size_t len, struct mf_bus_response *resp)
{
	Mailfleet__V1__VerifyRequest *req;
	Mailfleet__V1__VerifyReply reply = MAILFLEET__V1__VERIFY_REPLY__INIT;
	Mailfleet__V1__DkimCheck *dk = NULL, **dkp = NULL;
	Mailfleet__V1__DmarcCheck dmarc = MAILFLEET__V1__DMARC_CHECK__INIT;
	struct auth_verify_input in;
	struct auth_verdict v;
	bool have_verdict = false;
	char *msg = NULL;
	size_t msg_len = 0;

	req = mailfleet__v1__verify_request__unpack(NULL, len, body);
	if (req == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed VerifyRequest");
		count(api->verify_total, "invalid");
		return;
	}
	if (!str_ok(req->client_ip, AUTH_IP_MAX) || !str_ok(req->helo, AUTH_HELO_MAX) ||
	    !str_ok(req->mail_from, AUTH_MAIL_FROM_MAX) || req->n_recipients > AUTH_RECIPIENTS_MAX) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "VerifyRequest over limits");
		count(api->verify_total, "invalid");
		goto out;
	}
	for (size_t i = 0; i < req->n_recipients; i++) {
		if (!str_ok(req->recipients[i], AUTH_RECIPIENT_MAX)) {
			mf_bus_response_set(resp, MF_BUS_PERMANENT, "recipient too long");
			count(api->verify_total, "invalid");
			goto out;
		}
	}
	if (load_message(api, req->blob_key, &req->message, &msg, &msg_len, resp) < 0) {
		count(api->verify_total, resp->status == MF_BUS_TEMPORARY ? "temporary" : "invalid");
		goto out;
	}
	in.client_ip = req->client_ip;
	in.helo = req->helo;
	in.mail_from = req->mail_from;
	in.msg = msg;
	in.len = msg_len;
	auth_verify(api, &in, &v);
	have_verdict = true;

	/* Fields 1..4: SPF, iprev, DNSBL, as auth_checks shapes them. */
	if (v.have_ip)
		auth_checks_fill(v.checks, &reply);
	if (v.dkim_count > 0) {
		dk = mf_xcalloc(v.dkim_count, sizeof(*dk));
		dkp = mf_xcalloc(v.dkim_count, sizeof(*dkp));
		for (size_t i = 0; i < v.dkim_count; i++) {
			const struct dkim_result *d = &v.dkim[i];
			mailfleet__v1__dkim_check__init(&dk[i]);
			dk[i].result = (Mailfleet__V1__DkimResult)d->status;
			dk[i].domain = nz(d->domain);
			dk[i].selector = nz(d->selector);
			dk[i].identity = nz(d->identity);
			dk[i].algorithm = nz(d->algorithm);
			dk[i].b_prefix = nz(d->b_prefix);
			dk[i].authentic = d->authentic;
			dk[i].testing = d->testing;
			dk[i].partial = d->partial;
			dk[i].problem = nz(d->error);
			dkp[i] = &dk[i];
			count(api->dkim_total, dkim_status_name(d->status));
		}
		reply.dkim = dkp;
		reply.n_dkim = v.dkim_count;
	}
	dmarc.result = (Mailfleet__V1__DmarcResult)v.dmarc.result;
	dmarc.domain = nz(v.dmarc.domain);
	dmarc.policy_domain = nz(v.dmarc.policy_domain);
	dmarc.org_domain = nz(v.dmarc.org_domain);
	dmarc.published = policy_pb(v.dmarc.published);
	dmarc.disposition = policy_pb(v.dmarc.disposition);
	dmarc.spf_aligned = v.dmarc.spf_aligned;
	dmarc.dkim_aligned = v.dmarc.dkim_aligned;
	dmarc.dkim_domain = nz(v.dmarc.dkim_domain);
	dmarc.authentic = v.dmarc.authentic;
	dmarc.testing = v.dmarc.record != NULL && v.dmarc.record->testing;
	dmarc.reason = nz(v.dmarc.reason);
	reply.dmarc = &dmarc;
	count(api->dmarc_total, dmarc_result_name(v.dmarc.result));
	reply.authentication_results = v.authentication_results;
	reply.from_domain = nz(v.info.from_domain);
	reply.from_list = v.info.list;
	reply.list_id = nz(v.info.list_id);

	size_t n = mailfleet__v1__verify_reply__get_packed_size(&reply);
	uint8_t *outbuf = mf_xmalloc(n + 1);
	mailfleet__v1__verify_reply__pack(&reply, outbuf);
	mf_bus_response_take_body(resp, outbuf, n);
	count(api->verify_total, "ok");
	mf_log_info("dnsauth", cid, "verified",
		    "ip=%s spf=%s dkim=%zu dmarc=%s from=%s disposition=%s",
		    req->client_ip, v.have_ip ? spf_result_name(v.checks->spf.mail_from.result) : "none",
		    v.dkim_count, dmarc_result_name(v.dmarc.result),
		    v.dmarc.domain != NULL ? v.dmarc.domain : "-",
		    dmarc_policy_name(v.dmarc.disposition));
	publish_dmarc_event(api, cid, req, &in, &v);
out:
	if (have_verdict)
		auth_verdict_clear(&v);
	free(msg);
	free(dk);
	free(dkp);
	mailfleet__v1__verify_request__free_unpacked(req, NULL);
}

void auth_api_sign(const struct auth_api *api, const char *cid, const uint8_t *body, size_t len,
		   struct mf_bus_response *resp)
{
	Mailfleet__V1__SignRequest *req;
	Mailfleet__V1__SignReply reply = MAILFLEET__V1__SIGN_REPLY__INIT;
	char *msg = NULL, *ascii = NULL, *uni = NULL, *headers = NULL, **selectors = NULL;
	size_t msg_len = 0, nsel = 0;
	const char *err = NULL;
	bool temporary = false;

	req = mailfleet__v1__sign_request__unpack(NULL, len, body);
	if (req == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed SignRequest");
		count(api->sign_total, "invalid");
		return;
	}
	if (!str_ok(req->domain, MF_ADDRESS_DOMAIN_MAX) ||
	    mf_domain_parse(req->domain, strlen(req->domain), &ascii, &uni, &err) < 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "bad domain: %s", err != NULL ? err : "too long");
		count(api->sign_total, "invalid");
		goto out;
	}
	if (load_message(api, req->blob_key, &req->message, &msg, &msg_len, resp) < 0) {
		count(api->sign_total, resp->status == MF_BUS_TEMPORARY ? "temporary" : "invalid");
		goto out;
	}
	if (auth_sign(ascii, msg, msg_len, 0, &headers, &selectors, &nsel, &temporary, &err) < 0) {
		mf_bus_response_set(resp, temporary ? MF_BUS_TEMPORARY : MF_BUS_PERMANENT,
				    "DKIM signing for %s: %s", ascii, err);
		count(api->sign_total, temporary ? "temporary" : "refused");
		mf_log_warn("dnsauth", cid, "signing failed", "domain=%s error=%s", ascii, err);
		goto out;
	}
	reply.headers = headers;
	reply.selectors = selectors;
	reply.n_selectors = nsel;
	size_t n = mailfleet__v1__sign_reply__get_packed_size(&reply);
	uint8_t *outbuf = mf_xmalloc(n + 1);
	mailfleet__v1__sign_reply__pack(&reply, outbuf);
	mf_bus_response_take_body(resp, outbuf, n);
	count(api->sign_total, "ok");
	mf_log_debug("dnsauth", cid, "signed", "domain=%s selectors=%zu", ascii, nsel);
out:
	for (size_t i = 0; i < nsel; i++)
		free(selectors[i]);
	free(selectors);
	free(headers);
	free(msg);
	free(ascii);
	free(uni);
	mailfleet__v1__sign_request__free_unpacked(req, NULL);
}

static void handle_verify(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	auth_api_verify(ctx, req->cid, req->body, req->body_len, resp);
}

static void handle_sign(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	auth_api_sign(ctx, req->cid, req->body, req->body_len, resp);
}

int dnsauth_auth_api_start(struct mf_service *svc, struct dns_resolver *r, const char **error_r)
{
	/* One API per process; the bus may call it until it closes. */
	static struct auth_api api;
	const struct mf_config *c = mf_service_config(svc);
	struct mf_metrics *metrics = mf_service_metrics(svc);
	static const char *const verify_labels[] = { "ok", "temporary", "invalid", NULL };
	static const char *const sign_labels[] = { "ok", "temporary", "refused", "invalid", NULL };
	static const char *const dkim_labels[] = { "pass", "fail", "neutral", "policy", "temperror",
						   "permerror", NULL };
	static const char *const dmarc_labels[] = { "none", "pass", "fail", "temperror", "permerror",
						    NULL };
	const struct mf_metric_label vl[] = { { "result", verify_labels }, { NULL, NULL } };
	const struct mf_metric_label sl[] = { { "result", sign_labels }, { NULL, NULL } };
	const struct mf_metric_label dl[] = { { "result", dkim_labels }, { NULL, NULL } };
	const struct mf_metric_label ml[] = { { "result", dmarc_labels }, { NULL, NULL } };

	api.r = r;
	api.bus = mf_service_bus(svc);
	api.hostname = c->hostname;
	api.dkim.allow_sha1 = c->dnsauth.dkim_allow_sha1;
	api.dkim.allow_length = c->dnsauth.dkim_allow_length;
	api.dkim.rsa_min_bits = (unsigned)c->dnsauth.dkim_rsa_min_bits;
	api.dnsbl = c->dnsauth.dnsbl;
	api.dnsbl_count = c->dnsauth.dnsbl_count;
	api.message_max = c->limits.max_message_size != 0 ? c->limits.max_message_size + 64 * 1024
							    : AUTH_MESSAGE_MAX_DEFAULT;
	if (mf_blob_store_open(c->blob_dir, &api.blobs, error_r) < 0)
		return -1;
	api.verify_total = mf_metrics_counter(metrics, "mailfleet_dnsauth_verify_total",
					      "auth.v1.verify requests by outcome.", vl);
	api.sign_total = mf_metrics_counter(metrics, "mailfleet_dnsauth_sign_total",
					    "auth.v1.sign requests by outcome.", sl);
	api.dkim_total = mf_metrics_counter(metrics, "mailfleet_dnsauth_dkim_signatures_total",
					    "DKIM signatures verified, by result.", dl);
	api.dmarc_total = mf_metrics_counter(metrics, "mailfleet_dnsauth_dmarc_total",
					     "DMARC evaluations by result.", ml);
	if (mf_bus_serve(api.bus, AUTH_API_VERIFY_SUBJECT, "dnsauth", 8, handle_verify, &api,
			 error_r) < 0)
		return -1;
	return mf_bus_serve(api.bus, AUTH_API_SIGN_SUBJECT, "dnsauth", 4, handle_sign, &api, error_r);
}
