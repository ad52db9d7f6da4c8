#include "smtp_client.h"
#include "socks5.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "sasl.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PKG "delivery"
#define CONN_RBUF 8192
#define DATA_CHUNK 65536

struct conn {
	int fd;
	SSL *ssl;
	char rbuf[CONN_RBUF];
	size_t rlen, roff;
	unsigned timeout_ms;
	const char *cid;
	const struct smtp_client_params *p;
	/* The server's AUTH mechanisms (mf_sasl_mech bits) from the last EHLO. */
	unsigned auth_mechs;
};

void smtp_client_rcpt_set(struct smtp_client_rcpt *rcpt, bool delivered, bool permanent,
			  unsigned code, const char *enhanced, const char *text)
{
	rcpt->done = true;
	rcpt->delivered = delivered;
	rcpt->permanent = permanent;
	rcpt->code = code;
	snprintf(rcpt->enhanced, sizeof(rcpt->enhanced), "%s", enhanced != NULL ? enhanced : "");
	free(rcpt->text);
	rcpt->text = mf_xstrdup(text != NULL ? text : "");
}

void smtp_client_rcpts_clear(struct smtp_client_rcpt *rcpts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rcpts[i].text);
		rcpts[i].text = NULL;
	}
}

static void set_from_reply(struct smtp_client_rcpt *rcpt, const struct smtp_client_reply *r)
{
	smtp_client_rcpt_set(rcpt, r->code / 100 == 2, r->code / 100 == 5, r->code, r->enhanced,
			     mf_buf_cstr(&r->text));
}

static int wait_fd(struct conn *c, short events, const char **error_r)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, (int)c->timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		*error_r = "timeout";
		return -1;
	}
	if (r < 0) {
		*error_r = mf_errorf("poll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int conn_write(struct conn *c, const void *data, size_t len, const char **error_r)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w;
		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, error_r) < 0)
						return -1;
					continue;
				}
				*error_r = "write: TLS error";
				return -1;
			}
			w = r;
		} else {
			w = send(c->fd, p, len, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					if (wait_fd(c, POLLOUT, error_r) < 0)
						return -1;
					continue;
				}
				*error_r = mf_errorf("write: %s", strerror(errno));
				return -1;
			}
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Fills the read buffer.  Returns >0 bytes, 0 at EOF, -1 on error. */
static ssize_t conn_fill(struct conn *c, const char **error_r)
{
	if (c->roff > 0) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	for (;;) {
		size_t room = sizeof(c->rbuf) - c->rlen;
		if (room == 0) {
			*error_r = "reply line too long";
			return -1;
		}
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)room);
			if (r > 0) {
				c->rlen += (size_t)r;
				return r;
			}
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, error_r) < 0)
					return -1;
				continue;
			}
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
				return 0;  /* closed without close_notify */
			*error_r = "read: TLS error";
			return -1;
		}
		ssize_t r = recv(c->fd, c->rbuf + c->rlen, room, 0);
		if (r > 0) {
			c->rlen += (size_t)r;
			return r;
		}
		if (r == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(c, POLLIN, error_r) < 0)
				return -1;
			continue;
		}
		if (errno == ECONNRESET)
			return 0;
		*error_r = mf_errorf("read: %s", strerror(errno));
		return -1;
	}
}

/* Reads one complete reply.  Returns 0, or -1 with error_r (including
 * "connection closed"). */
static int read_reply(struct conn *c, struct smtp_client_reply *reply, const char **error_r)
{
	smtp_client_reply_reset(reply);
	for (;;) {
		char *nl = memchr(c->rbuf + c->roff, '\n', c->rlen - c->roff);
		if (nl != NULL) {
			char *line = c->rbuf + c->roff;
			size_t len = (size_t)(nl - line);
			int r;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			c->roff = (size_t)(nl - c->rbuf) + 1;
			mf_log_trace(PKG, c->cid, "S", MF_TRACE_PROTO, line, len);
			r = smtp_client_reply_feed(reply, line, len, error_r);
			if (r < 0)
				return -1;
			if (r == 1) {
				if (c->p->progress != NULL)
					c->p->progress(c->p->progress_ctx);
				return 0;
			}
			continue;
		}
		ssize_t n = conn_fill(c, error_r);
		if (n < 0)
			return -1;
		if (n == 0) {
			*error_r = "connection closed by the server";
			return -1;
		}
	}
}

static int send_cmd(struct conn *c, const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int send_cmd(struct conn *c, const char **error_r, const char *fmt, ...)
{
	struct mf_buf b;
	va_list ap;
	int r;

	mf_buf_init(&b, 4096);
	va_start(ap, fmt);
	r = mf_buf_vappendf(&b, fmt, ap);
	va_end(ap);
	if (r < 0) {
		mf_buf_free(&b);
		*error_r = "command too long";
		return -1;
	}
	mf_log_trace(PKG, c->cid, "C", MF_TRACE_PROTO, b.data, b.len);
	r = mf_buf_append(&b, "\r\n", 2);
	if (r == 0)
		r = conn_write(c, b.data, b.len, error_r);
	mf_buf_free(&b);
	return r;
}

static int tcp_connect(const char *ip, unsigned port, const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		*error_r = mf_errorf("not an IP address: %s", ip);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = mf_errorf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		*error_r = mf_errorf("connect %s port %u: %s", ip, port, strerror(errno));
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, SMTP_CLIENT_CONNECT_TIMEOUT_MS) <= 0) {
		*error_r = mf_errorf("connect %s port %u: timeout", ip, port);
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
		*error_r = mf_errorf("connect %s port %u: %s", ip, port, strerror(err));
		close(fd);
		return -1;
	}
	{
		/* Every write is a whole command, pipelined group or data chunk.
		 * With Nagle, the small end-of-data write waits for the ACK of
		 * the body, which the server delays (it waits for more): 40 ms
		 * per message once a kept connection is past TCP's quick-ACK
		 * start. */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

static int starttls(struct conn *c, const char **error_r)
{
	if (mf_tls_client_ssl_new(c->p->tls, c->fd, c->p->host, &c->ssl, error_r) < 0)
		return -1;
	for (;;) {
		int r = SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (wait_fd(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, error_r) < 0)
				return -1;
			continue;
		}
		*error_r = mf_tls_error("STARTTLS handshake");
		return -1;
	}
}

static void tls_info(const struct conn *c, struct smtp_client_info *info_r)
{
	snprintf(info_r->tls_version, sizeof(info_r->tls_version), "%s", mf_tls_version(c->ssl));
	snprintf(info_r->tls_cipher, sizeof(info_r->tls_cipher), "%s", mf_tls_cipher(c->ssl));
}

/* Sends a line carrying credentials: traced only at traceauth. */
static int send_secret(struct conn *c, const char *line, const char **error_r)
{
	struct mf_buf b;
	int r;

	mf_log_trace(PKG, c->cid, "C", MF_TRACE_AUTH, line, strlen(line));
	mf_buf_init(&b, 0);
	mf_buf_append_str(&b, line);
	mf_buf_append(&b, "\r\n", 2);
	r = conn_write(c, b.data, b.len, error_r);
	explicit_bzero(b.data, b.len);
	mf_buf_free(&b);
	return r;
}

static int auth_failed(const struct smtp_client_reply *reply, const char **error_r)
{
	*error_r = mf_errorf("authentication failed: %u %s%s%s", reply->code, reply->enhanced,
			     *reply->enhanced != '\0' ? " " : "", mf_buf_cstr(&reply->text));
	return -1;
}

/* The mechanisms of the EHLO "AUTH" line(s) we know, as bits of enum
 * mf_sasl_mech; unknown names are skipped. */
static unsigned auth_mech_set(const struct smtp_client_reply *r)
{
	const char *p = mf_buf_cstr(&r->text), *nl;
	unsigned set = 0;

	for (; p != NULL; p = nl != NULL ? nl + 1 : NULL) {
		const char *end;
		nl = strchr(p, '\n');
		end = nl != NULL ? nl : p + strlen(p);
		/* "AUTH mech..." (RFC 4954 3), also the old "AUTH=mech...". */
		if (end - p < 5 || strncasecmp(p, "AUTH", 4) != 0 || (p[4] != ' ' && p[4] != '='))
			continue;
		for (const char *w = p + 5; w < end;) {
			const char *e = w;
			enum mf_sasl_mech m;
			while (e < end && *e != ' ')
				e++;
			if (e > w && mf_sasl_mech_parse(w, (size_t)(e - w), &m) == 0)
				set |= 1u << m;
			w = e < end ? e + 1 : end;
		}
	}
	return set;
}

/* Picks the strongest mechanism both sides can use (enum mf_sasl_mech
 * order; EXTERNAL needs a client certificate we do not have), a -PLUS
 * variant only with channel binding data.  "auth-mechanism login" in
 * domains.conf keeps LOGIN for servers that want it.  Returns 0 with
 * *mech_r or -1 with error_r. */
static int auth_pick(const struct conn *c, const struct mf_sasl_tls *tls,
		     enum mf_sasl_mech *mech_r, const char **error_r)
{
	bool cb = tls->unique_len > 0 || tls->exporter_len > 0;

	if (c->p->auth_login) {
		if ((c->auth_mechs & (1u << MF_SASL_LOGIN)) == 0) {
			*error_r = "the server does not offer AUTH LOGIN";
			return -1;
		}
		*mech_r = MF_SASL_LOGIN;
		return 0;
	}
	for (int m = MF_SASL_SCRAM_SHA_256_PLUS; m < MF_SASL_MECH_COUNT; m++) {
		if ((c->auth_mechs & (1u << m)) == 0)
			continue;
		if ((m == MF_SASL_SCRAM_SHA_256_PLUS || m == MF_SASL_SCRAM_SHA_1_PLUS) && !cb)
			continue;
		*mech_r = (enum mf_sasl_mech)m;
		return 0;
	}
	*error_r = "the server offers no AUTH mechanism we can use";
	return -1;
}

/* AUTH with the strongest common mechanism (RFC 4954 4, initial response
 * when the mechanism has one).  With SCRAM the server must prove it knows
 * the password too (RFC 5802 5: its signature is checked before we send
 * anything else).  A refusal leaves nothing decided: the message waits for
 * the admin to fix the credentials rather than bouncing. */
static int authenticate(struct conn *c, const struct smtp_client_ext *ext,
			struct smtp_client_reply *reply, const char **error_r)
{
	const char *user = c->p->auth_user;
	const char *pass = c->p->auth_password != NULL ? c->p->auth_password : "";
	struct mf_sasl_client *cl = NULL;
	struct mf_sasl_tls tls;
	enum mf_sasl_mech mech;
	const unsigned char *out;
	unsigned char *in = NULL;
	size_t out_len, in_len = 0;
	char *b64 = NULL, *line = NULL;
	bool has;
	int ret = -1;

	if (strlen(user) > SMTP_CLIENT_AUTH_MAX || strlen(pass) > SMTP_CLIENT_AUTH_MAX) {
		*error_r = "AUTH: user name or password too long";
		return -1;
	}
	mf_sasl_tls_from_ssl(c->ssl, &tls);
	if (auth_pick(c, &tls, &mech, error_r) < 0)
		return -1;
	if (mf_sasl_client_create(mech, user, pass, &tls, &cl, error_r) < 0)
		return -1;
	if (mf_sasl_client_initial(cl, &out, &out_len, &has, error_r) < 0)
		goto out;
	if (has) {
		b64 = mf_sasl_base64_encode(out, out_len);
		/* RFC 4954 4: "=" sends an empty initial response. */
		line = mf_xasprintf("AUTH %s %s", mf_sasl_mech_name(mech), b64[0] != '\0' ? b64 : "=");
		if (send_secret(c, line, error_r) < 0)
			goto out;
	} else if (send_cmd(c, error_r, "AUTH %s", mf_sasl_mech_name(mech)) < 0) {
		goto out;
	}
	for (unsigned steps = 0;; steps++) {
		if (read_reply(c, reply, error_r) < 0)
			goto out;
		if (reply->code != 334)
			break;
		if (steps >= MF_SASL_STEPS_MAX + 1) {
			*error_r = "AUTH: too many server challenges";
			goto out;
		}
		free(in);
		in = NULL;
		if (mf_sasl_base64_decode(mf_buf_cstr(&reply->text), reply->text.len, &in,
					  &in_len) < 0) {
			(void)send_cmd(c, error_r, "*");
			*error_r = "AUTH: the server's challenge is not base64";
			goto out;
		}
		/* LOGIN's prompts are only text for people, which some
		 * servers end with a NUL ("User Name\0", aiosmtpd): the client
		 * ignores them (draft-murchison-sasl-login 2). */
		if (mech == MF_SASL_LOGIN)
			in_len = 0;
		if (mf_sasl_client_step(cl, in, in_len, &out, &out_len, error_r) < 0) {
			const char *why = *error_r;
			/* RFC 4954 4: "*" cancels; the reply does not matter. */
			(void)send_cmd(c, error_r, "*");
			(void)read_reply(c, reply, error_r);
			*error_r = mf_errorf("AUTH %s: %s", mf_sasl_mech_name(mech), why);
			goto out;
		}
		if (b64 != NULL)
			explicit_bzero(b64, strlen(b64));
		free(b64);
		b64 = mf_sasl_base64_encode(out, out_len);
		if (send_secret(c, b64, error_r) < 0)
			goto out;
	}
	if (reply->code != 235) {
		ret = auth_failed(reply, error_r);
		goto out;
	}
	if ((mech == MF_SASL_SCRAM_SHA_256_PLUS || mech == MF_SASL_SCRAM_SHA_1_PLUS ||
	     mech == MF_SASL_SCRAM_SHA_256 || mech == MF_SASL_SCRAM_SHA_1) &&
	    mf_sasl_client_verified(cl) != 1) {
		/* 235 without the server's proof: it may not know the password
		 * at all (a man in the middle); nothing is sent to it. */
		*error_r = mf_errorf("AUTH %s: the server did not prove it knows the password",
				     mf_sasl_mech_name(mech));
		goto out;
	}
	mf_log_debug(PKG, c->cid, "authenticated", "mechanism=%s", mf_sasl_mech_name(mech));
	ret = 0;
out:
	if (b64 != NULL)
		explicit_bzero(b64, strlen(b64));
	if (line != NULL)
		explicit_bzero(line, strlen(line));
	if (in != NULL)
		explicit_bzero(in, in_len);
	free(in);
	free(b64);
	free(line);
	mf_sasl_client_free(&cl);
	return ret;
}

/* EHLO, falling back to HELO on a 5xx (RFC 5321 3.2). */
static int hello(struct conn *c, struct smtp_client_reply *reply, struct smtp_client_ext *ext,
		 const char **error_r)
{
	if (send_cmd(c, error_r, "EHLO %s", c->p->ehlo_name) < 0 ||
	    read_reply(c, reply, error_r) < 0)
		return -1;
	if (reply->code == 250) {
		smtp_client_ext_parse(reply, ext);
		c->auth_mechs = auth_mech_set(reply);
		return 0;
	}
	memset(ext, 0, sizeof(*ext));
	c->auth_mechs = 0;
	if (reply->code / 100 == 5) {
		if (send_cmd(c, error_r, "HELO %s", c->p->ehlo_name) < 0 ||
		    read_reply(c, reply, error_r) < 0)
			return -1;
		if (reply->code == 250)
			return 0;
	}
	*error_r = mf_errorf("%u %s%s%s", reply->code, reply->enhanced,
			     *reply->enhanced != '\0' ? " " : "", mf_buf_cstr(&reply->text));
	return -1;
}

/* Sends the message: dot-stuffed (RFC 5321 4.5.2), bare LF made CRLF,
 * ended by CRLF.CRLF. */
static int send_data(struct conn *c, const char **error_r)
{
	char in[DATA_CHUNK];
	struct mf_buf out;
	off_t off = 0;
	bool bol = true;
	char prev = '\n';
	int ret = -1;

	mf_buf_init(&out, 0);
	for (;;) {
		ssize_t n = pread(c->p->msg_fd, in, sizeof(in), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = mf_errorf("reading message: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		off += n;
		mf_buf_reset(&out);
		for (ssize_t i = 0; i < n; i++) {
			char ch = in[i];
			if (bol && ch == '.')
				mf_buf_append(&out, ".", 1);
			if (ch == '\n' && prev != '\r')
				mf_buf_append(&out, "\r", 1);
			mf_buf_append(&out, &ch, 1);
			bol = ch == '\n';
			prev = ch;
		}
		if (conn_write(c, out.data, out.len, error_r) < 0)
			goto out;
	}
	if (conn_write(c, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5, error_r) < 0)
		goto out;
	mf_log_trace(PKG, c->cid, "C", MF_TRACE_DATA, "(message)", 9);
	ret = 0;
out:
	mf_buf_free(&out);
	return ret;
}

static void set_pending(struct smtp_client_rcpt *rcpts, size_t *idx, size_t n, bool perm,
			unsigned code, const char *enhanced, const char *text)
{
	for (size_t i = 0; i < n; i++)
		smtp_client_rcpt_set(&rcpts[idx[i]], false, perm, code, enhanced, text);
}

/* One transaction for up to max recipients that are not done.  Returns 0
 * when the connection can take another transaction, -1 when it is
 * unusable. */
static int transaction(struct conn *c, const struct smtp_client_ext *ext,
		       struct smtp_client_rcpt *rcpts, size_t n, unsigned max,
		       struct smtp_client_reply *reply, const char **error_r)
{
	size_t *batch = mf_xcalloc(n + 1, sizeof(*batch));
	bool *accepted = mf_xcalloc(n + 1, sizeof(*accepted));
	size_t nb = 0, naccepted = 0, nreplied = 0;
	bool pipe = ext->pipelining;
	struct mf_buf params;
	const char *err2;
	int ret = -1;

	mf_buf_init(&params, 256);
	for (size_t i = 0; i < n && nb < max; i++)
		if (!rcpts[i].done)
			batch[nb++] = i;
	if (nb == 0) {
		ret = 0;
		goto out;
	}
	if (c->p->has_8bit && ext->eightbitmime)
		mf_buf_append_str(&params, " BODY=8BITMIME");
	if (c->p->smtputf8)
		mf_buf_append_str(&params, " SMTPUTF8");
	if (c->p->requiretls)
		mf_buf_append_str(&params, " REQUIRETLS");
	if (ext->size)
		mf_buf_appendf(&params, " SIZE=%llu", (unsigned long long)c->p->size);

	if (pipe) {
		/* RFC 2920: the whole group in one write.  A write error is not
		 * the end yet: a server that refuses MAIL and hangs up makes the
		 * write fail, and its reply is still there to read. */
		struct mf_buf cmds;
		mf_buf_init(&cmds, 0);
		mf_buf_appendf(&cmds, "MAIL FROM:<%s>%s\r\n", c->p->mail_from, mf_buf_cstr(&params));
		for (size_t i = 0; i < nb; i++)
			mf_buf_appendf(&cmds, "RCPT TO:<%s>\r\n", rcpts[batch[i]].address);
		mf_buf_append_str(&cmds, "DATA\r\n");
		mf_log_trace(PKG, c->cid, "C", MF_TRACE_PROTO, cmds.data, cmds.len - 2);
		(void)conn_write(c, cmds.data, cmds.len, &err2);
		mf_buf_free(&cmds);
	} else if (send_cmd(c, error_r, "MAIL FROM:<%s>%s", c->p->mail_from,
			    mf_buf_cstr(&params)) < 0) {
		goto out;
	}
	if (read_reply(c, reply, error_r) < 0)
		goto out;
	if (reply->code / 100 != 2) {
		/* The MAIL reply is every recipient's result, even when the
		 * server then hangs up on the pipelined rest. */
		set_pending(rcpts, batch, nb, reply->code / 100 == 5, reply->code, reply->enhanced,
			    mf_buf_cstr(&reply->text));
		if (pipe) {
			for (size_t i = 0; i <= nb; i++)
				if (read_reply(c, reply, &err2) < 0)
					break;
		}
		(void)send_cmd(c, &err2, "RSET");
		ret = -1;
		*error_r = "MAIL refused";
		goto out_done;
	}
	for (size_t i = 0; i < nb; i++) {
		struct smtp_client_rcpt *rc = &rcpts[batch[i]];
		if (!pipe && send_cmd(c, error_r, "RCPT TO:<%s>", rc->address) < 0)
			goto out_partial;
		if (read_reply(c, reply, error_r) < 0)
			goto out_partial;
		nreplied++;
		if (reply->code / 100 == 2) {
			accepted[i] = true;
			naccepted++;
		} else if (naccepted > 0 && smtp_client_reply_too_many_rcpts(reply->code)) {
			/* Left not done: the next transaction takes it. */
		} else {
			set_from_reply(rc, reply);
		}
	}
	if (!pipe) {
		if (naccepted == 0) {
			(void)send_cmd(c, &err2, "RSET");
			(void)read_reply(c, reply, &err2);
			ret = 0;
			goto out;
		}
		if (send_cmd(c, error_r, "DATA") < 0)
			goto out_partial;
	}
	if (read_reply(c, reply, error_r) < 0)
		goto out_partial;
	if (reply->code != 354) {
		for (size_t i = 0; i < nb; i++)
			if (accepted[i])
				set_from_reply(&rcpts[batch[i]], reply);
		ret = 0;
		goto out;
	}
	if (naccepted == 0) {
		/* RFC 2920 3.1: DATA was accepted although no RCPT was: send an
		 * empty message, which the server must reject. */
		(void)conn_write(c, ".\r\n", 3, &err2);
		(void)read_reply(c, reply, &err2);
		ret = 0;
		goto out;
	}
	c->timeout_ms = c->p->data_timeout_ms;
	if (send_data(c, error_r) < 0 || read_reply(c, reply, error_r) < 0) {
		c->timeout_ms = c->p->timeout_ms;
		goto out_partial;
	}
	c->timeout_ms = c->p->timeout_ms;
	for (size_t i = 0; i < nb; i++)
		if (accepted[i])
			set_from_reply(&rcpts[batch[i]], reply);
	ret = 0;
	goto out;
out_partial:
	/* The connection broke within the transaction: recipients that got a
	 * refusal keep it; accepted ones were not delivered. */
	for (size_t i = 0; i < nb; i++)
		if (accepted[i])
			smtp_client_rcpt_set(&rcpts[batch[i]], false, false, 0, "", *error_r);
	ret = -1;
out_done:
out:
	mf_buf_free(&params);
	free(batch);
	free(accepted);
	return ret;
}

/* An idle connection between two calls of smtp_client_deliver_reuse. */
struct smtp_client_session {
	struct conn c;
	struct smtp_client_ext ext;
	struct smtp_client_info info;
	unsigned uses;  /* messages sent on it so far */
};

/* Ends a connection: QUIT (when polite) under a short timeout, then the
 * TLS session and the socket. */
static void conn_end(struct conn *c, bool quit, struct smtp_client_reply *reply)
{
	const char *e2;

	if (quit && c->fd >= 0 && send_cmd(c, &e2, "QUIT") == 0)
		(void)read_reply(c, reply, &e2);
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* No callback may run for an idle session: the caller's context is gone. */
static const struct smtp_client_params idle_params = {
	.timeout_ms = SMTP_CLIENT_IDLE_QUIT_TIMEOUT_MS,
	.data_timeout_ms = SMTP_CLIENT_IDLE_QUIT_TIMEOUT_MS,
};

void smtp_client_session_close(struct smtp_client_session **session, bool quit)
{
	struct smtp_client_session *s = *session;
	struct smtp_client_reply reply;

	if (s == NULL)
		return;
	*session = NULL;
	smtp_client_reply_init(&reply);
	s->c.p = &idle_params;
	s->c.cid = NULL;
	s->c.timeout_ms = SMTP_CLIENT_IDLE_QUIT_TIMEOUT_MS;
	conn_end(&s->c, quit, &reply);
	smtp_client_reply_free(&reply);
	free(s);
}

/* Readies a kept connection for a new transaction: RSET (RFC 5321
 * 4.1.1.5) must get its 250; anything else (the server closed the idle
 * connection, or said 421 meanwhile) makes it unusable.  Returns 0 or -1. */
static int session_resume(struct smtp_client_session *s, const struct smtp_client_params *p,
			  struct smtp_client_reply *reply)
{
	const char *e2;

	s->c.p = p;
	s->c.cid = p->cid;
	s->c.timeout_ms = p->timeout_ms;
	if (send_cmd(&s->c, &e2, "RSET") < 0 || read_reply(&s->c, reply, &e2) < 0 ||
	    reply->code != 250) {
		mf_log_debug(PKG, p->cid, "kept connection not usable, opening a new one",
			     "host=%s ip=%s", p->host != NULL ? p->host : "", p->ip);
		return -1;
	}
	return 0;
}

int smtp_client_deliver(const struct smtp_client_params *p, struct smtp_client_rcpt *rcpts,
			size_t n, struct smtp_client_info *info_r, const char **error_r)
{
	return smtp_client_deliver_reuse(p, NULL, rcpts, n, info_r, error_r);
}

int smtp_client_deliver_reuse(const struct smtp_client_params *p,
			      struct smtp_client_session **session,
			      struct smtp_client_rcpt *rcpts, size_t n,
			      struct smtp_client_info *info_r, const char **error_r)
{
	struct smtp_client_params params = *p;
	struct smtp_client_session *kept = NULL;
	struct conn c;
	struct smtp_client_reply reply;
	struct smtp_client_ext ext;
	unsigned max, uses = 0;
	size_t done_before = 0, done_after = 0;
	int ret = -1, r = 0;

	if (params.timeout_ms == 0)
		params.timeout_ms = SMTP_CLIENT_TIMEOUT_MS;
	if (params.data_timeout_ms == 0)
		params.data_timeout_ms = SMTP_CLIENT_DATA_TIMEOUT_MS;
	p = &params;
	for (size_t i = 0; i < n; i++)
		done_before += rcpts[i].done;
	memset(info_r, 0, sizeof(*info_r));
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.p = p;
	c.cid = p->cid;
	c.timeout_ms = p->timeout_ms;
	smtp_client_reply_init(&reply);
	if (session != NULL && *session != NULL) {
		kept = *session;
		*session = NULL;
		if (session_resume(kept, p, &reply) == 0) {
			/* Nothing was decided on it yet, so a failed resume just
			 * means a fresh connection, not a failed attempt. */
			c = kept->c;
			ext = kept->ext;
			*info_r = kept->info;
			uses = kept->uses;
			free(kept);
			kept = NULL;
			goto ready;
		}
		smtp_client_session_close(&kept, false);
	}
	if (p->socks5_ip != NULL) {
		/* The proxy is the TCP peer; the tunnel goes to ip:port. */
		c.fd = tcp_connect(p->socks5_ip, p->socks5_port, error_r);
		if (c.fd < 0)
			goto out;
		if (socks5_connect(c.fd, p->ip, p->port, p->socks5_user, p->socks5_password,
				   SMTP_CLIENT_CONNECT_TIMEOUT_MS, error_r) < 0)
			goto out;
	} else {
		c.fd = tcp_connect(p->ip, p->port, error_r);
		if (c.fd < 0)
			goto out;
	}
	if (p->implicit_tls) {
		if (p->tls == NULL) {
			*error_r = "implicit TLS without a TLS context";
			goto out;
		}
		if (starttls(&c, error_r) < 0)
			goto out;
		tls_info(&c, info_r);
	}
	if (read_reply(&c, &reply, error_r) < 0)
		goto out;
	if (reply.code != 220) {
		*error_r = mf_errorf("greeting: %u %s", reply.code, mf_buf_cstr(&reply.text));
		goto out;
	}
	if (hello(&c, &reply, &ext, error_r) < 0)
		goto out;
	if (c.ssl == NULL && ext.starttls && p->tls != NULL) {
		if (send_cmd(&c, error_r, "STARTTLS") < 0 || read_reply(&c, &reply, error_r) < 0)
			goto out;
		if (reply.code == 220) {
			/* Anything buffered now came before the handshake and was
			 * not protected: drop it (RFC 3207 6). */
			c.rlen = c.roff = 0;
			if (starttls(&c, error_r) < 0)
				goto out;
			tls_info(&c, info_r);
			if (hello(&c, &reply, &ext, error_r) < 0)
				goto out;
		}
	}
	if (c.ssl == NULL && (p->require_tls || p->auth_user != NULL)) {
		/* A password never goes in the clear, and a transport that asks
		 * for TLS does not fall back (RFC 8314 for submission). */
		*error_r = ext.starttls ? "STARTTLS was refused; this transport requires TLS" :
			   "the server offers no STARTTLS; this transport requires TLS";
		goto out;
	}
	if (p->auth_user != NULL && authenticate(&c, &ext, &reply, error_r) < 0)
		goto out;
ready:
	uses++;
	if (p->requiretls && (c.ssl == NULL || !ext.requiretls)) {
		/* RFC 8689 4.2.1: never send such a message in the clear or to
		 * a server that would not keep the requirement going. */
		for (size_t i = 0; i < n; i++)
			if (!rcpts[i].done)
				smtp_client_rcpt_set(&rcpts[i], false, true, 550, "5.7.30",
						     c.ssl == NULL ?
						     "REQUIRETLS: the receiving server offers no TLS" :
						     "REQUIRETLS: the receiving server does not support "
						     "REQUIRETLS");
		ret = 0;
		goto quit;
	}
	if (p->smtputf8 && !ext.smtputf8) {
		/* RFC 6531 3.5: nothing we can do; the sender has to know. */
		for (size_t i = 0; i < n; i++)
			if (!rcpts[i].done)
				smtp_client_rcpt_set(&rcpts[i], false, true, 550, "5.6.7",
						     "the message needs SMTPUTF8, which the "
						     "receiving server does not support");
		ret = 0;
		goto quit;
	}
	if (ext.size && ext.size_max > 0 && p->size > ext.size_max) {
		char *t = mf_xasprintf("the message (%llu bytes) is larger than the receiving "
				       "server accepts (%llu bytes)", (unsigned long long)p->size,
				       (unsigned long long)ext.size_max);
		for (size_t i = 0; i < n; i++)
			if (!rcpts[i].done)
				smtp_client_rcpt_set(&rcpts[i], false, true, 552, "5.3.4", t);
		free(t);
		ret = 0;
		goto quit;
	}
	max = ext.rcptmax > 0 && ext.rcptmax < SMTP_CLIENT_RCPTS_PER_TX ? ext.rcptmax :
	      SMTP_CLIENT_RCPTS_PER_TX;
	for (unsigned tx = 0; tx < SMTP_CLIENT_TX_MAX; tx++) {
		size_t pending_before = 0, pending_after = 0;
		for (size_t i = 0; i < n; i++)
			pending_before += !rcpts[i].done;
		if (pending_before == 0)
			break;
		r = transaction(&c, &ext, rcpts, n, max, &reply, error_r);
		if (r < 0)
			break;
		/* Another transaction for the rest (RCPTMAX, "too many
		 * recipients"), as long as each one decides something. */
		for (size_t i = 0; i < n; i++)
			pending_after += !rcpts[i].done;
		if (pending_after == pending_before)
			break;
	}
	ret = 0;
	if (r < 0)
		goto out;  /* no QUIT on a broken connection */
quit:
	if (session != NULL && uses < SMTP_CLIENT_REUSE_MAX && c.rlen == c.roff) {
		/* Healthy, and nothing unasked-for pending from the server:
		 * the caller may send its next message over it. */
		struct smtp_client_session *s = mf_xcalloc(1, sizeof(*s));
		s->c = c;
		s->c.p = &idle_params;
		s->c.cid = NULL;
		s->ext = ext;
		s->info = *info_r;
		s->uses = uses;
		*session = s;
		c.fd = -1;
		c.ssl = NULL;
	} else {
		conn_end(&c, true, &reply);
	}
out:
	conn_end(&c, false, &reply);
	smtp_client_reply_free(&reply);
	/* Answers for some recipients are results even if the connection
	 * broke afterwards. */
	for (size_t i = 0; i < n; i++)
		done_after += rcpts[i].done;
	if (ret < 0 && done_after > done_before)
		ret = 0;
	return ret;
}
