/* imap_cmd_auth: commands of any state and of the not-authenticated state:
 * CAPABILITY, NOOP, CHECK, LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE (every
 * sasl.h mechanism, SASL-IR RFC 4959; TLS client keys give EXTERNAL and
 * PREAUTH), ENABLE, NAMESPACE.  Failures are throttled with authlimit.h
 * and every attempt is recorded with the account. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "imap_format.h"
#include "imap_session.h"
#include "log.h"
#include "authlimit.h"
#include "buf.h"
#include "sasl.h"
#include "tls.h"

#define PKG "imap"

/* Longest SASL response line (base64 of a PLAIN message). */
#define IMAP_SASL_LINE_MAX 8192

static bool plaintext_ok(struct imap_session *s)
{
	return mf_conn_is_tls(s->conn) || s->server->allow_plaintext_auth;
}

int imap_cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0)
		return imap_bad(s, "CAPABILITY takes no arguments");
	imap_out(s, "* CAPABILITY %s\r\n", imap_capabilities(s));
	return imap_ok(s, "CAPABILITY completed");
}

int imap_cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0)
		return imap_bad(s, "NOOP takes no arguments");
	return imap_ok(s, "NOOP completed");
}

int imap_cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	/* RFC 3501 6.4.1; gone in rev2.  Every change is committed already. */
	if (s->rev2)
		return imap_bad(s, "unknown command");
	return imap_ok(s, "CHECK completed");
}

int imap_cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0)
		return imap_bad(s, "LOGOUT takes no arguments");
	imap_out(s, "* BYE logging out\r\n");
	s->state = IMAP_STATE_LOGOUT;
	return imap_ok(s, "LOGOUT completed");
}

int imap_cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	/* RFC 2971: the client's values are only logged. */
	if (cmd->count != 1 || (cmd->args[0].type != IMAP_ARG_LIST && !imap_arg_is_nil(&cmd->args[0])))
		return imap_bad(s, "ID takes a list or NIL");
	if (cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *l = &cmd->args[0];
		if (l->count % 2 != 0 || l->count > IMAP_ID_PAIRS_MAX * 2)
			return imap_bad(s, "invalid ID parameter list");
		for (size_t i = 0; i < l->count; i++)
			if (!imap_arg_is_string(&l->list[i]))
				return imap_bad(s, "invalid ID parameter list");
		for (size_t i = 0; i + 1 < l->count; i += 2)
			if (strcasecmp(l->list[i].str, "name") == 0) {
				mf_log_debug(PKG, s->cid, "client id", "name=%s", l->list[i + 1].str);
				free(s->client_id);
				/* Cut: it lands in login attempts. */
				s->client_id = mf_xstrndup(l->list[i + 1].str, 64);
			}
	}
	imap_out(s, "* ID (\"name\" \"mailfleet\" \"vendor\" \"mailfleet\")\r\n");
	return imap_ok(s, "ID completed");
}

int imap_cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	const char *err;

	if (cmd->count != 0)
		return imap_bad(s, "STARTTLS takes no arguments");
	if (mf_conn_is_tls(s->conn))
		return imap_bad(s, "TLS is already active");
	if (!s->server->tls_available)
		return imap_bad(s, "TLS is not available");
	imap_out(s, "%s OK begin TLS negotiation now\r\n", s->tag);
	if (imap_flush(s) < 0)
		return -1;
	/* mf_conn_starttls drops bytes pipelined after STARTTLS (RFC 9051
	 * 6.2.1: they were not protected). */
	if (mf_conn_starttls(s->conn, &err) < 0) {
		mf_log_info(PKG, s->cid, "STARTTLS failed", "error=%s", err);
		return -1;
	}
	s->reply = NULL;
	/* A client certificate may come with the handshake. */
	imap_auth_tls_setup(s);
	return 0;
}

/* --- SASL (sasl.h) with the store as backend --- */

static int be_verify(void *ctx, const char *login, const char *password, size_t len,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	struct imap_session *s = ctx;
	enum store_auth_result res;
	char *account = NULL, *message = NULL;

	if (store_authenticate(s->server->store, login, password, len, &res, &account, &message,
			       error_r) < 0)
		return -1;
	a_r->account = account;
	a_r->disabled = message;
	return res != STORE_AUTH_FAILED;
}

static int be_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	struct imap_session *s = ctx;
	struct store_account *acc = NULL;
	char *account = NULL, *disabled = NULL;
	int r;

	r = store_login_resolve(s->server->store, login, &account, &disabled, error_r);
	if (r <= 0)
		return r;
	a_r->account = account;
	a_r->disabled = disabled;
	if (what == MF_SASL_LOOKUP_ACCOUNT)
		return 1;
	r = store_account_open(s->server->store, account, &acc, error_r);
	if (r <= 0)
		return r;
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1 || what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		r = store_credentials_get_scram(acc, what == MF_SASL_LOOKUP_SCRAM_SHA1 ?
						MF_SASL_SHA1 : MF_SASL_SHA256, &a_r->scram, error_r);
		a_r->scram_set = r > 0;
	} else {
		r = store_credentials_get_cram(acc, &a_r->cram, error_r);
		a_r->cram_allowed = r > 0;
	}
	store_account_unref(&acc);
	return r < 0 ? -1 : 1;
}

static void sasl_settings(struct imap_session *s, struct mf_sasl_server_settings *set_r)
{
	memset(set_r, 0, sizeof(*set_r));
	set_r->allow_plaintext_password = s->server->allow_plaintext_auth;
	set_r->cram_md5 = s->server->cram_md5;
	set_r->hostname = s->server->hostname;
}

static void sasl_tls(struct imap_session *s, struct mf_sasl_tls *tls_r)
{
	mf_sasl_tls_from_ssl(mf_conn_is_tls(s->conn) ? mf_conn_ssl(s->conn) : NULL, tls_r);
}

void imap_auth_tls_setup(struct imap_session *s)
{
	struct store_tls_pubkey key;
	unsigned char *der = NULL;
	size_t len = 0;
	const char *err;
	int r;

	memset(&key, 0, sizeof(key));
	free(s->cert_account);
	free(s->cert_login);
	free(s->cert_fp);
	s->cert_account = s->cert_login = s->cert_fp = NULL;
	s->cert_preauth = false;
	if (mf_tls_peer_public_key(mf_conn_ssl(s->conn), &der, &len, &err) < 0) {
		mf_log_info(PKG, s->cid, "client certificate unusable", "error=%s", err);
		return;
	}
	if (der == NULL)
		return;
	s->cert_fp = mf_sasl_pubkey_fingerprint(der, len);
	free(der);
	r = store_tls_pubkey_lookup(s->server->store, s->cert_fp, &key, &err);
	if (r < 0) {
		mf_log_warn(PKG, s->cid, "client key lookup", "error=%s", err);
		return;
	}
	if (r == 0) {
		mf_log_info(PKG, s->cid, "unregistered client key", "fingerprint=%s", s->cert_fp);
		return;
	}
	s->cert_account = key.account;
	key.account = NULL;
	s->cert_login = mf_xstrdup(key.login_address != NULL && key.login_address[0] != '\0' ?
				   key.login_address : s->cert_account);
	s->cert_preauth = !key.no_imap_preauth;
	store_tls_pubkey_clear(&key);
}

/* Records a login attempt for the account login names (if any). */
static void attempt_record(struct imap_session *s, const char *mech, const char *login,
			   const char *result)
{
	struct store_login_attempt a;
	struct store_account *acc = NULL;
	char *account = NULL;
	char tls[128] = "";
	const char *err;

	if (login == NULL || login[0] == '\0')
		return;
	if (store_login_resolve(s->server->store, login, &account, NULL, &err) <= 0)
		return;
	if (store_account_open(s->server->store, account, &acc, &err) <= 0)
		goto out;
	if (mf_conn_is_tls(s->conn))
		snprintf(tls, sizeof(tls), "%s %s", mf_conn_tls_version(s->conn),
			 mf_conn_tls_cipher(s->conn));
	memset(&a, 0, sizeof(a));
	a.protocol = "imap";
	a.mechanism = mech;
	a.login = login;
	a.remote_ip = mf_conn_remote_ip(s->conn);
	a.local_ip = mf_conn_local_ip(s->conn);
	a.tls = tls;
	a.tls_pubkey = s->cert_fp != NULL ? s->cert_fp : "";
	a.client_id = s->client_id != NULL ? s->client_id : "";
	a.result = result;
	if (store_login_attempt_record(acc, &a, 0, &err) < 0)
		mf_log_warn(PKG, s->cid, "login attempt not recorded", "error=%s", err);
out:
	store_account_unref(&acc);
	free(account);
}

int imap_auth_preauth(struct imap_session *s)
{
	const char *err;

	if (s->cert_account == NULL || !s->cert_preauth)
		return 0;
	if (imap_session_login(s, s->cert_account, s->cert_login, &err) < 0) {
		mf_log_info(PKG, s->cid, "preauth failed", "error=%s", err);
		return 0;
	}
	imap_metrics_login(s->server->metrics, "ok");
	attempt_record(s, "EXTERNAL", s->cert_login, "ok");
	return 1;
}

const char *imap_capabilities(struct imap_session *s)
{
	static _Thread_local char caps[1024];
	const char *base = "IMAP4rev2 IMAP4rev1 ENABLE LITERAL+ SASL-IR ID";

	if (s->state == IMAP_STATE_NOAUTH) {
		struct mf_sasl_server_settings set;
		struct mf_sasl_tls tls;
		char mechs[MF_SASL_MECHS_MAX], auth[MF_SASL_MECHS_MAX * 2] = "";
		size_t n = 0;

		sasl_settings(s, &set);
		sasl_tls(s, &tls);
		mf_sasl_server_mechs(&set, &tls, s->cert_account != NULL, mechs);
		for (char *save = NULL, *m = strtok_r(mechs, " ", &save); m != NULL;
		     m = strtok_r(NULL, " ", &save))
			n += (size_t)snprintf(auth + n, sizeof(auth) - n, " AUTH=%s", m);
		snprintf(caps, sizeof(caps), "%s%s%s%s", base,
			 !mf_conn_is_tls(s->conn) && s->server->tls_available ? " STARTTLS" : "",
			 auth, plaintext_ok(s) ? "" : " LOGINDISABLED");
		return caps;
	}
	snprintf(caps, sizeof(caps),
		 "%s IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN BINARY SPECIAL-USE "
		 "CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES UTF8=ACCEPT "
		 "APPENDLIMIT=%llu", base, (unsigned long long)s->server->append_max);
	return caps;
}

/* Checks the brute-force limits before any credentials are read.  Returns
 * 1 to go on, 0 when refused (reply set). */
static int auth_allowed(struct imap_session *s)
{
	struct mf_authlimit_result res;
	const char *err;

	if (s->server->authlimit == NULL)
		return 1;
	if (mf_authlimit_check(s->server->authlimit, mf_conn_remote_ip(s->conn), NULL, &res,
			       &err) < 0) {
		imap_no(s, "[UNAVAILABLE] login not possible: %s", err);
		return 0;
	}
	switch (res.verdict) {
	case MF_AUTHLIMIT_OK:
		return 1;
	case MF_AUTHLIMIT_SLOW: {
		struct timespec ts = { res.delay_msecs / 1000, (res.delay_msecs % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		return 1;
	}
	case MF_AUTHLIMIT_REFUSE:
		mf_log_info(PKG, s->cid, "login refused: too many failures", "remote=%s limit=%s key=%s",
			    mf_conn_remote_ip(s->conn), res.what, res.key);
		imap_metrics_login(s->server->metrics, "limited");
		imap_no(s, "[UNAVAILABLE] logins from your network are refused for now (too many "
			"failures), try again in %u seconds", res.retry_after_secs);
		return 0;
	case MF_AUTHLIMIT_TEMPFAIL:
	default:
		imap_no(s, "[UNAVAILABLE] login is temporarily unavailable");
		return 0;
	}
}

/* Reads one SASL response line.  Returns 1 with the decoded bytes (caller
 * frees), 0 when the client cancelled with "*" or sent bad base64, -1 when
 * the connection ended. */
static int sasl_read(struct imap_session *s, unsigned char **data_r, size_t *len_r,
		     bool *cancel_r)
{
	const char *line, *err;
	ssize_t n;

	*cancel_r = false;
	n = mf_conn_read_line(s->conn, IMAP_SASL_LINE_MAX, &line, &err);
	if (n == MF_CONN_TOO_LONG)
		return 0;
	if (n < 0)
		return -1;
	if (n == 1 && line[0] == '*') {
		*cancel_r = true;
		return 0;
	}
	if (mf_sasl_base64_decode(line, (size_t)n, data_r, len_r) < 0)
		return 0;
	return 1;
}

/* Runs a SASL exchange for mech.  ir: the initial response as sent (NULL:
 * none; "=": empty), or plain (not base64) data when plain_ir is set (IMAP
 * LOGIN).  Returns 0 with the reply set, -1 to end the connection. */
static int sasl_exchange(struct imap_session *s, enum mf_sasl_mech mech, const char *ir,
			 const void *plain_ir, size_t plain_len)
{
	struct mf_sasl_server_settings set;
	struct mf_sasl_backend be = { s, be_verify, be_lookup };
	struct mf_sasl_tls tls;
	struct mf_sasl_server *srv = NULL;
	const unsigned char *out = NULL;
	unsigned char *in = NULL;
	size_t in_len = 0, out_len = 0;
	bool has = false, cancel = false, success = false;
	const char *mname = mf_sasl_mech_name(mech), *err, *result = "badcreds";
	enum mf_sasl_status st;
	int ret = 0, r;

	if (!auth_allowed(s))
		return 0;
	sasl_settings(s, &set);
	sasl_tls(s, &tls);
	if (mf_sasl_server_create(mech, &set, &be, &tls, s->cert_account, &srv, &err) < 0) {
		if (!mf_conn_is_tls(s->conn) && (mech == MF_SASL_PLAIN || mech == MF_SASL_LOGIN))
			return imap_no(s, "[PRIVACYREQUIRED] use STARTTLS before authenticating");
		return imap_no(s, "[CANNOT] %s", err);
	}
	if (plain_ir != NULL) {
		in = mf_xmalloc(plain_len + 1);
		memcpy(in, plain_ir, plain_len);
		in_len = plain_len;
		has = true;
	} else if (ir != NULL) {
		has = true;
		if (strcmp(ir, "=") != 0 && mf_sasl_base64_decode(ir, strlen(ir), &in, &in_len) < 0) {
			imap_bad(s, "invalid base64 in initial response");
			goto out;
		}
	}
	for (unsigned steps = 0;; steps++) {
		st = mf_sasl_server_step(srv, in, in_len, has, &out, &out_len);
		free(in);
		in = NULL;
		in_len = 0;
		if (st != MF_SASL_CONTINUE)
			break;
		if (steps > MF_SASL_STEPS_MAX + 1) {
			imap_bad(s, "too many SASL steps");
			goto out;
		}
		char *b64 = mf_sasl_base64_encode(out, out_len);
		imap_out(s, "+ %s\r\n", b64);
		free(b64);
		if (imap_flush(s) < 0) {
			ret = -1;
			goto out;
		}
		r = sasl_read(s, &in, &in_len, &cancel);
		if (r < 0) {
			ret = -1;
			goto out;
		}
		if (r == 0) {
			mf_sasl_server_abort(srv);
			imap_bad(s, cancel ? "authentication cancelled" :
				 "invalid SASL response");
			result = "malformed";
			goto record;
		}
		has = true;
	}
	switch (st) {
	case MF_SASL_SUCCESS:
		if (imap_session_login(s, mf_sasl_server_account(srv), mf_sasl_server_login(srv),
				       &err) < 0) {
			imap_metrics_login(s->server->metrics, "unavailable");
			imap_no(s, "%s", err);
			goto out;
		}
		success = true;
		result = "ok";
		imap_metrics_login(s->server->metrics, "ok");
		imap_ok(s, "[CAPABILITY %s] logged in", imap_capabilities(s));
		break;
	case MF_SASL_TEMPFAIL:
		mf_log_warn(PKG, s->cid, "authentication unavailable", "error=%s",
			    mf_sasl_server_failure_text(srv));
		imap_metrics_login(s->server->metrics, "unavailable");
		imap_no(s, "[UNAVAILABLE] authentication is temporarily unavailable");
		goto out;   /* not a failure of the client's */
	default:
		switch (mf_sasl_server_failure(srv)) {
		case MF_SASL_FAIL_DISABLED:
			result = "disabled";
			imap_metrics_login(s->server->metrics, "disabled");
			imap_no(s, "[ALERT] %s", mf_sasl_server_failure_text(srv));
			break;
		case MF_SASL_FAIL_WRONG_ACCOUNT:
			imap_metrics_login(s->server->metrics, "failed");
			imap_no(s, "[AUTHORIZATIONFAILED] credentials are for another account than "
				"the client certificate");
			break;
		case MF_SASL_FAIL_MALFORMED:
		case MF_SASL_FAIL_ABORTED:
			result = "malformed";
			imap_bad(s, "invalid SASL exchange");
			break;
		default:
			imap_metrics_login(s->server->metrics, "failed");
			imap_no(s, "[AUTHENTICATIONFAILED] invalid credentials");
			break;
		}
		mf_log_info(PKG, s->cid, "authentication failed", "mechanism=%s login=%s remote=%s reason=%s",
			    mname, mf_sasl_server_login(srv), mf_conn_remote_ip(s->conn),
			    mf_sasl_server_failure_text(srv));
		break;
	}
record:
	if (s->server->authlimit != NULL &&
	    mf_authlimit_record(s->server->authlimit, mf_conn_remote_ip(s->conn),
				mf_sasl_server_login(srv), success, &err) < 0)
		mf_log_warn(PKG, s->cid, "login not recorded for throttling", "error=%s", err);
	attempt_record(s, mname, mf_sasl_server_login(srv), result);
	if (!success && ++s->auth_failures >= IMAP_AUTH_FAILURES_MAX) {
		/* The tagged answer goes first, then the connection ends. */
		if (s->reply != NULL)
			imap_out(s, "%s %s\r\n", s->tag, s->reply);
		s->reply = NULL;
		imap_out(s, "* BYE too many authentication failures\r\n");
		(void)imap_flush(s);
		ret = -1;
	}
out:
	free(in);
	mf_sasl_server_free(&srv);
	return ret;
}

int imap_cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;
	char *msg;
	int ret;

	if (cmd->count != 2 || !imap_arg_is_string(&cmd->args[0]) ||
	    !imap_arg_is_string(&cmd->args[1]))
		return imap_bad(s, "LOGIN takes a user name and a password");
	if (!plaintext_ok(s))
		return imap_no(s, "[PRIVACYREQUIRED] use STARTTLS before logging in");
	user = cmd->args[0].str;
	pass = cmd->args[1].str;
	ulen = strlen(user);
	plen = cmd->args[1].len;
	if (ulen > MF_SASL_LOGIN_MAX || plen > MF_SASL_PASSWORD_MAX ||
	    memchr(pass, '\0', plen) != NULL)
		return imap_no(s, "[AUTHENTICATIONFAILED] invalid credentials");
	/* LOGIN is a PLAIN exchange: "\0user\0pass" (RFC 4616 2). */
	msg = mf_xmalloc(ulen + plen + 2);
	msg[0] = '\0';
	memcpy(msg + 1, user, ulen);
	msg[ulen + 1] = '\0';
	memcpy(msg + ulen + 2, pass, plen);
	ret = sasl_exchange(s, MF_SASL_PLAIN, NULL, msg, ulen + plen + 2);
	explicit_bzero(msg, ulen + plen + 2);
	free(msg);
	return ret;
}

int imap_cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	enum mf_sasl_mech mech;

	if (cmd->count < 1 || cmd->count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->count == 2 && cmd->args[1].type != IMAP_ARG_ATOM))
		return imap_bad(s, "AUTHENTICATE takes a mechanism and an optional initial response");
	if (mf_sasl_mech_parse(cmd->args[0].str, strlen(cmd->args[0].str), &mech) < 0)
		return imap_no(s, "[CANNOT] unsupported authentication mechanism");
	return sasl_exchange(s, mech, cmd->count == 2 ? cmd->args[1].str : NULL, NULL, 0);
}

int imap_cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	char enabled[128] = "";
	size_t n = 0;

	if (cmd->count == 0)
		return imap_bad(s, "ENABLE needs capability names");
	for (size_t i = 0; i < cmd->count; i++) {
		const struct imap_arg *a = &cmd->args[i];
		if (a->type != IMAP_ARG_ATOM)
			return imap_bad(s, "ENABLE takes capability names");
		if (strcasecmp(a->str, "IMAP4rev2") == 0 && !s->rev2) {
			s->rev2 = true;
			s->utf8 = true;
			n += (size_t)snprintf(enabled + n, sizeof(enabled) - n, " IMAP4rev2");
		} else if (strcasecmp(a->str, "UTF8=ACCEPT") == 0 && !strstr(enabled, "UTF8")) {
			s->utf8 = true;
			n += (size_t)snprintf(enabled + n, sizeof(enabled) - n, " UTF8=ACCEPT");
		}
		/* Unknown names are ignored (RFC 5161 3.1). */
	}
	imap_out(s, "* ENABLED%s\r\n", enabled);
	return imap_ok(s, "ENABLE completed");
}

int imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0)
		return imap_bad(s, "NAMESPACE takes no arguments");
	/* RFC 2342: one personal namespace, no others. */
	imap_out(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	return imap_ok(s, "NAMESPACE completed");
}
