/* sub_session: one submission connection (RFC 6409 on RFC 5321 with
 * PIPELINING, SIZE, 8BITMIME, CHUNKING, SMTPUTF8, ENHANCEDSTATUSCODES,
 * STARTTLS, AUTH (sasl.h mechanisms), REQUIRETLS, DSN, FUTURERELEASE, LIMITS).
 *
 * AUTH is required for MAIL and is offered only under TLS (STARTTLS on
 * 587, implicit TLS on 465).  A message is read into an incoming/ blob:
 * the header section is held in memory until it is complete, checked and
 * rewritten (sub_header: From must be the account's, extra fields out,
 * Message-ID and Date in), then written, followed by the body as it
 * arrives.  After the end of data the blob is committed, signed through
 * dnsauth (a second blob with the DKIM-Signature fields in front), queued
 * (the queue links it and commits), and only then answered with 250.
 * Our incoming/ keys are removed in every case; the queue has its own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "smtp_command.h"
#include "smtp_data.h"
#include "smtp_reply.h"
#include "storeclient.h"
#include "sub_header.h"
#include "sub_limits.h"
#include "sub_mailargs.h"
#include "authlimit.h"
#include "sasl.h"
#include "tls.h"
#include "sub_send.h"
#include "sub_server.h"

#define PKG "submission"
#define MSGID_BYTES 12

struct session {
	struct sub_server *srv;
	struct mf_conn *conn;
	const char *cid;
	const char *ip;
	bool greeted, esmtp, quit;
	unsigned transactions, errors, auth_attempts;
	int64_t started_ms;
	char *account;             /* after AUTH, or from a client key */
	bool account_by_cert;      /* account set by the TLS client key */
	/* TLS client certificate (tls_setup): the account its registered
	 * public key belongs to, the key's login address and fingerprint. */
	char *cert_account, *cert_login, *cert_fp;

	/* transaction */
	bool have_mail;
	struct smtp_mail mail;
	char *mail_from;           /* canonical */
	int64_t release_ms;
	struct sub_rcpt *rcpts;
	size_t rcpts_count;
	uint64_t first_time;       /* first-time recipients in this transaction */

	/* message being received */
	bool bdat;
	bool store_failed;
	char *refuse;              /* reply decided while reading the data */
	struct smtp_data_reader rd;
	struct mf_buf hdr;         /* header section until it is complete */
	bool in_body;
	bool have_hr;
	struct sub_header_result hr;
	struct mf_blob_writer *w;
	uint64_t written;
	char msgid[2 * MSGID_BYTES + 1];
	char key[MF_BLOB_KEY_MAX + 1];       /* unsigned message */
	char signed_key[MF_BLOB_KEY_MAX + 1];

	struct mf_buf out;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* --- replies -------------------------------------------------------------- */

static void flush(struct session *s)
{
	const char *err;

	if (s->out.len == 0)
		return;
	mf_log_trace(PKG, s->cid, "S", MF_TRACE_PROTO, s->out.data, s->out.len);
	if (mf_conn_write(s->conn, s->out.data, s->out.len, &err) < 0) {
		mf_log_debug(PKG, s->cid, "write failed", "error=%s", err);
		s->quit = true;
	}
	mf_buf_reset(&s->out);
}

static void reply(struct session *s, unsigned code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply(struct session *s, unsigned code, const char *enhanced, const char *fmt, ...)
{
	char text[SMTP_REPLY_LINE_MAX * 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtp_reply_append(&s->out, code, enhanced, text);
	flush(s);
}

/* Sends a complete reply line such as "550 5.7.1 ...". */
static void reply_line(struct session *s, const char *line)
{
	unsigned code;
	const char *enh, *text;

	if (smtp_reply_split(line, &code, &enh, &text) < 0) {
		code = 451;
		enh = "4.3.0";
		text = "internal error";
	}
	smtp_reply_append(&s->out, code, enh, text);
	flush(s);
}

/* A failed command: counted; later ones are answered more and more slowly,
 * and past the limit (lower before AUTH) the connection is closed. */
static void reply_error(struct session *s, const char *line)
{
	unsigned max = s->account != NULL ? SUB_ERRORS_MAX : SUB_PREAUTH_ERRORS_MAX;

	if (++s->errors > SUB_TARPIT_AFTER) {
		unsigned delay = (s->errors - SUB_TARPIT_AFTER) * SUB_TARPIT_STEP_MS;
		mf_metric_inc(s->srv->m_tarpit);
		sleep_ms(delay > SUB_TARPIT_MAX_MS ? SUB_TARPIT_MAX_MS : delay);
	}
	reply_line(s, line);
	if (s->errors >= max) {
		reply(s, 421, "4.7.0", "too many errors, closing connection");
		s->quit = true;
	}
}

/* --- transaction state ---------------------------------------------------- */

static void delete_key(struct session *s, char *key)
{
	const char *err;

	if (key[0] != '\0' && mf_blob_delete(s->srv->blobs, key, &err) < 0)
		mf_log_error(PKG, s->cid, "cannot remove incoming blob; the sweeper will",
			     "msgid=%s key=%s error=%s", s->msgid, key, err);
	key[0] = '\0';
}

static void message_reset(struct session *s)
{
	mf_blob_put_abort(&s->w);
	s->bdat = false;
	s->store_failed = false;
	free(s->refuse);
	s->refuse = NULL;
	mf_buf_free(&s->hdr);
	s->in_body = false;
	if (s->have_hr)
		sub_header_result_free(&s->hr);
	s->have_hr = false;
	s->written = 0;
	s->key[0] = '\0';
	s->signed_key[0] = '\0';
}

static void transaction_reset(struct session *s)
{
	message_reset(s);
	if (s->have_mail)
		smtp_mail_free(&s->mail);
	s->have_mail = false;
	free(s->mail_from);
	s->mail_from = NULL;
	for (size_t i = 0; i < s->rcpts_count; i++) {
		free(s->rcpts[i].address);
		free(s->rcpts[i].orcpt);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->rcpts_count = 0;
	s->first_time = 0;
	s->release_ms = 0;
}

static void set_refuse(struct session *s, const char *line)
{
	if (s->refuse == NULL)
		s->refuse = mf_xstrdup(line);
}

/* --- the message ---------------------------------------------------------- */

static void message_begin(struct session *s)
{
	unsigned char rnd[MSGID_BYTES];
	struct tm tm;
	time_t t;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		uint64_t x = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)s;
		memset(rnd, 0, sizeof(rnd));
		memcpy(rnd, &x, sizeof(x));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(s->msgid + 2 * i, 3, "%02x", rnd[i]);
	t = time(NULL);
	gmtime_r(&t, &tm);
	snprintf(s->key, sizeof(s->key), "incoming/%04d/%02d/%02d/%s-u", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, s->msgid);
	snprintf(s->signed_key, sizeof(s->signed_key), "incoming/%04d/%02d/%02d/%s",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, s->msgid);
	smtp_data_init(&s->rd, s->srv->max_message_size, SMTP_DATA_HEADER_MAX);
	/* The header section plus the blank line, and a little more for the
	 * rest of the piece that completed it (BDAT). */
	mf_buf_init(&s->hdr, SUB_HEADER_MAX + SUB_BDAT_PIECE + 4);
	s->in_body = false;
	s->store_failed = false;
	s->written = 0;
	mf_log_info(PKG, s->cid, "message started", "msgid=%s account=%s from=%s rcpts=%zu",
		    s->msgid, s->account, s->mail_from, s->rcpts_count);
}

static void blob_write(struct session *s, const void *data, size_t len)
{
	const char *err;

	if (s->store_failed || s->refuse != NULL || len == 0)
		return;
	if (s->w == NULL) {
		if (mf_blob_put_begin(s->srv->blobs, s->key, &s->w, &err) < 0)
			goto fail;
	}
	if (mf_blob_write(s->w, data, len, &err) < 0)
		goto fail;
	s->written += len;
	return;
fail:
	mf_log_error(PKG, s->cid, "cannot write incoming blob", "msgid=%s key=%s error=%s",
		     s->msgid, s->key, err);
	mf_blob_put_abort(&s->w);
	s->store_failed = true;
}

/* The header section hdr[0..len) is complete: check and rewrite it, and
 * write the result and the blank line. */
static void header_done(struct session *s, const char *hdr, size_t len)
{
	struct sub_header_input in = {
		.hostname = s->srv->config->hostname, .id = s->msgid, .now = time(NULL),
	};
	struct mf_domains *d;
	const char *err;

	s->in_body = true;
	if (sub_header_rewrite(hdr, len, &in, &s->hr, &err) < 0) {
		mf_log_info(PKG, s->cid, "message header refused", "msgid=%s reply=%s",
			    s->msgid, err);
		set_refuse(s, err);
		return;
	}
	s->have_hr = true;
	d = mf_domains_current();
	if (d == NULL) {
		set_refuse(s, "451 4.3.0 configuration not loaded, try again later");
		return;
	}
	if (!sub_from_allowed(d, s->account, &s->hr.from)) {
		char *from = mf_address_format(&s->hr.from);
		mf_log_info(PKG, s->cid, "From address not allowed", "msgid=%s account=%s from=%s",
			    s->msgid, s->account, from);
		set_refuse(s, mf_errorf("550 5.7.1 the From address %s is not an address of your "
					"account %s (nor an alias that allows it)", from,
					s->account));
		free(from);
	}
	mf_domains_unref(&d);
	blob_write(s, s->hr.header.data, s->hr.header.len);
	blob_write(s, "\r\n", 2);
}

/* Message bytes in order, cut anywhere. */
static void feed(struct session *s, const char *data, size_t len)
{
	size_t from, i;

	if (len == 0 || s->rd.flags != 0 || s->refuse != NULL || s->store_failed)
		return;
	if (s->in_body) {
		blob_write(s, data, len);
		return;
	}
	from = s->hdr.len >= 3 ? s->hdr.len - 3 : 0;
	if (mf_buf_append(&s->hdr, data, len) < 0) {
		set_refuse(s, mf_errorf("554 5.6.0 header section too large (at most %d bytes)",
					SUB_HEADER_MAX));
		return;
	}
	if (s->hdr.len >= 2 && memcmp(s->hdr.data, "\r\n", 2) == 0) {
		/* No header fields at all: the rewrite then says From is missing. */
		header_done(s, s->hdr.data, 0);
		blob_write(s, s->hdr.data + 2, s->hdr.len - 2);
		mf_buf_free(&s->hdr);
		return;
	}
	for (i = from; i + 4 <= s->hdr.len; i++) {
		if (memcmp(s->hdr.data + i, "\r\n\r\n", 4) == 0) {
			header_done(s, s->hdr.data, i + 2);
			blob_write(s, s->hdr.data + i + 4, s->hdr.len - i - 4);
			mf_buf_free(&s->hdr);
			return;
		}
	}
	if (s->hdr.len > SUB_HEADER_MAX + 2)
		set_refuse(s, mf_errorf("554 5.6.0 header section too large (at most %d bytes)",
					SUB_HEADER_MAX));
}

/* Writes the signed message: the DKIM-Signature fields, then the unsigned
 * blob.  Returns 0, or -1 after logging. */
static int write_signed(struct session *s, const char *sigs)
{
	struct mf_blob_writer *w = NULL;
	const char *err = NULL;
	char buf[SUB_WRITE_CHUNK];
	int fd = -1, ret = -1;
	ssize_t n;

	if (mf_blob_open(s->srv->blobs, s->key, &fd, &err) != 1) {
		if (err == NULL)
			err = "unsigned blob vanished";
		goto out;
	}
	if (mf_blob_put_begin(s->srv->blobs, s->signed_key, &w, &err) < 0 ||
	    mf_blob_write(w, sigs, strlen(sigs), &err) < 0)
		goto out;
	s->written = strlen(sigs);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = mf_errorf("read %s: %s", s->key, strerror(errno));
			goto out;
		}
		if (mf_blob_write(w, buf, (size_t)n, &err) < 0)
			goto out;
		s->written += (uint64_t)n;
	}
	if (mf_blob_put_commit(&w, &err) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		mf_log_error(PKG, s->cid, "cannot write signed blob", "msgid=%s key=%s error=%s",
			     s->msgid, s->signed_key, err != NULL ? err : "unknown");
	mf_blob_put_abort(&w);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Signs the committed unsigned blob when the From domain has selectors to
 * sign with.  Returns the key to queue, or NULL after replying. */
static const char *sign_message(struct session *s)
{
	struct mf_domains *d = mf_domains_current();
	const struct mf_domain *dom = d != NULL ? mf_domains_find_domain(d, s->hr.from.domain) : NULL;
	bool want = dom != NULL && dom->sign_count > 0;
	enum mf_bus_status status;
	const char *err, *key = NULL;
	char *sigs = NULL;

	mf_domains_unref(&d);
	if (!want) {
		mf_log_debug(PKG, s->cid, "not signed: no DKIM selectors for the From domain",
			     "msgid=%s domain=%s", s->msgid, s->hr.from.domain);
		return s->key;
	}
	if (sub_sign(mf_service_bus(s->srv->svc), s->cid, s->hr.from.domain, s->key, &sigs,
		     &status, &err) < 0) {
		/* Even a permanent answer is a configuration problem the admin
		 * can fix (a key file missing); the client may retry. */
		mf_log_error(PKG, s->cid, "DKIM signing failed", "msgid=%s domain=%s status=%s "
			     "error=%s", s->msgid, s->hr.from.domain,
			     mf_bus_status_name(status), err);
		mf_metric_inc(s->srv->m_messages, "temporary");
		reply(s, 451, "4.3.0", "temporary failure signing the message (DKIM), try again "
		      "later");
		goto out;
	}
	if (sigs[0] == '\0') {
		key = s->key;
		goto out;
	}
	if (write_signed(s, sigs) < 0) {
		mf_metric_inc(s->srv->m_messages, "temporary");
		reply(s, 451, "4.3.0", "temporary failure storing the message, try again later");
		goto out;
	}
	key = s->signed_key;
out:
	free(sigs);
	return key;
}

static void message_finish(struct session *s)
{
	struct sub_server *srv = s->srv;
	const char *problem = smtp_data_problem(s->rd.flags), *err, *key;
	enum mf_bus_status status;
	bool committed = false;

	if (!s->in_body && problem == NULL && s->refuse == NULL)
		/* The whole message is header (no blank line). */
		header_done(s, s->hdr.data != NULL ? s->hdr.data : "", s->hdr.len);
	if (problem != NULL || s->refuse != NULL) {
		const char *line = problem != NULL ? problem : s->refuse;
		mf_log_info(PKG, s->cid, "message refused", "msgid=%s reply=%s", s->msgid, line);
		mf_metric_inc(srv->m_messages, line[0] == '4' ? "temporary" : "rejected");
		reply_line(s, line);
		goto out;
	}
	if (s->store_failed || s->w == NULL || mf_blob_put_commit(&s->w, &err) < 0) {
		if (!s->store_failed)
			mf_log_error(PKG, s->cid, "cannot commit incoming blob",
				     "msgid=%s key=%s error=%s", s->msgid, s->key,
				     s->w == NULL ? "nothing written" : err);
		mf_metric_inc(srv->m_messages, "temporary");
		reply(s, 451, "4.3.0", "temporary failure storing the message, try again later");
		goto out;
	}
	committed = true;
	if ((key = sign_message(s)) == NULL)
		goto out;

	struct sub_queue_msg qm = {
		.cid = s->cid, .account = s->account, .mail_from = s->mail_from,
		.blob_key = key, .size = s->written, .message_id = s->hr.message_id,
		.release_unix_ms = s->release_ms, .requiretls = s->mail.requiretls,
		.smtputf8 = s->mail.smtputf8, .has_8bit = s->mail.body == SMTP_BODY_8BITMIME,
		.envid = s->mail.envid, .ret = s->mail.ret, .rcpts = s->rcpts,
		.rcpts_count = s->rcpts_count, .extras = s->hr.extras,
		.extras_count = s->hr.extras_count,
	};
	if (sub_queue_add(mf_service_bus(srv->svc), &qm, &status, &err) < 0) {
		mf_log_error(PKG, s->cid, "queueing failed", "msgid=%s status=%s error=%s",
			     s->msgid, mf_bus_status_name(status), err);
		if (status == MF_BUS_PERMANENT) {
			mf_metric_inc(srv->m_messages, "permanent");
			reply(s, 554, "5.3.0", "the queue refused the message: %s", err);
		} else {
			mf_metric_inc(srv->m_messages, "temporary");
			reply(s, 451, "4.3.0", "temporary failure queueing the message, try again "
			      "later");
		}
		goto out;
	}
	{
		const char **addrs = mf_xcalloc(s->rcpts_count, sizeof(*addrs));
		bool *first = mf_xcalloc(s->rcpts_count, sizeof(*first));
		for (size_t i = 0; i < s->rcpts_count; i++) {
			addrs[i] = s->rcpts[i].address;
			first[i] = s->rcpts[i].first_time;
		}
		if (sub_limits_commit(srv->redis, s->account, addrs, first, s->rcpts_count,
				      time(NULL), &err) < 0)
			mf_log_warn(PKG, s->cid, "cannot count the message for the account's limits",
				    "msgid=%s account=%s error=%s", s->msgid, s->account, err);
		free(addrs);
		free(first);
	}
	mf_metric_inc(srv->m_messages, "queued");
	mf_log_info(PKG, s->cid, "message queued", "msgid=%s message_id=%s account=%s "
		    "rcpts=%zu size=%llu signed=%s release_ms=%lld extras=%zu", s->msgid,
		    s->hr.message_id, s->account, s->rcpts_count, (unsigned long long)s->written,
		    key == s->signed_key ? "yes" : "no", (long long)s->release_ms,
		    s->hr.extras_count);
	reply(s, 250, "2.0.0", "message queued, id %s", s->msgid);
out:
	/* The queue has its own link by now; ours go, in every case. */
	if (committed) {
		delete_key(s, s->key);
		if (s->signed_key[0] != '\0') {
			struct mf_blob_stat st;
			if (mf_blob_stat(srv->blobs, s->signed_key, &st, &err) == 1)
				delete_key(s, s->signed_key);
		}
	}
	s->transactions++;
	transaction_reset(s);
}

/* --- commands ------------------------------------------------------------- */

static bool starttls_offered(struct session *s)
{
	const struct mf_config *c = s->srv->config;
	const struct mf_config_service *sc = &c->services[MF_SERVICE_SUBMISSION];
	unsigned port = mf_conn_local_port(s->conn);
	bool any = false;

	if (mf_conn_is_tls(s->conn) || c->tls_cert == NULL)
		return false;
	for (size_t i = 0; i < sc->listen_count; i++) {
		if (sc->listen[i].addr.port == port && !sc->listen[i].proxy)
			return sc->listen[i].security == MF_LISTEN_STARTTLS;
		any |= sc->listen[i].security == MF_LISTEN_STARTTLS;
	}
	/* Behind PROXY the local port is the load balancer's (as smtp-in). */
	return any;
}

static void sasl_settings(struct session *s, struct mf_sasl_server_settings *set_r)
{
	memset(set_r, 0, sizeof(*set_r));
	/* Credentials only under TLS (AUTH needs TLS here anyway). */
	set_r->allow_plaintext_password = false;
	set_r->cram_md5 = s->srv->config->services[MF_SERVICE_SUBMISSION].auth_cram_md5;
	set_r->hostname = s->srv->config->hostname;
}

static void cmd_ehlo(struct session *s, const struct smtp_command *cmd)
{
	bool ehlo = cmd->verb == SMTP_VERB_EHLO;
	char until[32];
	struct mf_buf text;

	if (cmd->args_len == 0 || cmd->args_len > SMTP_HELO_MAX) {
		reply_error(s, ehlo ? "501 5.5.4 EHLO needs a domain or address literal" :
				      "501 5.5.4 HELO needs a domain");
		return;
	}
	transaction_reset(s);
	s->greeted = true;
	s->esmtp = ehlo;
	if (!ehlo) {
		reply(s, 250, NULL, "%s", s->srv->config->hostname);
		return;
	}
	sub_datetime_format(time(NULL) + SUB_HOLD_MAX_SECS, until, sizeof(until));
	mf_buf_init(&text, 0);
	mf_buf_appendf(&text, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nCHUNKING\n"
		       "ENHANCEDSTATUSCODES\nSMTPUTF8\nDSN\nLIMITS RCPTMAX=%d\n"
		       "FUTURERELEASE %lld %s\n",
		       s->srv->config->hostname, (unsigned long long)s->srv->max_message_size,
		       SUB_RCPT_MAX, (long long)SUB_HOLD_MAX_SECS, until);
	if (starttls_offered(s))
		mf_buf_append_str(&text, "STARTTLS\n");
	if (mf_conn_is_tls(s->conn)) {
		/* RFC 4954 4 and RFC 6409 4.3: credentials only under TLS;
		 * strongest first. */
		struct mf_sasl_server_settings set;
		struct mf_sasl_tls tls;
		char mechs[MF_SASL_MECHS_MAX];
		sasl_settings(s, &set);
		mf_sasl_tls_from_ssl(mf_conn_ssl(s->conn), &tls);
		mf_sasl_server_mechs(&set, &tls, s->cert_account != NULL, mechs);
		mf_buf_appendf(&text, "AUTH %s\n", mechs);
		/* RFC 8689 2: REQUIRETLS only over TLS. */
		mf_buf_append_str(&text, "REQUIRETLS\n");
	}
	if (text.len > 0 && text.data[text.len - 1] == '\n')
		text.data[--text.len] = '\0';
	smtp_reply_append(&s->out, 250, NULL, mf_buf_cstr(&text));
	mf_buf_free(&text);
	flush(s);
}

/* Reads one SASL response line.  Returns 0 with a newly allocated decoded
 * response, 1 when the client cancelled ("*"), -1 after replying or when
 * the connection is gone. */
static int sasl_read(struct session *s, unsigned char **out_r, size_t *len_r)
{
	const char *line, *err;
	ssize_t n = mf_conn_read_line(s->conn, SUB_SASL_LINE_MAX, &line, &err);

	*out_r = NULL;
	if (n == MF_CONN_TOO_LONG) {
		reply_error(s, "500 5.5.6 authentication exchange line too long");
		return -1;
	}
	if (n < 0) {
		s->quit = true;
		return -1;
	}
	mf_log_trace(PKG, s->cid, "C", MF_TRACE_AUTH, line, (size_t)n);
	if (n == 1 && line[0] == '*')
		return 1;
	if (mf_sasl_base64_decode(line, (size_t)n, out_r, len_r) < 0) {
		reply_error(s, "501 5.5.2 invalid base64 in the authentication exchange");
		return -1;
	}
	return 0;
}

static void wipe_free(unsigned char *p, size_t len)
{
	if (p != NULL) {
		explicit_bzero(p, len);
		free(p);
	}
}

static void tls_text(struct session *s, char *buf, size_t size)
{
	buf[0] = '\0';
	if (mf_conn_is_tls(s->conn))
		snprintf(buf, size, "%s %s", mf_conn_tls_version(s->conn),
			 mf_conn_tls_cipher(s->conn));
}

/* Records a login attempt with the account login names (if any). */
static void attempt_record(struct session *s, const char *mech, const char *login,
			   const char *result)
{
	struct mf_storeclient_login_attempt a;
	enum mf_bus_status status;
	char tls[128], *account;
	const char *err;

	if (login == NULL || login[0] == '\0' ||
	    (account = mf_storeclient_login_account(login)) == NULL)
		return;
	tls_text(s, tls, sizeof(tls));
	memset(&a, 0, sizeof(a));
	a.protocol = "submission";
	a.mechanism = mech;
	a.login = login;
	a.remote_ip = s->ip;
	a.local_ip = mf_conn_local_ip(s->conn);
	a.tls = tls;
	a.tls_pubkey = s->cert_fp != NULL ? s->cert_fp : "";
	a.client_id = "";
	a.result = result;
	if (mf_storeclient_login_attempt(mf_service_bus(s->srv->svc), s->cid, account, &a,
					 SUB_AUTH_TIMEOUT_MS, &status, &err) < 0)
		mf_log_warn(PKG, s->cid, "login attempt not recorded", "account=%s error=%s",
			    account, err);
	free(account);
}

/* After the TLS handshake: a client certificate whose public key is
 * registered authenticates the session without AUTH. */
static void tls_setup(struct session *s)
{
	struct mf_storeclient_tls_pubkey key;
	enum mf_bus_status status;
	unsigned char *der = NULL;
	size_t len = 0;
	const char *err;
	bool found = false;

	memset(&key, 0, sizeof(key));
	if (mf_tls_peer_public_key(mf_conn_ssl(s->conn), &der, &len, &err) < 0) {
		mf_log_info(PKG, s->cid, "client certificate unusable", "error=%s", err);
		return;
	}
	if (der == NULL)
		return;
	s->cert_fp = mf_sasl_pubkey_fingerprint(der, len);
	free(der);
	if (mf_storeclient_tls_pubkey_lookup(mf_service_bus(s->srv->svc), s->cid, s->cert_fp,
					     SUB_AUTH_TIMEOUT_MS, &found, &key, &status,
					     &err) < 0) {
		/* Not fatal: the client can still use AUTH. */
		mf_log_warn(PKG, s->cid, "client key lookup", "status=%s error=%s",
			    mf_bus_status_name(status), err);
		return;
	}
	if (!found) {
		mf_log_info(PKG, s->cid, "unregistered client key", "fingerprint=%s", s->cert_fp);
		return;
	}
	s->cert_account = key.account;
	key.account = NULL;
	s->cert_login = mf_xstrdup(key.login_address != NULL && key.login_address[0] != '\0' ?
				   key.login_address : s->cert_account);
	mf_storeclient_tls_pubkey_clear(&key);
	s->account = mf_xstrdup(s->cert_account);
	s->account_by_cert = true;
	mf_metric_inc(s->srv->m_auth, "ok");
	mf_log_info(PKG, s->cid, "authenticated", "login=%s account=%s mechanism=EXTERNAL",
		    s->cert_login, s->account);
	attempt_record(s, "EXTERNAL", s->cert_login, "ok");
}

/* Checks the brute-force limits before credentials are read.  Returns true
 * to go on; false after replying. */
static bool auth_allowed(struct session *s)
{
	struct mf_authlimit_result res;
	const char *err;

	if (s->srv->authlimit == NULL)
		return true;
	if (mf_authlimit_check(s->srv->authlimit, s->ip, NULL, &res, &err) < 0) {
		reply_error(s, mf_errorf("454 4.7.0 login not possible: %s", err));
		return false;
	}
	switch (res.verdict) {
	case MF_AUTHLIMIT_OK:
		return true;
	case MF_AUTHLIMIT_SLOW:
		sleep_ms(res.delay_msecs);
		return true;
	case MF_AUTHLIMIT_REFUSE:
		mf_metric_inc(s->srv->m_auth, "limited");
		mf_log_info(PKG, s->cid, "login refused: too many failures", "remote=%s limit=%s "
			    "key=%s", s->ip, res.what, res.key);
		reply_error(s, mf_errorf("454 4.7.0 too many failed logins, try again in %u "
					 "seconds", res.retry_after_secs));
		return false;
	case MF_AUTHLIMIT_TEMPFAIL:
	default:
		mf_metric_inc(s->srv->m_auth, "unavailable");
		reply(s, 454, "4.7.0", "login is temporarily unavailable, try again later");
		return false;
	}
}

static void cmd_auth(struct session *s, const struct smtp_command *cmd)
{
	struct mf_sasl_server_settings set;
	struct mf_storeclient_sasl bctx;
	struct mf_sasl_backend be;
	struct mf_sasl_tls tls;
	struct mf_sasl_server *srv = NULL;
	enum mf_sasl_mech mech;
	enum mf_sasl_status st;
	const unsigned char *out = NULL;
	unsigned char *in = NULL;
	size_t in_len = 0, out_len = 0, mlen;
	const char *sp, *err, *mname, *result = "badcreds";
	char tlsbuf[128];
	bool has = false, success = false;
	int r;

	if (s->account != NULL && !s->account_by_cert) {
		reply_error(s, "503 5.5.1 already authenticated");
		return;
	}
	if (!mf_conn_is_tls(s->conn)) {
		mf_metric_inc(s->srv->m_auth, "needtls");
		/* RFC 4954 6 */
		reply_error(s, "538 5.7.11 encryption required: use STARTTLS before AUTH");
		return;
	}
	if (++s->auth_attempts > SUB_AUTH_ATTEMPTS_MAX) {
		reply(s, 421, "4.7.0", "too many authentication attempts, closing connection");
		s->quit = true;
		return;
	}
	sp = memchr(cmd->args, ' ', cmd->args_len);
	mlen = sp != NULL ? (size_t)(sp - cmd->args) : cmd->args_len;
	if (mlen == 0) {
		reply_error(s, "501 5.5.4 AUTH needs a mechanism");
		return;
	}
	if (mf_sasl_mech_parse(cmd->args, mlen, &mech) < 0) {
		reply_error(s, "504 5.5.4 mechanism not supported");
		return;
	}
	mname = mf_sasl_mech_name(mech);
	if (!auth_allowed(s))
		return;
	sasl_settings(s, &set);
	mf_sasl_tls_from_ssl(mf_conn_ssl(s->conn), &tls);
	tls_text(s, tlsbuf, sizeof(tlsbuf));
	memset(&bctx, 0, sizeof(bctx));
	bctx.bus = mf_service_bus(s->srv->svc);
	bctx.cid = s->cid;
	bctx.timeout_ms = SUB_AUTH_TIMEOUT_MS;
	bctx.protocol = "submission";
	bctx.mechanism = mname;
	bctx.remote_ip = s->ip;
	bctx.tls = tlsbuf;
	mf_storeclient_sasl_backend(&bctx, &be);
	if (mf_sasl_server_create(mech, &set, &be, &tls, s->cert_account, &srv, &err) < 0) {
		reply_error(s, mf_errorf("504 5.5.4 %s", err));
		return;
	}
	if (sp != NULL) {
		const char *ir = sp + 1;
		size_t irlen = cmd->args_len - mlen - 1;
		has = true;
		/* RFC 4954 4: "=" is an empty initial response. */
		if (!(irlen == 1 && ir[0] == '=') &&
		    mf_sasl_base64_decode(ir, irlen, &in, &in_len) < 0) {
			reply_error(s, "501 5.5.2 invalid base64 in the initial response");
			goto out;
		}
	}
	for (unsigned steps = 0;; steps++) {
		st = mf_sasl_server_step(srv, in, in_len, has, &out, &out_len);
		wipe_free(in, in_len);
		in = NULL;
		in_len = 0;
		if (st != MF_SASL_CONTINUE)
			break;
		if (steps > MF_SASL_STEPS_MAX + 1) {
			reply_error(s, "501 5.5.2 too many authentication steps");
			goto out;
		}
		char *b64 = mf_sasl_base64_encode(out, out_len);
		/* RFC 4954 4: an empty challenge is "334 ". */
		smtp_reply_append(&s->out, 334, NULL, b64);
		free(b64);
		flush(s);
		if (s->quit || (r = sasl_read(s, &in, &in_len)) < 0) {
			if (!s->quit) {
				mf_sasl_server_abort(srv);
				result = "malformed";
				goto record;
			}
			goto out;
		}
		if (r == 1) {
			mf_sasl_server_abort(srv);
			reply_error(s, "501 5.7.0 authentication cancelled");
			result = "malformed";
			goto record;
		}
		has = true;
	}
	switch (st) {
	case MF_SASL_SUCCESS:
		free(s->account);
		s->account = mf_xstrdup(mf_sasl_server_account(srv));
		s->account_by_cert = false;
		s->errors = 0;
		success = true;
		result = "ok";
		mf_metric_inc(s->srv->m_auth, "ok");
		mf_log_info(PKG, s->cid, "authenticated", "login=%s account=%s mechanism=%s",
			    mf_sasl_server_login(srv), s->account, mname);
		reply(s, 235, "2.7.0", "authentication successful");
		break;
	case MF_SASL_TEMPFAIL:
		mf_metric_inc(s->srv->m_auth, "unavailable");
		mf_log_warn(PKG, s->cid, "authentication unavailable", "login=%s error=%s",
			    mf_sasl_server_login(srv), mf_sasl_server_failure_text(srv));
		reply(s, 454, "4.7.0", "temporary authentication failure, try again later");
		goto out;   /* not the client's failure: not counted */
	default:
		switch (mf_sasl_server_failure(srv)) {
		case MF_SASL_FAIL_DISABLED:
			result = "disabled";
			mf_metric_inc(s->srv->m_auth, "disabled");
			reply_error(s, mf_errorf("535 5.7.8 login disabled: %s",
						 mf_sasl_server_failure_text(srv)));
			break;
		case MF_SASL_FAIL_MALFORMED:
		case MF_SASL_FAIL_ABORTED:
			result = "malformed";
			mf_metric_inc(s->srv->m_auth, "failed");
			reply_error(s, "501 5.5.2 invalid authentication exchange");
			break;
		default:
			mf_metric_inc(s->srv->m_auth, "failed");
			reply_error(s, "535 5.7.8 authentication credentials invalid");
			break;
		}
		mf_log_info(PKG, s->cid, "authentication failed", "login=%s remote=%s mechanism=%s "
			    "reason=%s", mf_sasl_server_login(srv), s->ip, mname,
			    mf_sasl_server_failure_text(srv));
		break;
	}
record:
	if (s->srv->authlimit != NULL &&
	    mf_authlimit_record(s->srv->authlimit, s->ip, mf_sasl_server_login(srv), success,
				&err) < 0)
		mf_log_warn(PKG, s->cid, "login not recorded for throttling", "error=%s", err);
	attempt_record(s, mname, mf_sasl_server_login(srv), result);
out:
	wipe_free(in, in_len);
	mf_sasl_server_free(&srv);
}

static void cmd_mail(struct session *s, const struct smtp_command *cmd)
{
	struct mf_domains *d = NULL;
	const char *err, *limited;
	char *rest = NULL;
	size_t rest_len;

	if (s->account == NULL) {
		reply_error(s, mf_conn_is_tls(s->conn) ?
			    "530 5.7.0 authentication required" :
			    "530 5.7.0 authentication required: use STARTTLS, then AUTH");
		return;
	}
	if (s->transactions >= SUB_TRANSACTIONS_MAX) {
		reply(s, 421, "4.7.0", "too many messages on one connection, closing");
		s->quit = true;
		return;
	}
	if (sub_mailargs_extract(cmd->args, cmd->args_len, now_ms(), &rest, &rest_len,
				 &s->release_ms, &err) < 0) {
		reply_error(s, err);
		return;
	}
	if (smtp_parse_mail(rest, rest_len, &s->mail, &err) < 0) {
		free(rest);
		reply_error(s, err);
		return;
	}
	free(rest);
	s->have_mail = true;   /* transaction_reset frees s->mail from here on */
	if (s->mail.body == SMTP_BODY_BINARYMIME) {
		reply_error(s, "555 5.5.4 BODY=BINARYMIME is not supported here");
		goto refused;
	}
	if (s->mail.has_size && s->srv->max_message_size != 0 &&
	    s->mail.size > s->srv->max_message_size) {
		reply_error(s, mf_errorf("552 5.3.4 message too big (at most %llu bytes)",
					 (unsigned long long)s->srv->max_message_size));
		goto refused;
	}
	if (!s->esmtp && (s->mail.body != SMTP_BODY_NONE || s->mail.smtputf8)) {
		reply_error(s, "555 5.5.4 parameters need EHLO");
		goto refused;
	}
	if (s->mail.null_sender) {
		reply_error(s, "550 5.7.1 the null sender <> cannot be used for submission");
		goto refused;
	}
	if ((d = mf_domains_current()) == NULL) {
		reply(s, 451, "4.3.0", "configuration not loaded, try again later");
		goto refused;
	}
	s->mail_from = mf_address_format(&s->mail.from);
	if (!sub_from_allowed(d, s->account, &s->mail.from)) {
		mf_log_info(PKG, s->cid, "MAIL FROM not allowed", "account=%s from=%s", s->account,
			    s->mail_from);
		reply_error(s, mf_errorf("550 5.7.1 MAIL FROM address %s is not an address of "
					 "your account %s (nor an alias that allows it)",
					 s->mail_from, s->account));
		goto refused;
	}
	const struct mf_account *acc = mf_domains_find_account(d, s->account);
	uint64_t max = acc != NULL ? acc->max_outgoing_messages_per_day : 0;
	switch (sub_limits_check_messages(s->srv->redis, s->account, max, time(NULL), &limited)) {
	case SUB_LIMITS_OK:
		break;
	case SUB_LIMITS_UNAVAILABLE:
		mf_log_warn(PKG, s->cid, "Redis unavailable for the account limits",
			    "account=%s policy=%s", s->account,
			    s->srv->redis_down_allow ? "allow" : "deny");
		if (s->srv->redis_down_allow)
			break;
		/* fall through */
	case SUB_LIMITS_REFUSED:
		mf_metric_inc(s->srv->m_messages, "limited");
		mf_log_info(PKG, s->cid, "account limit", "account=%s reply=%s", s->account,
			    limited);
		reply_line(s, limited);
		goto refused;
	}
	mf_domains_unref(&d);
	reply(s, 250, "2.1.0", "sender ok");
	return;
refused:
	mf_domains_unref(&d);
	transaction_reset(s);
}

static void cmd_rcpt(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_rcpt rcpt;
	struct mf_domains *d;
	const char *err, *limited;
	char *addr;
	bool first;
	uint64_t max = 0;

	if (s->rcpts_count >= SUB_RCPT_MAX) {
		reply_line(s, mf_errorf("452 4.5.3 too many recipients (at most %d)", SUB_RCPT_MAX));
		return;
	}
	if (smtp_parse_rcpt(cmd->args, cmd->args_len, s->mail.smtputf8, &rcpt, &err) < 0) {
		reply_error(s, err);
		return;
	}
	if (rcpt.postmaster)
		addr = mf_xasprintf("postmaster@%s", s->srv->config->hostname);
	else
		addr = mf_address_format(&rcpt.to);
	for (size_t i = 0; i < s->rcpts_count; i++) {
		if (strcmp(s->rcpts[i].address, addr) == 0) {
			/* Once is enough. */
			reply(s, 250, "2.1.5", "recipient ok (already given)");
			goto out;
		}
	}
	if ((d = mf_domains_current()) != NULL) {
		const struct mf_account *acc = mf_domains_find_account(d, s->account);
		max = acc != NULL ? acc->max_first_time_recipients_per_day : 0;
		mf_domains_unref(&d);
	}
	switch (sub_limits_check_rcpt(s->srv->redis, s->account, addr, s->first_time, max,
				      time(NULL), &first, &limited)) {
	case SUB_LIMITS_OK:
		break;
	case SUB_LIMITS_UNAVAILABLE:
		if (s->srv->redis_down_allow) {
			first = false;
			break;
		}
		/* fall through */
	case SUB_LIMITS_REFUSED:
		mf_metric_inc(s->srv->m_messages, "limited");
		mf_log_info(PKG, s->cid, "account limit", "account=%s rcpt=%s reply=%s",
			    s->account, addr, limited);
		reply_line(s, limited);
		goto out;
	}
	s->rcpts = mf_xrealloc(s->rcpts, (s->rcpts_count + 1) * sizeof(*s->rcpts));
	s->rcpts[s->rcpts_count] = (struct sub_rcpt){
		.address = addr, .notify = rcpt.notify, .first_time = first,
		.orcpt = rcpt.orcpt != NULL ?
			 mf_xasprintf("%s;%s", rcpt.orcpt_type, rcpt.orcpt) : NULL,
	};
	s->rcpts_count++;
	s->first_time += first ? 1 : 0;
	addr = NULL;
	reply(s, 250, "2.1.5", "recipient ok");
out:
	free(addr);
	smtp_rcpt_free(&rcpt);
}

/* Reads DATA lines to the end (always, so that nothing of the message is
 * taken as commands); returns -1 when the connection is lost. */
static int read_data(struct session *s)
{
	struct mf_buf chunk;
	const char *line, *err;
	int ret = -1;

	mf_buf_init(&chunk, 0);
	for (;;) {
		ssize_t n = mf_conn_read_line(s->conn, MF_NET_LINE_MAX, &line, &err);
		if (n == MF_CONN_TOO_LONG) {
			/* The end of the skipped line is unknown: the end of the
			 * message cannot be found safely (smuggling). */
			reply(s, 500, "5.5.2", "line too long in message (more than %d bytes), "
			      "closing connection", MF_NET_LINE_MAX);
			s->quit = true;
			goto out;
		}
		if (n < 0) {
			mf_log_info(PKG, s->cid, "connection lost in DATA", "msgid=%s error=%s",
				    s->msgid, n == MF_CONN_TIMEOUT ? "timeout" :
				    n == MF_CONN_EOF ? "eof" : err);
			if (n == MF_CONN_TIMEOUT)
				reply(s, 421, "4.4.2", "timeout waiting for data, closing connection");
			s->quit = true;
			goto out;
		}
		mf_log_trace(PKG, s->cid, "C", MF_TRACE_DATA, line, (size_t)n);
		if (smtp_data_line(&s->rd, line, (size_t)n, mf_conn_last_line_crlf(s->conn),
				   &chunk) == 1)
			break;
		if (chunk.len >= SUB_WRITE_CHUNK || !s->in_body) {
			feed(s, chunk.data, chunk.len);
			mf_buf_reset(&chunk);
		}
		if (s->rd.flags != 0)
			mf_buf_reset(&chunk);
	}
	feed(s, chunk.data, chunk.len);
	ret = 0;
out:
	mf_buf_free(&chunk);
	return ret;
}

static void cmd_data(struct session *s, const struct smtp_command *cmd)
{
	if (cmd->args_len != 0) {
		reply_error(s, "501 5.5.4 DATA takes no arguments");
		return;
	}
	if (s->rcpts_count == 0) {
		reply_error(s, "554 5.5.1 no valid recipients");
		return;
	}
	message_begin(s);
	reply(s, 354, NULL, "go ahead, end with <CRLF>.<CRLF>");
	if (s->quit || read_data(s) < 0) {
		transaction_reset(s);
		return;
	}
	message_finish(s);
}

static int bdat_discard(struct session *s, uint64_t len)
{
	char buf[8192];
	const char *err;

	while (len > 0) {
		size_t n = len > sizeof(buf) ? sizeof(buf) : (size_t)len;
		if (mf_conn_read_exact(s->conn, buf, n, &err) != 0) {
			s->quit = true;
			return -1;
		}
		len -= n;
	}
	return 0;
}

static void cmd_bdat(struct session *s, const struct smtp_command *cmd)
{
	uint64_t size, left;
	bool last;
	const char *err, *refuse = NULL;
	char *buf;

	if (smtp_parse_bdat(cmd->args, cmd->args_len, &size, &last, &err) < 0) {
		reply(s, 501, "5.5.4", "bad BDAT syntax, closing connection");
		s->quit = true;
		return;
	}
	if (s->srv->max_message_size != 0 && size > s->srv->max_message_size + 1) {
		reply(s, 552, "5.3.4", "BDAT chunk larger than the message size limit, "
		      "closing connection");
		s->quit = true;
		return;
	}
	if (!s->greeted)
		refuse = "503 5.5.1 send EHLO first";
	else if (!s->have_mail)
		refuse = "503 5.5.1 send MAIL first";
	else if (s->rcpts_count == 0)
		refuse = "554 5.5.1 no valid recipients";
	if (refuse != NULL) {
		if (bdat_discard(s, size) == 0)
			reply_error(s, refuse);
		return;
	}
	if (!s->bdat) {
		message_begin(s);
		s->bdat = true;
	}
	buf = mf_xmalloc(SUB_BDAT_PIECE);
	for (left = size; left > 0;) {
		size_t n = left > SUB_BDAT_PIECE ? SUB_BDAT_PIECE : (size_t)left;
		if (mf_conn_read_exact(s->conn, buf, n, &err) != 0) {
			mf_log_info(PKG, s->cid, "connection lost in BDAT", "msgid=%s", s->msgid);
			s->quit = true;
			free(buf);
			transaction_reset(s);
			return;
		}
		smtp_data_chunk(&s->rd, buf, n);
		feed(s, buf, n);
		left -= n;
	}
	free(buf);
	if (last) {
		smtp_data_chunk_end(&s->rd);
		message_finish(s);
		return;
	}
	if (s->rd.flags != 0 || s->store_failed || s->refuse != NULL) {
		/* RFC 3030 2: a failed chunk ends the transaction. */
		const char *problem = smtp_data_problem(s->rd.flags);
		if (problem == NULL)
			problem = s->refuse;
		mf_metric_inc(s->srv->m_messages, problem != NULL && problem[0] == '5' ?
			      "rejected" : "temporary");
		if (problem != NULL)
			reply_line(s, problem);
		else
			reply(s, 451, "4.3.0", "temporary failure storing the message, try again later");
		transaction_reset(s);
		return;
	}
	reply(s, 250, "2.0.0", "%llu octets received", (unsigned long long)size);
}

static void cmd_rset(struct session *s, const struct smtp_command *cmd)
{
	transaction_reset(s);
	reply(s, 250, "2.0.0", "ok");
}

static void cmd_noop(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 250, "2.0.0", "ok");
}

static void cmd_quit(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 221, "2.0.0", "%s closing connection", s->srv->config->hostname);
	s->quit = true;
}

static void cmd_help(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 214, "2.0.0", "commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP "
	      "QUIT HELP; see RFC 6409");
}

static void cmd_vrfy(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 252, "2.5.0", "cannot verify the address, but will try delivery");
}

static void cmd_expn(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 502, "5.5.1", "EXPN not available");
}

static void cmd_starttls(struct session *s, const struct smtp_command *cmd)
{
	const char *err;

	if (cmd->args_len != 0) {
		reply_error(s, "501 5.5.4 STARTTLS takes no arguments");
		return;
	}
	if (mf_conn_is_tls(s->conn)) {
		reply_error(s, "503 5.5.1 TLS is already active");
		return;
	}
	if (!starttls_offered(s)) {
		reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	reply(s, 220, "2.0.0", "ready to start TLS");
	if (s->quit)
		return;
	/* mf_conn_starttls drops input pipelined after STARTTLS (RFC 3207 6). */
	if (mf_conn_starttls(s->conn, &err) < 0) {
		mf_metric_inc(s->srv->m_tls, "error");
		mf_log_info(PKG, s->cid, "STARTTLS failed", "error=%s", err);
		s->quit = true;
		return;
	}
	mf_metric_inc(s->srv->m_tls, "ok");
	mf_log_debug(PKG, s->cid, "STARTTLS done", "version=%s cipher=%s",
		     mf_conn_tls_version(s->conn), mf_conn_tls_cipher(s->conn));
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	transaction_reset(s);
	s->greeted = false;
	s->esmtp = false;
	tls_setup(s);
}

static void cmd_unknown(struct session *s, const struct smtp_command *cmd)
{
	reply_error(s, "500 5.5.2 command not recognized");
}

#define NEED_HELO 0x1u   /* after EHLO/HELO */
#define NEED_MAIL 0x2u   /* inside a transaction */
#define NO_MAIL   0x4u   /* outside a transaction */
#define IN_BDAT   0x8u   /* allowed between BDAT chunks */

static const struct {
	enum smtp_verb verb;
	const char *metric;
	unsigned flags;
	void (*run)(struct session *s, const struct smtp_command *cmd);
} commands[] = {
	{ SMTP_VERB_UNKNOWN, "unknown", 0, cmd_unknown },
	{ SMTP_VERB_HELO, "helo", 0, cmd_ehlo },
	{ SMTP_VERB_EHLO, "ehlo", 0, cmd_ehlo },
	{ SMTP_VERB_MAIL, "mail", NEED_HELO | NO_MAIL, cmd_mail },
	{ SMTP_VERB_RCPT, "rcpt", NEED_HELO | NEED_MAIL, cmd_rcpt },
	{ SMTP_VERB_DATA, "data", NEED_HELO | NEED_MAIL, cmd_data },
	{ SMTP_VERB_BDAT, "bdat", IN_BDAT, cmd_bdat },
	{ SMTP_VERB_RSET, "rset", IN_BDAT, cmd_rset },
	{ SMTP_VERB_NOOP, "noop", IN_BDAT, cmd_noop },
	{ SMTP_VERB_QUIT, "quit", IN_BDAT, cmd_quit },
	{ SMTP_VERB_HELP, "help", 0, cmd_help },
	{ SMTP_VERB_VRFY, "vrfy", NEED_HELO, cmd_vrfy },
	{ SMTP_VERB_EXPN, "expn", 0, cmd_expn },
	{ SMTP_VERB_STARTTLS, "starttls", NO_MAIL, cmd_starttls },
	{ SMTP_VERB_AUTH, "auth", NEED_HELO | NO_MAIL, cmd_auth },
};

static void run_command(struct session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *err;
	size_t i;
	int64_t start = now_ms();

	if (smtp_command_split(line, len, &cmd, &err) < 0) {
		reply_error(s, err);
		return;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].verb == cmd.verb)
			break;
	}
	if (i == sizeof(commands) / sizeof(commands[0]))
		i = 0;
	if (s->bdat && (commands[i].flags & IN_BDAT) == 0)
		reply_error(s, "503 5.5.1 only BDAT, RSET, NOOP or QUIT between BDAT chunks");
	else if ((commands[i].flags & NEED_HELO) != 0 && !s->greeted)
		reply_error(s, "503 5.5.1 send EHLO first");
	else if ((commands[i].flags & NEED_MAIL) != 0 && !s->have_mail)
		reply_error(s, "503 5.5.1 send MAIL first");
	else if ((commands[i].flags & NO_MAIL) != 0 && s->have_mail)
		reply_error(s, cmd.verb == SMTP_VERB_MAIL ? "503 5.5.1 MAIL already given" :
			    "503 5.5.1 not inside a transaction");
	else
		commands[i].run(s, &cmd);
	if (s->srv->m_commands != NULL)
		mf_series_observe(mf_metric_series(s->srv->m_commands, commands[i].metric),
				  (double)(now_ms() - start) / 1000.0);
}

static void session_loop(struct session *s)
{
	const char *line, *err;

	reply(s, 220, NULL, "%s ESMTP mailfleet submission", s->srv->config->hostname);
	while (!s->quit) {
		ssize_t n;
		if (mf_conn_draining(s->conn)) {
			reply(s, 421, "4.3.2", "%s shutting down, try again later",
			      s->srv->config->hostname);
			break;
		}
		if ((uint64_t)(now_ms() - s->started_ms) > SUB_SESSION_MAX_MS) {
			reply(s, 421, "4.4.2", "connection open too long, closing");
			break;
		}
		n = mf_conn_read_line(s->conn, SMTP_COMMAND_LINE_MAX, &line, &err);
		if (n == MF_CONN_TOO_LONG) {
			reply_error(s, mf_errorf("500 5.5.2 line too long (at most %d bytes)",
						 SMTP_COMMAND_LINE_MAX));
			continue;
		}
		if (n == MF_CONN_TIMEOUT) {
			reply(s, 421, "4.4.2", "idle too long, closing connection");
			break;
		}
		if (n < 0)
			break;
		/* AUTH lines carry credentials: shown only at traceauth. */
		mf_log_trace(PKG, s->cid, "C", n >= 5 && strncasecmp(line, "AUTH ", 5) == 0 ?
			     MF_TRACE_AUTH : MF_TRACE_PROTO, line, (size_t)n);
		run_command(s, line, (size_t)n);
	}
}

void sub_session_handle(struct mf_conn *conn, void *ctx)
{
	struct sub_server *srv = ctx;
	struct session s = {
		.srv = srv,
		.conn = conn,
		.cid = mf_conn_id(conn),
		.ip = mf_conn_remote_ip(conn),
		.started_ms = now_ms(),
	};

	mf_buf_init(&s.out, 0);
	mf_metric_inc(srv->m_connections, "accepted");
	mf_log_debug(PKG, s.cid, "connection", "remote=%s port=%u tls=%s", s.ip,
		     mf_conn_remote_port(conn), mf_conn_is_tls(conn) ? "yes" : "no");
	if (mf_conn_is_tls(conn))
		tls_setup(&s);
	session_loop(&s);
	transaction_reset(&s);
	free(s.account);
	free(s.cert_account);
	free(s.cert_login);
	free(s.cert_fp);
	mf_buf_free(&s.out);
}
