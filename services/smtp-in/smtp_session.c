/* smtp_session: one SMTP connection of smtp-in (RFC 5321 with PIPELINING,
 * SIZE, 8BITMIME, BINARYMIME, CHUNKING, SMTPUTF8, ENHANCEDSTATUSCODES,
 * STARTTLS, REQUIRETLS, LIMITS, DSN).
 *
 * The command loop reads a line, looks the verb up in commands[] (which
 * says in which state it is allowed) and runs it.  Replies are written at
 * once; with PIPELINING the client's next commands simply wait in the read
 * buffer.  A message is streamed into an incoming/ blob, fsynced, verified
 * (smtp_verify_message), delivered through the store, and only then
 * answered; the incoming blob is removed in every case. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "smtp_command.h"
#include "smtp_data.h"
#include "smtp_deliver.h"
#include "smtp_limits.h"
#include "smtp_received.h"
#include "smtp_recipients.h"
#include "smtp_reply.h"
#include "smtp_server.h"
#include "smtp_verify.h"

#define PKG "smtp-in"
#define MSGID_BYTES 12

struct session {
	struct smtp_server *srv;
	struct mf_conn *conn;
	const char *cid;
	const char *ip;
	char helo[SMTP_HELO_MAX + 1];
	bool greeted, esmtp, quit;
	unsigned transactions, errors;
	int64_t started_ms;

	/* transaction */
	bool have_mail;
	struct smtp_mail mail;
	struct smtp_targets targets;
	size_t rcpts;              /* accepted RCPT commands */
	char *first_rcpt;

	/* message being received (DATA, or BDAT across chunks) */
	bool bdat;
	bool store_failed;
	struct smtp_data_reader rd;
	struct mf_blob_writer *w;
	char msgid[2 * MSGID_BYTES + 1];
	char key[MF_BLOB_KEY_MAX + 1];
	int64_t received_ms;

	struct mf_buf out;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- replies -------------------------------------------------------------- */

static int flush(struct session *s)
{
	const char *err;
	int ret = 0;

	if (s->out.len == 0)
		return 0;
	mf_log_trace(PKG, s->cid, "S", MF_TRACE_PROTO, s->out.data, s->out.len);
	if (mf_conn_write(s->conn, s->out.data, s->out.len, &err) < 0) {
		mf_log_debug(PKG, s->cid, "write failed", "error=%s", err);
		s->quit = true;
		ret = -1;
	}
	mf_buf_reset(&s->out);
	return ret;
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

/* Sends a complete reply line such as "550 5.1.1 no such user". */
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
 * and past SMTP_IN_ERRORS_MAX the connection is closed. */
static void reply_error(struct session *s, const char *line)
{
	unsigned delay = smtp_limits_tarpit_ms(++s->errors);

	if (delay > 0) {
		mf_metric_inc(s->srv->m_tarpit);
		usleep(delay * 1000u);
	}
	reply_line(s, line);
	if (s->errors >= SMTP_IN_ERRORS_MAX) {
		reply(s, 421, "4.7.0", "too many errors, closing connection");
		s->quit = true;
	}
}

/* --- transaction state ---------------------------------------------------- */

static void message_abort(struct session *s)
{
	mf_blob_put_abort(&s->w);
	s->bdat = false;
	s->store_failed = false;
	s->key[0] = '\0';
}

static void transaction_reset(struct session *s)
{
	message_abort(s);
	if (s->have_mail)
		smtp_mail_free(&s->mail);
	s->have_mail = false;
	smtp_targets_truncate(&s->targets, 0);
	s->rcpts = 0;
	free(s->first_rcpt);
	s->first_rcpt = NULL;
}

/* Starts a message: id, blob key, writer, and the Received header. */
static void message_begin(struct session *s)
{
	unsigned char rnd[MSGID_BYTES];
	struct tm tm;
	time_t t;
	const char *err;
	char *received;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* getrandom on Linux >= 3.17 does not fail for small sizes;
		 * fall back to time and cid so ids still differ. */
		uint64_t x = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)s;
		memset(rnd, 0, sizeof(rnd));
		memcpy(rnd, &x, sizeof(x));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(s->msgid + 2 * i, 3, "%02x", rnd[i]);
	s->received_ms = now_ms();
	t = (time_t)(s->received_ms / 1000);
	gmtime_r(&t, &tm);
	snprintf(s->key, sizeof(s->key), "incoming/%04d/%02d/%02d/%s", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, s->msgid);
	smtp_data_init(&s->rd, s->srv->max_message_size, SMTP_DATA_HEADER_MAX);
	s->rd.binary = s->mail.body == SMTP_BODY_BINARYMIME;
	s->store_failed = false;

	struct smtp_received_info ri = {
		.helo = s->helo,
		.remote_ip = s->ip,
		.hostname = s->srv->config->hostname,
		.esmtp = s->esmtp,
		.smtputf8 = s->mail.smtputf8,
		.tls_version = mf_conn_tls_version(s->conn),
		.tls_cipher = mf_conn_tls_cipher(s->conn),
		.message_id = s->msgid,
		.for_rcpt = s->rcpts == 1 ? s->first_rcpt : NULL,
		.when = t,
	};
	received = smtp_received_header(&ri);
	if (mf_blob_put_begin(s->srv->blobs, s->key, &s->w, &err) < 0 ||
	    mf_blob_write(s->w, received, strlen(received), &err) < 0) {
		mf_log_error(PKG, s->cid, "cannot write incoming blob", "msgid=%s key=%s error=%s",
			     s->msgid, s->key, err);
		mf_blob_put_abort(&s->w);
		s->store_failed = true;
	}
	free(received);
	{
		char *from = s->mail.null_sender ? mf_xstrdup("") : mf_address_format(&s->mail.from);
		mf_log_info(PKG, s->cid, "message started",
			    "msgid=%s from=%s rcpts=%zu accounts=%zu tls=%s", s->msgid, from,
			    s->rcpts, s->targets.count, mf_conn_is_tls(s->conn) ? "yes" : "no");
		free(from);
	}
}

/* Writes what the reader produced to the blob (while it is still wanted). */
static void message_write(struct session *s, const void *data, size_t len)
{
	const char *err;

	if (s->store_failed || s->rd.flags != 0 || len == 0)
		return;
	if (mf_blob_write(s->w, data, len, &err) < 0) {
		mf_log_error(PKG, s->cid, "cannot write incoming blob", "msgid=%s key=%s error=%s",
			     s->msgid, s->key, err);
		mf_blob_put_abort(&s->w);
		s->store_failed = true;
	}
}

/* The message is complete: commit, verify, deliver, reply, clean up. */
static void message_finish(struct session *s)
{
	struct smtp_server *srv = s->srv;
	const char *problem = smtp_data_problem(s->rd.flags), *err;
	struct smtp_deliver_outcome *outcomes = NULL;
	struct smtp_verify_result vr = { 0 };
	char *result = NULL;
	char key2[MF_BLOB_KEY_MAX + 4];   /* s->key + "-ar" */
	const char *key = s->key;
	bool committed = false, rewritten = false;
	bool verify = srv->config->services[MF_SERVICE_SMTP_IN].verify;

	if (problem != NULL) {
		mf_log_info(PKG, s->cid, "message refused", "msgid=%s reason=%s", s->msgid, problem);
		mf_metric_inc(srv->m_deliveries, "rejected");
		reply_line(s, problem);
		goto out;
	}
	if (s->store_failed || mf_blob_put_commit(&s->w, &err) < 0) {
		if (!s->store_failed)
			mf_log_error(PKG, s->cid, "cannot commit incoming blob",
				     "msgid=%s key=%s error=%s", s->msgid, s->key, err);
		mf_metric_inc(srv->m_deliveries, "temporary");
		reply(s, 451, "4.3.0", "temporary failure storing the message, try again later");
		goto out;
	}
	committed = true;

	/* Authentication-Results fields claiming to be ours are obscured
	 * before we add our own (RFC 8601 5); they get a copy of the message
	 * (rare: only forgeries have them). */
	if (verify) {
		int r;
		snprintf(key2, sizeof(key2), "%s-ar", s->key);
		r = smtp_verify_obscure_blob(srv->blobs, s->key, key2, srv->config->hostname, &err);
		if (r < 0) {
			mf_log_error(PKG, s->cid, "cannot rewrite incoming blob",
				     "msgid=%s key=%s error=%s", s->msgid, key2, err);
			mf_metric_inc(srv->m_deliveries, "temporary");
			reply(s, 451, "4.3.0", "temporary failure storing the message, try again later");
			goto out;
		}
		if (r > 0) {
			rewritten = true;
			key = key2;
			mf_log_info(PKG, s->cid, "forged Authentication-Results obscured",
				    "msgid=%s authserv_id=%s", s->msgid, srv->config->hostname);
		}
	}

	/* Verification reads the committed blob; the blob goes in every
	 * outcome (out:), so a refused or deferred message leaves nothing. */
	struct smtp_verify_input vin = {
		.cid = s->cid, .message_id = s->msgid, .blob_key = key, .remote_ip = s->ip,
		.helo = s->helo, .mail = &s->mail, .targets = &s->targets,
		.bus = verify ? mf_service_bus(srv->svc) : NULL,
		.timeout_ms = SMTP_VERIFY_TIMEOUT_MS,
	};
	smtp_verify_message(&vin, &vr);
	if (vr.verdict == SMTP_VERIFY_REJECT || vr.verdict == SMTP_VERIFY_TEMPFAIL) {
		mf_metric_inc(srv->m_deliveries, vr.verdict == SMTP_VERIFY_REJECT ? "rejected" :
				     "temporary");
		mf_log_info(PKG, s->cid, vr.verdict == SMTP_VERIFY_REJECT ?
			    "message refused by sender verification" :
			    "message deferred: sender verification unavailable",
			    "msgid=%s why=\"%s\"", s->msgid, vr.why);
		reply_line(s, vr.reply);
		goto out;
	}
	mf_log_info(PKG, s->cid, "verification", "msgid=%s result=\"%s\"%s", s->msgid, vr.why,
		    vr.verdict == SMTP_VERIFY_JUNK ? " special_use=" SMTP_VERIFY_JUNK_SPECIAL_USE : "");

	if (s->targets.count == 0) {
		/* Every recipient was an alias whose only member sent it. */
		mf_log_info(PKG, s->cid, "message accepted without deliveries",
			    "msgid=%s why=\"the sender is the only member of the lists\"", s->msgid);
		mf_metric_inc(srv->m_deliveries, "delivered");
		reply(s, 250, "2.0.0", "message accepted, id %s", s->msgid);
		goto out;
	}
	struct smtp_deliver_message dm = {
		.cid = s->cid, .message_id = s->msgid, .blob_key = key, .mail = &s->mail,
		.received_unix_ms = s->received_ms, .timeout_ms = SMTP_IN_DELIVER_TIMEOUT_MS,
		.authentication_results = vr.authentication_results,
		.special_use = vr.verdict == SMTP_VERIFY_JUNK ? SMTP_VERIFY_JUNK_SPECIAL_USE : NULL,
	};
	result = smtp_deliver(mf_service_bus(srv->svc), &dm, &s->targets, &outcomes);
	if (result[0] == '2') {
		mf_metric_inc(srv->m_deliveries, "delivered");
		mf_log_info(PKG, s->cid, "message delivered", "msgid=%s accounts=%zu size=%llu",
			    s->msgid, s->targets.count, (unsigned long long)s->rd.size);
		reply(s, 250, "2.0.0", "message delivered, id %s", s->msgid);
	} else {
		mf_metric_inc(srv->m_deliveries, result[0] == '4' ? "temporary" : "permanent");
		mf_log_info(PKG, s->cid, "message not delivered", "msgid=%s reply=%s", s->msgid,
			    result);
		reply_line(s, result);
	}
out:
	if (committed && mf_blob_delete(srv->blobs, s->key, &err) < 0)
		mf_log_error(PKG, s->cid, "cannot remove incoming blob; the sweeper will",
			     "msgid=%s key=%s error=%s", s->msgid, s->key, err);
	if (rewritten && mf_blob_delete(srv->blobs, key2, &err) < 0)
		mf_log_error(PKG, s->cid, "cannot remove incoming blob; the sweeper will",
			     "msgid=%s key=%s error=%s", s->msgid, key2, err);
	smtp_verify_result_clear(&vr);
	free(outcomes);
	free(result);
	s->transactions++;
	transaction_reset(s);
}

/* --- commands ------------------------------------------------------------- */

static bool starttls_offered(struct session *s)
{
	const struct mf_config *c = s->srv->config;
	const struct mf_config_service *sc = &c->services[MF_SERVICE_SMTP_IN];
	unsigned port = mf_conn_local_port(s->conn);

	bool any = false;

	if (mf_conn_is_tls(s->conn) || c->tls_cert == NULL)
		return false;
	for (size_t i = 0; i < sc->listen_count; i++) {
		if (sc->listen[i].addr.port == port && !sc->listen[i].proxy)
			return sc->listen[i].security == MF_LISTEN_STARTTLS;
		any |= sc->listen[i].security == MF_LISTEN_STARTTLS;
	}
	/* Behind PROXY the local port is the load balancer's: offer STARTTLS
	 * when some listener has it; on a plain listener mf_conn_starttls then
	 * fails and the connection is closed (net.h has no per-connection
	 * "STARTTLS possible" yet). */
	return any;
}

static void cmd_ehlo(struct session *s, const struct smtp_command *cmd)
{
	bool ehlo = cmd->verb == SMTP_VERB_EHLO;
	struct mf_buf text;

	if (cmd->args_len == 0 || cmd->args_len > SMTP_HELO_MAX) {
		reply_error(s, ehlo ? "501 5.5.4 EHLO needs a domain or address literal" :
				      "501 5.5.4 HELO needs a domain");
		return;
	}
	transaction_reset(s);
	memcpy(s->helo, cmd->args, cmd->args_len);
	s->helo[cmd->args_len] = '\0';
	/* Only the first word: some clients add more. */
	s->helo[strcspn(s->helo, " ")] = '\0';
	s->greeted = true;
	s->esmtp = ehlo;
	if (!ehlo) {
		reply(s, 250, NULL, "%s", s->srv->config->hostname);
		return;
	}
	mf_buf_init(&text, 0);
	mf_buf_appendf(&text, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nBINARYMIME\nCHUNKING\n"
		       "ENHANCEDSTATUSCODES\nSMTPUTF8\nDSN\nLIMITS RCPTMAX=%d\n",
		       s->srv->config->hostname, (unsigned long long)s->srv->max_message_size,
		       SMTP_IN_RCPT_MAX);
	if (starttls_offered(s))
		mf_buf_append_str(&text, "STARTTLS\n");
	/* RFC 8689 2: REQUIRETLS is only offered over TLS. */
	if (mf_conn_is_tls(s->conn))
		mf_buf_append_str(&text, "REQUIRETLS\n");
	/* No trailing line break: the last line ends the reply. */
	if (text.len > 0 && text.data[text.len - 1] == '\n')
		text.data[--text.len] = '\0';
	smtp_reply_append(&s->out, 250, NULL, mf_buf_cstr(&text));
	mf_buf_free(&text);
	flush(s);
}

static void cmd_mail(struct session *s, const struct smtp_command *cmd)
{
	const char *err, *limited;

	if (s->transactions >= SMTP_IN_TRANSACTIONS_MAX) {
		reply(s, 421, "4.7.0", "too many messages on one connection, closing");
		s->quit = true;
		return;
	}
	if (smtp_parse_mail(cmd->args, cmd->args_len, &s->mail, &err) < 0) {
		reply_error(s, err);
		return;
	}
	if (s->mail.has_size && s->srv->max_message_size != 0 &&
	    s->mail.size > s->srv->max_message_size) {
		smtp_mail_free(&s->mail);
		reply_error(s, mf_errorf("552 5.3.4 message too big (at most %llu bytes)",
					 (unsigned long long)s->srv->max_message_size));
		return;
	}
	if (s->mail.requiretls && !mf_conn_is_tls(s->conn)) {
		smtp_mail_free(&s->mail);
		reply_error(s, "530 5.7.10 REQUIRETLS needs a TLS connection");
		return;
	}
	if (!s->esmtp && (s->mail.body != SMTP_BODY_NONE || s->mail.smtputf8)) {
		smtp_mail_free(&s->mail);
		reply_error(s, "555 5.5.4 parameters need EHLO");
		return;
	}
	if ((limited = smtp_limits_rate(s->srv, s->cid, s->ip, true)) != NULL) {
		smtp_mail_free(&s->mail);
		reply_line(s, limited);
		return;
	}
	s->have_mail = true;
	reply(s, 250, "2.1.0", "sender ok");
}

/* RFC 1870 / RFC 3463 5.2.2: with a declared SIZE, drops the new targets
 * (from index first on) whose account quota is smaller than the whole
 * message; returns true when that leaves none of them.  Current usage is
 * only known to the store, which answers 452 4.2.2 after DATA. */
static bool quota_refuses(struct session *s, const struct mf_domains *d, size_t first)
{
	size_t kept = first;

	if (!s->mail.has_size)
		return false;
	for (size_t i = first; i < s->targets.count; i++) {
		const struct mf_account *a = mf_domains_find_account(d, s->targets.items[i].account);
		if (a != NULL && a->quota != 0 && s->mail.size > a->quota) {
			mf_log_info(PKG, s->cid, "recipient quota smaller than the message",
				    "account=%s quota=%llu size=%llu", a->name,
				    (unsigned long long)a->quota, (unsigned long long)s->mail.size);
			continue;
		}
		if (kept != i) {
			struct smtp_target t = s->targets.items[kept];
			s->targets.items[kept] = s->targets.items[i];
			s->targets.items[i] = t;
		}
		kept++;
	}
	if (kept == first && s->targets.count > first) {
		smtp_targets_truncate(&s->targets, first);
		return true;
	}
	smtp_targets_truncate(&s->targets, kept);
	return false;
}

static void cmd_rcpt(struct session *s, const struct smtp_command *cmd)
{
	struct smtp_rcpt rcpt;
	struct mf_domains *d;
	const char *err;
	size_t added;
	char *orcpt = NULL;

	if (s->rcpts >= SMTP_IN_RCPT_MAX) {
		/* RFC 5321 4.5.3.1.10 and RFC 9422 (LIMITS RCPTMAX). */
		reply_line(s, mf_errorf("452 4.5.3 too many recipients (at most %d)",
					SMTP_IN_RCPT_MAX));
		return;
	}
	if (smtp_parse_rcpt(cmd->args, cmd->args_len, s->mail.smtputf8, &rcpt, &err) < 0) {
		reply_error(s, err);
		return;
	}
	d = mf_domains_current();
	if (d == NULL) {
		smtp_rcpt_free(&rcpt);
		reply(s, 451, "4.3.0", "configuration not loaded, try again later");
		return;
	}
	if (rcpt.orcpt != NULL)
		orcpt = mf_xasprintf("%s;%s", rcpt.orcpt_type, rcpt.orcpt);
	if (smtp_recipients_resolve(d, s->srv->config->hostname, &rcpt.to, rcpt.postmaster,
				    s->mail.null_sender ? NULL : &s->mail.from, rcpt.notify, orcpt,
				    &s->targets, &added, &err) < 0) {
		mf_log_info(PKG, s->cid, "recipient refused", "rcpt=%s@%s reply=%s",
			    rcpt.to.localpart, rcpt.to.domain, err);
		reply_error(s, err);
	} else if (added > 0 && quota_refuses(s, d, s->targets.count - added)) {
		reply_error(s, "552 5.2.2 message larger than the recipient's mailbox quota");
	} else {
		if (s->rcpts++ == 0)
			s->first_rcpt = rcpt.postmaster ? mf_xstrdup("postmaster") :
							  mf_address_format(&rcpt.to);
		mf_log_debug(PKG, s->cid, "recipient accepted", "rcpt=%s@%s new_accounts=%zu",
			     rcpt.to.localpart, rcpt.to.domain, added);
		reply(s, 250, "2.1.5", "recipient ok");
	}
	free(orcpt);
	mf_domains_unref(&d);
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
			/* The skipped line's end (CRLF or bare LF) is unknown, so
			 * the end of the message can no longer be found safely:
			 * refuse and close rather than guess (smuggling). */
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
		if (chunk.len >= SMTP_IN_WRITE_CHUNK) {
			message_write(s, chunk.data, chunk.len);
			mf_buf_reset(&chunk);
		}
		if (s->rd.flags != 0)
			mf_buf_reset(&chunk);
	}
	message_write(s, chunk.data, chunk.len);
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
	if (s->rcpts == 0) {
		reply_error(s, "554 5.5.1 no valid recipients");
		return;
	}
	if (s->mail.body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 3: BINARYMIME messages must be sent with BDAT. */
		reply_error(s, "503 5.5.1 BODY=BINARYMIME needs BDAT");
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

/* Reads and drops len bytes of a refused BDAT chunk.  Returns -1 when the
 * connection is lost. */
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
		/* The size is unknown: the chunk cannot be skipped. */
		reply(s, 501, "5.5.4", "bad BDAT syntax, closing connection");
		s->quit = true;
		return;
	}
	/* A chunk must always be read, or its bytes would be taken as
	 * commands; one far beyond the message size limit is not worth it. */
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
	else if (s->rcpts == 0)
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
	buf = mf_xmalloc(SMTP_IN_BDAT_PIECE);
	for (left = size; left > 0;) {
		size_t n = left > SMTP_IN_BDAT_PIECE ? SMTP_IN_BDAT_PIECE : (size_t)left;
		if (mf_conn_read_exact(s->conn, buf, n, &err) != 0) {
			mf_log_info(PKG, s->cid, "connection lost in BDAT", "msgid=%s", s->msgid);
			s->quit = true;
			free(buf);
			transaction_reset(s);
			return;
		}
		smtp_data_chunk(&s->rd, buf, n);
		message_write(s, buf, n);
		left -= n;
	}
	free(buf);
	if (last) {
		smtp_data_chunk_end(&s->rd);
		message_finish(s);
		return;
	}
	if (s->rd.flags != 0 || s->store_failed) {
		/* RFC 3030 2: a failed chunk ends the transaction; later chunks
		 * are read and refused with 503. */
		const char *problem = smtp_data_problem(s->rd.flags);
		mf_metric_inc(s->srv->m_deliveries, problem != NULL ? "rejected" : "temporary");
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
	reply(s, 214, "2.0.0", "commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP "
	      "VRFY STARTTLS; see RFC 5321");
}

static void cmd_vrfy(struct session *s, const struct smtp_command *cmd)
{
	/* RFC 5321 3.5.3: 252 when the server will not say. */
	reply(s, 252, "2.5.0", "cannot verify the address, but will try delivery");
}

static void cmd_expn(struct session *s, const struct smtp_command *cmd)
{
	reply(s, 502, "5.5.1", "EXPN not available");
}

static void cmd_auth(struct session *s, const struct smtp_command *cmd)
{
	reply_error(s, "502 5.5.1 AUTH not available here; use the submission port");
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
	/* Pipelined input after STARTTLS is discarded by mf_conn_starttls
	 * (RFC 3207 6). */
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
	s->helo[0] = '\0';
}

static void cmd_unknown(struct session *s, const struct smtp_command *cmd)
{
	reply_error(s, "500 5.5.2 command not recognized");
}

/* Where a command is allowed. */
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
	{ SMTP_VERB_VRFY, "vrfy", 0, cmd_vrfy },
	{ SMTP_VERB_EXPN, "expn", 0, cmd_expn },
	{ SMTP_VERB_STARTTLS, "starttls", NO_MAIL, cmd_starttls },
	{ SMTP_VERB_AUTH, "auth", 0, cmd_auth },
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
		/* RFC 3030 2: between chunks only BDAT, RSET, NOOP, QUIT. */
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

	reply(s, 220, NULL, "%s ESMTP mailfleet", s->srv->config->hostname);
	while (!s->quit) {
		ssize_t n;
		if (mf_conn_draining(s->conn)) {
			reply(s, 421, "4.3.2", "%s shutting down, try again later",
			      s->srv->config->hostname);
			break;
		}
		if ((uint64_t)(now_ms() - s->started_ms) > SMTP_IN_SESSION_MAX_MS) {
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
		mf_log_trace(PKG, s->cid, "C", MF_TRACE_PROTO, line, (size_t)n);
		run_command(s, line, (size_t)n);
	}
}

void smtp_session_handle(struct mf_conn *conn, void *ctx)
{
	struct smtp_server *srv = ctx;
	struct session s = {
		.srv = srv,
		.conn = conn,
		.cid = mf_conn_id(conn),
		.ip = mf_conn_remote_ip(conn),
		.started_ms = now_ms(),
	};
	const char *limited;

	mf_buf_init(&s.out, 0);
	if (!smtp_limits_ip_acquire(srv, s.ip)) {
		mf_metric_inc(srv->m_connections, "refused");
		mf_log_info(PKG, s.cid, "too many connections from one address", "remote=%s", s.ip);
		reply(&s, 421, "4.7.0", "too many connections from your address, try again later");
		mf_buf_free(&s.out);
		return;
	}
	if ((limited = smtp_limits_rate(srv, s.cid, s.ip, false)) != NULL) {
		mf_metric_inc(srv->m_connections, "ratelimited");
		reply_line(&s, limited);
		goto out;
	}
	mf_metric_inc(srv->m_connections, "accepted");
	mf_log_debug(PKG, s.cid, "connection", "remote=%s port=%u tls=%s", s.ip,
		     mf_conn_remote_port(conn), mf_conn_is_tls(conn) ? "yes" : "no");
	session_loop(&s);
out:
	transaction_reset(&s);
	smtp_targets_clear(&s.targets);
	mf_buf_free(&s.out);
	smtp_limits_ip_release(srv, s.ip);
}
