/* imap_cmd_auth: commands of any state and of the not-authenticated state:
 * CAPABILITY, NOOP, CHECK, LOGOUT, ID, STARTTLS, LOGIN, AUTHENTICATE (PLAIN
 * and LOGIN with SASL-IR, RFC 4959), ENABLE, NAMESPACE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "imap_format.h"
#include "imap_session.h"
#include "log.h"

#define PKG "imap"

/* Longest SASL response line (base64 of a PLAIN message). */
#define IMAP_SASL_LINE_MAX 8192
/* Longest login name and password. */
#define IMAP_LOGIN_MAX 512
#define IMAP_PASSWORD_MAX 1024

static bool plaintext_ok(struct imap_session *s)
{
	return mf_conn_is_tls(s->conn) || s->server->allow_plaintext_auth;
}

const char *imap_capabilities(struct imap_session *s)
{
	static _Thread_local char caps[1024];
	const char *base = "IMAP4rev2 IMAP4rev1 ENABLE LITERAL+ SASL-IR ID";

	if (s->state == IMAP_STATE_NOAUTH) {
		snprintf(caps, sizeof(caps), "%s%s%s", base,
			 !mf_conn_is_tls(s->conn) && s->server->tls_available ? " STARTTLS" : "",
			 plaintext_ok(s) ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED");
		return caps;
	}
	snprintf(caps, sizeof(caps),
		 "%s IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN BINARY SPECIAL-USE "
		 "CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES UTF8=ACCEPT "
		 "APPENDLIMIT=%llu", base, (unsigned long long)s->server->append_max);
	return caps;
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
			if (strcasecmp(l->list[i].str, "name") == 0)
				mf_log_debug(PKG, s->cid, "client id", "name=%s", l->list[i + 1].str);
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
	return 0;
}

static void auth_delay(void)
{
	struct timespec ts = { IMAP_AUTH_FAILURE_DELAY_MS / 1000,
			       (IMAP_AUTH_FAILURE_DELAY_MS % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static const struct mf_ratelimit_ip_limits authfail_limits = {
	.v4 = {
		{ "imap-authfail-ip", IMAP_AUTHFAIL_IP_COUNT, IMAP_AUTHFAIL_PERIOD_MS, 0 },
		{ "imap-authfail-net", IMAP_AUTHFAIL_NET_COUNT, IMAP_AUTHFAIL_PERIOD_MS, 0 },
		{ "imap-authfail-net2", IMAP_AUTHFAIL_NET_COUNT * 4, IMAP_AUTHFAIL_PERIOD_MS, 0 },
	},
	.v6 = {
		{ "imap-authfail-ip", IMAP_AUTHFAIL_IP_COUNT, IMAP_AUTHFAIL_PERIOD_MS, 0 },
		{ "imap-authfail-net", IMAP_AUTHFAIL_NET_COUNT, IMAP_AUTHFAIL_PERIOD_MS, 0 },
		{ "imap-authfail-net2", IMAP_AUTHFAIL_NET_COUNT * 4, IMAP_AUTHFAIL_PERIOD_MS, 0 },
	},
};

/* Returns false when the client's network has failed too often (the
 * password is then not even checked, so guessing gets no answers). */
static bool authfail_allowed(struct imap_session *s)
{
	struct mf_ratelimit_result res;
	const char *err;

	if (s->server->ratelimit == NULL)
		return true;
	if (mf_ratelimit_check_ip(s->server->ratelimit, MF_RATELIMIT_PEEK, &authfail_limits,
				  mf_conn_remote_ip(s->conn), &res, &err) < 0) {
		mf_log_warn(PKG, s->cid, "login rate check", "error=%s", err);
		return true;
	}
	return res.allowed;
}

static void authfail_record(struct imap_session *s)
{
	struct mf_ratelimit_result res;
	const char *err;

	if (s->server->ratelimit != NULL &&
	    mf_ratelimit_check_ip(s->server->ratelimit, MF_RATELIMIT_RECORD, &authfail_limits,
				  mf_conn_remote_ip(s->conn), &res, &err) < 0)
		mf_log_warn(PKG, s->cid, "login rate record", "error=%s", err);
}

/* Verifies the credentials and logs in.  Returns 0 with the reply set, or
 * -1 to end the connection. */
static int do_login(struct imap_session *s, const char *login, const char *password,
		    size_t password_len)
{
	enum store_auth_result result;
	char *account = NULL, *message = NULL;
	const char *err;
	int ret = 0;

	if (!authfail_allowed(s)) {
		mf_log_info(PKG, s->cid, "login refused: too many failures from this network",
			    "login=%s remote=%s", login, mf_conn_remote_ip(s->conn));
		imap_metrics_login(s->server->metrics, "limited");
		imap_no(s, "[UNAVAILABLE] logins from your network are refused for now, try again later");
		goto out;
	}
	if (strlen(login) > IMAP_LOGIN_MAX || password_len > IMAP_PASSWORD_MAX) {
		result = STORE_AUTH_FAILED;
	} else if (store_authenticate(s->server->store, login, password, password_len, &result,
				      &account, &message, &err) < 0) {
		mf_log_warn(PKG, s->cid, "authentication unavailable", "error=%s", err);
		imap_metrics_login(s->server->metrics, "unavailable");
		imap_no(s, "[UNAVAILABLE] authentication is temporarily unavailable");
		goto out;
	}
	if (result == STORE_AUTH_DISABLED) {
		mf_log_info(PKG, s->cid, "login disabled", "login=%s", login);
		imap_metrics_login(s->server->metrics, "disabled");
		imap_no(s, "[CONTACTADMIN] %s", message != NULL ? message : "login disabled");
		goto out;
	}
	if (result != STORE_AUTH_OK) {
		mf_log_info(PKG, s->cid, "authentication failed", "login=%s remote=%s", login,
			    mf_conn_remote_ip(s->conn));
		imap_metrics_login(s->server->metrics, "failed");
		authfail_record(s);
		auth_delay();
		if (++s->auth_failures >= IMAP_AUTH_FAILURES_MAX) {
			imap_out(s, "* BYE too many authentication failures\r\n");
			ret = -1;
			goto out;
		}
		imap_no(s, "[AUTHENTICATIONFAILED] invalid credentials");
		goto out;
	}
	if (imap_session_login(s, account, login, &err) < 0) {
		imap_metrics_login(s->server->metrics, "unavailable");
		imap_no(s, "%s", err);
		goto out;
	}
	imap_metrics_login(s->server->metrics, "ok");
	imap_ok(s, "[CAPABILITY %s] logged in", imap_capabilities(s));
out:
	free(account);
	free(message);
	return ret;
}

int imap_cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 2 || !imap_arg_is_string(&cmd->args[0]) ||
	    !imap_arg_is_string(&cmd->args[1]))
		return imap_bad(s, "LOGIN takes a user name and a password");
	if (!plaintext_ok(s))
		return imap_no(s, "[PRIVACYREQUIRED] use STARTTLS before logging in");
	return do_login(s, cmd->args[0].str, cmd->args[1].str, cmd->args[1].len);
}

/* Sends a continuation and reads one base64 line.  Returns 1 with the
 * decoded bytes (pool), 0 when the client cancelled with "*" (reply set),
 * -1 when the connection ended. */
static int sasl_step(struct imap_session *s, const char *challenge, char **data_r,
		     size_t *len_r)
{
	const char *line, *err;
	ssize_t n, dn;
	unsigned char *out;

	imap_out(s, "+ %s\r\n", challenge);
	if (imap_flush(s) < 0)
		return -1;
	n = mf_conn_read_line(s->conn, IMAP_SASL_LINE_MAX, &line, &err);
	if (n == MF_CONN_TOO_LONG) {
		imap_bad(s, "SASL response too long");
		return 0;
	}
	if (n < 0)
		return -1;
	if (n == 1 && line[0] == '*') {
		imap_bad(s, "authentication cancelled");
		return 0;
	}
	out = imap_pool_alloc(s->pool, (size_t)n / 4 * 3 + 1);
	dn = imap_base64_decode(line, (size_t)n, out);
	if (dn < 0) {
		imap_bad(s, "invalid base64 in SASL response");
		return 0;
	}
	out[dn] = '\0';
	*data_r = (char *)out;
	*len_r = (size_t)dn;
	return 1;
}

/* Decodes a SASL-IR initial response ("=" is empty, RFC 4959 3). */
static int initial_response(struct imap_session *s, const struct imap_arg *arg, char **data_r,
			    size_t *len_r)
{
	unsigned char *out;
	ssize_t dn;

	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	if (strcmp(arg->str, "=") == 0) {
		*data_r = imap_pool_strdup(s->pool, "");
		*len_r = 0;
		return 0;
	}
	out = imap_pool_alloc(s->pool, arg->len / 4 * 3 + 1);
	dn = imap_base64_decode(arg->str, arg->len, out);
	if (dn < 0)
		return -1;
	out[dn] = '\0';
	*data_r = (char *)out;
	*len_r = (size_t)dn;
	return 0;
}

int imap_cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	char *data = NULL, *user, *pass;
	size_t len = 0;
	int r;

	if (cmd->count < 1 || cmd->count > 2 || cmd->args[0].type != IMAP_ARG_ATOM)
		return imap_bad(s, "AUTHENTICATE takes a mechanism and an optional initial response");
	if (!plaintext_ok(s))
		return imap_no(s, "[PRIVACYREQUIRED] use STARTTLS before authenticating");
	if (strcasecmp(cmd->args[0].str, "PLAIN") == 0) {
		const char *authz, *authc, *end;
		if (cmd->count == 2) {
			if (initial_response(s, &cmd->args[1], &data, &len) < 0)
				return imap_bad(s, "invalid base64 in initial response");
		} else if ((r = sasl_step(s, "", &data, &len)) <= 0) {
			return r;
		}
		/* RFC 4616: [authzid] NUL authcid NUL passwd */
		end = data + len;
		authz = data;
		authc = memchr(authz, '\0', len);
		if (authc == NULL)
			return imap_bad(s, "invalid PLAIN response");
		authc++;
		pass = memchr(authc, '\0', (size_t)(end - authc));
		if (pass == NULL)
			return imap_bad(s, "invalid PLAIN response");
		pass++;
		if (authz[0] != '\0' && strcmp(authz, authc) != 0)
			return imap_no(s, "[AUTHORIZATIONFAILED] cannot log in as another user");
		return do_login(s, authc, pass, (size_t)(end - pass));
	}
	if (strcasecmp(cmd->args[0].str, "LOGIN") == 0) {
		size_t plen;
		if (cmd->count == 2) {
			if (initial_response(s, &cmd->args[1], &user, &len) < 0)
				return imap_bad(s, "invalid base64 in initial response");
		} else if ((r = sasl_step(s, "VXNlcm5hbWU6", &user, &len)) <= 0) {
			return r;
		}
		if ((r = sasl_step(s, "UGFzc3dvcmQ6", &pass, &plen)) <= 0)
			return r;
		if (strlen(user) != len)
			return imap_bad(s, "invalid user name");
		return do_login(s, user, pass, plen);
	}
	return imap_no(s, "unsupported authentication mechanism");
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
