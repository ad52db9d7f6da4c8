#include "net.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

/* Pause after accept() fails for lack of descriptors or memory, so that the
 * loop does not spin while connections wait in the backlog. */
#define MF_NET_ACCEPT_BACKOFF_MS 100
#define MF_NET_BACKLOG 511

struct listener {
	struct mf_net_server *server;
	int fd;
	enum mf_net_mode mode;
	bool proxy;
	unsigned port;
	char *addr;              /* as given to listen, for logs */
	pthread_t thread;
};

struct mf_net_server {
	char *service;
	unsigned max_conns;
	char *busy_reply;
	size_t busy_len;
	mf_net_handler_fn *handler;
	void *ctx;
	unsigned timeout_ms;
	SSL_CTX *tls_ctx;

	pthread_mutex_t lock;
	pthread_cond_t cond;     /* signalled when a connection ends */
	struct listener listeners[MF_NET_LISTENERS_MAX];
	size_t nlisteners;
	bool stopping;           /* listeners closed or being closed */
	int wake[2];             /* pipe: readable once accept loops must stop */
	struct mf_conn *conns;   /* open connections, for drain's shutdown(2) */
	atomic_bool draining;
	struct mf_net_stats stats;
};

struct mf_conn {
	struct mf_net_server *server;
	struct mf_conn *prev, *next;
	int fd;
	enum mf_net_mode mode;
	bool proxy;
	SSL *ssl;
	unsigned timeout_ms;
	bool closed;

	char *rbuf;
	size_t rcap, rstart, rend;
	bool last_crlf;

	struct sockaddr_storage remote, local;
	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	unsigned remote_port, local_port;
	char cid[2 * MF_NET_CID_BYTES + 1];
};

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void ignore_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* strerror text with a lower-case first letter, as our error texts are. */
static const char *errno_text(int err)
{
	char buf[128];
	const char *s = strerror_r(err, buf, sizeof(buf));
	char c = s[0];

	if (c >= 'A' && c <= 'Z' && s[1] >= 'a' && s[1] <= 'z')
		c = (char)(c - 'A' + 'a');
	return mf_errorf("%c%s", c, s[0] != '\0' ? s + 1 : "");
}

/* --- addresses ------------------------------------------------------------ */

/* Turns an IPv4-mapped IPv6 address into plain IPv4 so that limits and logs
 * see one form per client. */
static void normalise_addr(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

static void addr_text(const struct sockaddr_storage *ss, char ip[INET6_ADDRSTRLEN],
		      unsigned *port_r)
{
	ip[0] = '\0';
	*port_r = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, INET6_ADDRSTRLEN);
		*port_r = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, INET6_ADDRSTRLEN);
		*port_r = ntohs(sin6->sin6_port);
	} else {
		snprintf(ip, INET6_ADDRSTRLEN, "unknown");
	}
}

static void conn_set_addrs(struct mf_conn *conn, const struct sockaddr_storage *remote,
			   const struct sockaddr_storage *local)
{
	conn->remote = *remote;
	conn->local = *local;
	normalise_addr(&conn->remote);
	normalise_addr(&conn->local);
	addr_text(&conn->remote, conn->remote_ip, &conn->remote_port);
	addr_text(&conn->local, conn->local_ip, &conn->local_port);
}

/* Parses "1.2.3.4:25" or "[::1]:25" into ss. */
static int parse_listen_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len_r,
			     const char **error_r)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s, *host_s;
	size_t host_len;
	unsigned long port = 0;
	bool v6 = addr[0] == '[';

	if (v6) {
		const char *close = strchr(addr, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = "expected [ipv6]:port";
			return -1;
		}
		host_s = addr + 1;
		host_len = (size_t)(close - host_s);
		port_s = close + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		if (colon == NULL) {
			*error_r = "expected ipv4:port or [ipv6]:port";
			return -1;
		}
		host_s = addr;
		host_len = (size_t)(colon - addr);
		port_s = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(host)) {
		*error_r = "invalid IP address";
		return -1;
	}
	memcpy(host, host_s, host_len);
	host[host_len] = '\0';
	if (port_s[0] == '\0' || strlen(port_s) > 5) {
		*error_r = "invalid port";
		return -1;
	}
	for (const char *p = port_s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*error_r = "invalid port";
			return -1;
		}
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port > 65535) {
		*error_r = "invalid port";
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*error_r = "invalid IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*error_r = "invalid IPv4 address (IPv6 needs [brackets])";
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len_r = sizeof(*sin);
	}
	return 0;
}

/* --- low-level I/O with deadlines ----------------------------------------- */

/* Waits until fd is ready for events or deadline passes.
 * Returns 0, MF_CONN_TIMEOUT or MF_CONN_ERROR. */
static int wait_fd(int fd, short events, int64_t deadline, const char **error_r)
{
	struct pollfd pfd;

	for (;;) {
		int64_t left = deadline - now_ms();
		int rc;
		if (left <= 0)
			return MF_CONN_TIMEOUT;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc > 0)
			return 0;   /* also on POLLHUP/POLLERR: the next call says what */
		if (rc == 0)
			return MF_CONN_TIMEOUT;
		if (errno != EINTR) {
			*error_r = mf_errorf("poll: %s", errno_text(errno));
			return MF_CONN_ERROR;
		}
	}
}

/* Handles a failed SSL call: waits when OpenSSL wants I/O (returns 0 to
 * retry), else returns MF_CONN_EOF or MF_CONN_ERROR. */
static int ssl_retry(struct mf_conn *conn, int rc, const char *what, int64_t deadline,
		     const char **error_r)
{
	int err = SSL_get_error(conn->ssl, rc);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(conn->fd, POLLIN, deadline, error_r);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(conn->fd, POLLOUT, deadline, error_r);
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return MF_CONN_EOF;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == EPIPE) {
			ERR_clear_error();
			return MF_CONN_EOF;
		}
		*error_r = mf_errorf("tls %s: %s", what, errno_text(errno));
		ERR_clear_error();
		return MF_CONN_ERROR;
	default:
		*error_r = mf_tls_error(mf_errorf("tls %s", what));
		return MF_CONN_ERROR;
	}
}

/* Reads at most size bytes from the socket or TLS.
 * Returns > 0, MF_CONN_EOF, MF_CONN_TIMEOUT or MF_CONN_ERROR. */
static ssize_t conn_recv(struct mf_conn *conn, void *buf, size_t size, int64_t deadline,
			 const char **error_r)
{
	if (conn->closed)
		return MF_CONN_EOF;
	for (;;) {
		int rc;
		if (conn->ssl != NULL) {
			size_t n = 0;
			ERR_clear_error();
			errno = 0;
			if (SSL_read_ex(conn->ssl, buf, size, &n) == 1)
				return (ssize_t)n;
			rc = ssl_retry(conn, 0, "read", deadline, error_r);
		} else {
			ssize_t n = recv(conn->fd, buf, size, 0);
			if (n > 0)
				return n;
			if (n == 0)
				return MF_CONN_EOF;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*error_r = mf_errorf("read: %s", errno_text(errno));
				return MF_CONN_ERROR;
			}
			rc = wait_fd(conn->fd, POLLIN, deadline, error_r);
		}
		if (rc < 0)
			return rc;
	}
}

/* Returns 0, MF_CONN_TIMEOUT or MF_CONN_ERROR. */
static int conn_send(struct mf_conn *conn, const void *data, size_t len, int64_t deadline,
		     const char **error_r)
{
	const unsigned char *p = data;

	if (conn->closed) {
		*error_r = "write: connection closed";
		return MF_CONN_ERROR;
	}
	while (len > 0) {
		int rc;
		if (conn->ssl != NULL) {
			size_t n = 0;
			ERR_clear_error();
			errno = 0;
			if (SSL_write_ex(conn->ssl, p, len, &n) == 1) {
				p += n;
				len -= n;
				continue;
			}
			rc = ssl_retry(conn, 0, "write", deadline, error_r);
			if (rc == MF_CONN_EOF) {
				*error_r = "write: connection closed by peer";
				return MF_CONN_ERROR;
			}
		} else {
			ssize_t n = send(conn->fd, p, len, MSG_NOSIGNAL);
			if (n >= 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*error_r = mf_errorf("write: %s", errno_text(errno));
				return MF_CONN_ERROR;
			}
			rc = wait_fd(conn->fd, POLLOUT, deadline, error_r);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void count(struct mf_net_server *server, uint64_t *counter)
{
	pthread_mutex_lock(&server->lock);
	(*counter)++;
	pthread_mutex_unlock(&server->lock);
}

/* Runs the server-side handshake on conn->fd.  Returns 0, or -1 with
 * error_r (counted as a TLS failure). */
static int tls_accept(struct mf_conn *conn, const char **error_r)
{
	struct mf_net_server *server = conn->server;
	int64_t deadline = now_ms() + conn->timeout_ms;
	SSL *ssl;

	ERR_clear_error();
	ssl = SSL_new(server->tls_ctx);
	if (ssl == NULL || SSL_set_fd(ssl, conn->fd) != 1) {
		*error_r = mf_tls_error("tls: creating connection");
		SSL_free(ssl);
		goto fail;
	}
	SSL_set_accept_state(ssl);
	conn->ssl = ssl;
	for (;;) {
		int rc;
		ERR_clear_error();
		errno = 0;
		rc = SSL_accept(ssl);
		if (rc == 1)
			return 0;
		rc = ssl_retry(conn, rc, "handshake", deadline, error_r);
		if (rc == MF_CONN_TIMEOUT)
			*error_r = "tls handshake: timeout";
		else if (rc == MF_CONN_EOF)
			*error_r = "tls handshake: connection closed";
		if (rc < 0)
			break;
	}
	conn->ssl = NULL;
	SSL_free(ssl);
fail:
	/* Half a handshake leaves the stream unusable. */
	conn->closed = true;
	count(server, &server->stats.tls_failures_total);
	return -1;
}

/* Reads the PROXY header without taking a byte past it (peek, parse, then
 * read exactly what the parser consumed), so that a TLS ClientHello that
 * follows stays in the socket for OpenSSL.  Returns 0 or -1 with error_r. */
static int read_proxy(struct mf_conn *conn, const char **error_r)
{
	struct mf_proxy_parser parser;
	struct mf_proxy_header hdr;
	unsigned char peek[MF_PROXY_MAX];
	int64_t deadline = now_ms() + conn->timeout_ms;
	int ret = 1;

	mf_proxy_parser_init(&parser);
	while (ret == 1) {
		ssize_t n = recv(conn->fd, peek, sizeof(peek), MSG_PEEK);
		size_t consumed = 0, got = 0;
		if (n == 0) {
			*error_r = "connection closed before the PROXY header";
			return -1;
		}
		if (n < 0) {
			int rc;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				*error_r = mf_errorf("reading PROXY header: %s", errno_text(errno));
				return -1;
			}
			rc = wait_fd(conn->fd, POLLIN, deadline, error_r);
			if (rc == MF_CONN_TIMEOUT)
				*error_r = "timeout reading the PROXY header";
			if (rc < 0)
				return -1;
			continue;
		}
		ret = mf_proxy_parser_feed(&parser, peek, (size_t)n, &consumed, &hdr, error_r);
		if (ret < 0)
			return -1;
		/* The bytes are already in the socket buffer: this does not block. */
		while (got < consumed) {
			ssize_t m = recv(conn->fd, peek, consumed - got, 0);
			if (m <= 0 && !(m < 0 && errno == EINTR)) {
				*error_r = "reading PROXY header: short read after peek";
				return -1;
			}
			if (m > 0)
				got += (size_t)m;
		}
	}
	if (!hdr.local)
		conn_set_addrs(conn, &hdr.src, &hdr.dst);
	return 0;
}

/* --- connection threads ---------------------------------------------------- */

static void make_cid(char cid[2 * MF_NET_CID_BYTES + 1])
{
	static const char hex[] = "0123456789abcdef";
	static atomic_uint_fast64_t fallback;
	unsigned char b[MF_NET_CID_BYTES];
	ssize_t n;

	do
		n = getrandom(b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(b) && RAND_bytes(b, sizeof(b)) != 1) {
		/* A log id only needs to be distinct, not secret. */
		uint64_t v = (uint64_t)now_ms() ^ (atomic_fetch_add(&fallback, 1) << 40);
		memcpy(b, &v, sizeof(b) < sizeof(v) ? sizeof(b) : sizeof(v));
	}
	for (size_t i = 0; i < sizeof(b); i++) {
		cid[2 * i] = hex[b[i] >> 4];
		cid[2 * i + 1] = hex[b[i] & 0x0f];
	}
	cid[2 * MF_NET_CID_BYTES] = '\0';
}

static void conn_finish(struct mf_conn *conn)
{
	struct mf_net_server *server = conn->server;

	if (conn->ssl != NULL) {
		if (!conn->closed) {
			ERR_clear_error();
			SSL_shutdown(conn->ssl);   /* close_notify, best effort */
		}
		SSL_free(conn->ssl);
		ERR_clear_error();
	}
	pthread_mutex_lock(&server->lock);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		server->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	/* Closed under the lock: drain must never shutdown(2) a reused fd. */
	close(conn->fd);
	server->stats.current--;
	pthread_cond_broadcast(&server->cond);
	pthread_mutex_unlock(&server->lock);
	/* server may be gone from here on */
	free(conn->rbuf);
	free(conn);
}

static void *conn_main(void *arg)
{
	struct mf_conn *conn = arg;
	struct mf_net_server *server = conn->server;
	struct sockaddr_storage remote, local;
	socklen_t rlen = sizeof(remote), llen = sizeof(local);
	const char *error = NULL;

	memset(&remote, 0, sizeof(remote));
	memset(&local, 0, sizeof(local));
	getpeername(conn->fd, (struct sockaddr *)&remote, &rlen);
	getsockname(conn->fd, (struct sockaddr *)&local, &llen);
	conn_set_addrs(conn, &remote, &local);
	make_cid(conn->cid);

	if (conn->proxy && read_proxy(conn, &error) < 0) {
		count(server, &server->stats.proxy_errors_total);
		mf_log_warn(server->service, conn->cid, "bad PROXY header", "remote=%s err=%s",
			    conn->remote_ip, error);
		goto out;
	}
	mf_log_debug(server->service, conn->cid, "new connection", "remote=%s port=%u local=%s:%u",
		     conn->remote_ip, conn->remote_port, conn->local_ip, conn->local_port);
	if (conn->mode == MF_NET_TLS && tls_accept(conn, &error) < 0) {
		mf_log_debug(server->service, conn->cid, "tls handshake failed", "remote=%s err=%s",
			     conn->remote_ip, error);
		goto out;
	}
	server->handler(conn, server->ctx);
out:
	conn_finish(conn);
	return NULL;
}

static void refuse(struct listener *l, int fd)
{
	struct mf_net_server *server = l->server;

	/* Never block the accept loop on a slow client: one try, no wait. */
	if (server->busy_reply != NULL && l->mode != MF_NET_TLS)
		(void)send(fd, server->busy_reply, server->busy_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void handle_accepted(struct listener *l, int fd)
{
	struct mf_net_server *server = l->server;
	struct mf_conn *conn;
	pthread_attr_t attr;
	pthread_t thread;
	int err;

	pthread_mutex_lock(&server->lock);
	server->stats.accepted_total++;
	if (server->stats.current >= server->max_conns) {
		server->stats.refused_busy_total++;
		pthread_mutex_unlock(&server->lock);
		mf_log_info(server->service, NULL, "too many connections, refused", "max=%u",
			    server->max_conns);
		refuse(l, fd);
		return;
	}
	conn = mf_xcalloc(1, sizeof(*conn));
	conn->server = server;
	conn->fd = fd;
	conn->mode = l->mode;
	conn->proxy = l->proxy;
	conn->timeout_ms = server->timeout_ms;
	conn->next = server->conns;
	if (server->conns != NULL)
		server->conns->prev = conn;
	server->conns = conn;
	server->stats.current++;
	pthread_mutex_unlock(&server->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&thread, &attr, conn_main, conn);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		mf_log_error(server->service, NULL, "cannot start connection thread", "err=%s",
			     errno_text(err));
		pthread_mutex_lock(&server->lock);
		server->stats.refused_busy_total++;
		pthread_mutex_unlock(&server->lock);
		if (server->busy_reply != NULL && l->mode != MF_NET_TLS)
			(void)send(fd, server->busy_reply, server->busy_len,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
		conn_finish(conn);
	}
}

static void *accept_main(void *arg)
{
	struct listener *l = arg;
	struct mf_net_server *server = l->server;
	struct pollfd pfd[2];

	for (;;) {
		int fd, rc;
		pfd[0].fd = l->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = server->wake[0];
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		rc = poll(pfd, 2, -1);
		if (rc < 0) {
			if (errno != EINTR) {
				mf_log_error(server->service, NULL, "poll on listener", "err=%s",
					     errno_text(errno));
				poll(&pfd[1], 1, MF_NET_ACCEPT_BACKOFF_MS);
			}
			continue;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents == 0)
			continue;
		/* Non-blocking: every read and write waits in poll() with a deadline. */
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED || errno == EPROTO)
				continue;
			mf_log_error(server->service, NULL, "accept", "addr=%s err=%s", l->addr,
				     errno_text(errno));
			poll(&pfd[1], 1, MF_NET_ACCEPT_BACKOFF_MS);
			continue;
		}
		handle_accepted(l, fd);
	}
	return NULL;
}

/* --- server ---------------------------------------------------------------- */

int mf_net_server_create(const struct mf_net_settings *settings,
			 struct mf_net_server **server_r, const char **error_r)
{
	struct mf_net_server *server;
	pthread_condattr_t cattr;

	*server_r = NULL;
	if (settings->service == NULL || settings->service[0] == '\0' ||
	    settings->handler == NULL || settings->max_conns == 0 ||
	    settings->timeout_ms == 0) {
		*error_r = "net: service, handler, max_conns and timeout_ms are required";
		return -1;
	}
	if (settings->busy_reply != NULL && strlen(settings->busy_reply) > MF_NET_BUSY_MAX) {
		*error_r = mf_errorf("%s: busy reply longer than %d bytes", settings->service,
				     MF_NET_BUSY_MAX);
		return -1;
	}
	pthread_once(&sigpipe_once, ignore_sigpipe);

	server = mf_xcalloc(1, sizeof(*server));
	server->service = mf_xstrdup(settings->service);
	server->max_conns = settings->max_conns;
	if (settings->busy_reply != NULL) {
		server->busy_reply = mf_xstrdup(settings->busy_reply);
		server->busy_len = strlen(server->busy_reply);
	}
	server->handler = settings->handler;
	server->ctx = settings->ctx;
	server->timeout_ms = settings->timeout_ms;
	server->tls_ctx = settings->tls_ctx;
	if (pipe2(server->wake, O_CLOEXEC) < 0) {
		*error_r = mf_errorf("%s: pipe: %s", settings->service, errno_text(errno));
		free(server->busy_reply);
		free(server->service);
		free(server);
		return -1;
	}
	pthread_mutex_init(&server->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&server->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	atomic_init(&server->draining, false);
	*server_r = server;
	return 0;
}

static const char *mode_name(enum mf_net_mode mode)
{
	switch (mode) {
	case MF_NET_PLAIN:
		return "plain";
	case MF_NET_TLS:
		return "tls";
	case MF_NET_STARTTLS:
		return "starttls";
	}
	return "unknown";
}

int mf_net_server_listen(struct mf_net_server *server, const char *addr,
			 enum mf_net_mode mode, bool proxy, const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t ss_len = 0;
	struct listener *l;
	const char *error;
	int fd = -1, one = 1, err;

	if (parse_listen_addr(addr, &ss, &ss_len, &error) < 0) {
		*error_r = mf_errorf("%s: listen %s: %s", server->service, addr, error);
		return -1;
	}
	if (mode != MF_NET_PLAIN && server->tls_ctx == NULL) {
		*error_r = mf_errorf("%s: listen %s: %s needs a TLS certificate", server->service,
				     addr, mode_name(mode));
		return -1;
	}
	pthread_mutex_lock(&server->lock);
	if (server->stopping || server->nlisteners == MF_NET_LISTENERS_MAX) {
		pthread_mutex_unlock(&server->lock);
		*error_r = mf_errorf("%s: listen %s: %s", server->service, addr,
				     server->stopping ? "server is draining" : "too many listeners");
		return -1;
	}
	pthread_mutex_unlock(&server->lock);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* Separate v4 and v6 listeners; no v4-mapped surprises. */
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, ss_len) < 0 || listen(fd, MF_NET_BACKLOG) < 0)
		goto fail;
	ss_len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0)
		goto fail;

	pthread_mutex_lock(&server->lock);
	if (server->stopping || server->nlisteners == MF_NET_LISTENERS_MAX) {
		pthread_mutex_unlock(&server->lock);
		close(fd);
		*error_r = mf_errorf("%s: listen %s: server is draining", server->service, addr);
		return -1;
	}
	l = &server->listeners[server->nlisteners];
	l->server = server;
	l->fd = fd;
	l->mode = mode;
	l->proxy = proxy;
	l->addr = mf_xstrdup(addr);
	l->port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) :
		  ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	err = pthread_create(&l->thread, NULL, accept_main, l);
	if (err != 0) {
		pthread_mutex_unlock(&server->lock);
		free(l->addr);
		close(fd);
		*error_r = mf_errorf("%s: listen %s: starting accept thread: %s", server->service,
				     addr, errno_text(err));
		return -1;
	}
	server->nlisteners++;
	pthread_mutex_unlock(&server->lock);
	mf_log_info(server->service, NULL, "listening", "addr=%s port=%u mode=%s proxy=%s", addr,
		    l->port, mode_name(mode), proxy ? "yes" : "no");
	return 0;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	*error_r = mf_errorf("%s: listen %s: %s", server->service, addr, errno_text(err));
	return -1;
}

unsigned mf_net_server_port(struct mf_net_server *server, size_t index)
{
	unsigned port = 0;

	pthread_mutex_lock(&server->lock);
	if (index < server->nlisteners)
		port = server->listeners[index].port;
	pthread_mutex_unlock(&server->lock);
	return port;
}

void mf_net_server_stats(struct mf_net_server *server, struct mf_net_stats *stats_r)
{
	pthread_mutex_lock(&server->lock);
	*stats_r = server->stats;
	pthread_mutex_unlock(&server->lock);
}

/* Waits with server->lock held until no connection is left or timeout_ms
 * passed.  Returns the number still open. */
static uint64_t wait_conns_locked(struct mf_net_server *server, unsigned timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (server->stats.current > 0) {
		int64_t left = deadline - now_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&server->cond, &server->lock, &ts);
	}
	return server->stats.current;
}

/* Closes the listeners once; later calls return at once. */
static void stop_listeners(struct mf_net_server *server)
{
	size_t n;

	pthread_mutex_lock(&server->lock);
	atomic_store(&server->draining, true);
	if (server->stopping) {
		pthread_mutex_unlock(&server->lock);
		return;
	}
	server->stopping = true;
	n = server->nlisteners;
	pthread_mutex_unlock(&server->lock);

	/* The pipe stays readable, so every accept loop sees it. */
	while (write(server->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < n; i++) {
		pthread_join(server->listeners[i].thread, NULL);
		close(server->listeners[i].fd);
		server->listeners[i].fd = -1;
	}
}

int mf_net_server_drain(struct mf_net_server *server, unsigned timeout_ms,
			const char **error_r)
{
	uint64_t left;

	stop_listeners(server);
	pthread_mutex_lock(&server->lock);
	left = wait_conns_locked(server, timeout_ms);
	if (left > 0) {
		mf_log_info(server->service, NULL, "drain: closing remaining connections",
			    "count=%llu", (unsigned long long)left);
		/* Their blocked reads return EOF; fds are still open while
		 * listed (conn_finish closes under the lock). */
		for (struct mf_conn *c = server->conns; c != NULL; c = c->next)
			shutdown(c->fd, SHUT_RDWR);
		left = wait_conns_locked(server, timeout_ms);
	}
	pthread_mutex_unlock(&server->lock);
	if (left > 0) {
		*error_r = mf_errorf("%s: drain: %llu connections still running", server->service,
				     (unsigned long long)left);
		return -1;
	}
	return 0;
}

void mf_net_server_free(struct mf_net_server **serverp)
{
	struct mf_net_server *server = *serverp;
	const char *error;

	if (server == NULL)
		return;
	*serverp = NULL;
	(void)mf_net_server_drain(server, 0, &error);
	pthread_mutex_lock(&server->lock);
	while (server->stats.current > 0)
		pthread_cond_wait(&server->cond, &server->lock);
	pthread_mutex_unlock(&server->lock);
	for (size_t i = 0; i < server->nlisteners; i++)
		free(server->listeners[i].addr);
	close(server->wake[0]);
	close(server->wake[1]);
	pthread_cond_destroy(&server->cond);
	pthread_mutex_destroy(&server->lock);
	free(server->busy_reply);
	free(server->service);
	free(server);
}

/* --- connection API --------------------------------------------------------- */

/* Reads more bytes into the buffer after compacting it; grows it up to want
 * bytes.  Returns > 0, MF_CONN_EOF, MF_CONN_TIMEOUT or MF_CONN_ERROR. */
static ssize_t rbuf_fill(struct mf_conn *conn, size_t want, int64_t deadline,
			 const char **error_r)
{
	ssize_t n;

	if (conn->rstart == conn->rend)
		conn->rstart = conn->rend = 0;
	if (conn->rend == conn->rcap && conn->rstart > 0) {
		memmove(conn->rbuf, conn->rbuf + conn->rstart, conn->rend - conn->rstart);
		conn->rend -= conn->rstart;
		conn->rstart = 0;
	}
	if (conn->rend == conn->rcap) {
		/* Callers only get here with want > rcap (read_line gives up
		 * once want bytes hold no LF), so growth stops at
		 * MF_NET_LINE_MAX + 2. */
		size_t cap;
		if (conn->rcap == 0)
			cap = want > MF_NET_RBUF_INITIAL ? want : MF_NET_RBUF_INITIAL;
		else
			cap = conn->rcap * 2 < want ? conn->rcap * 2 : want;
		if (cap <= conn->rcap) {
			*error_r = "read: buffer full";
			return MF_CONN_ERROR;
		}
		conn->rbuf = mf_xrealloc(conn->rbuf, cap);
		conn->rcap = cap;
	}
	n = conn_recv(conn, conn->rbuf + conn->rend, conn->rcap - conn->rend, deadline, error_r);
	if (n > 0)
		conn->rend += (size_t)n;
	return n;
}

/* Drops the rest of an over-long line through its LF. */
static ssize_t skip_line(struct mf_conn *conn, int64_t deadline, const char **error_r)
{
	size_t skipped = conn->rend - conn->rstart;

	conn->rstart = conn->rend = 0;
	for (;;) {
		ssize_t n = rbuf_fill(conn, MF_NET_RBUF_INITIAL, deadline, error_r);
		const char *lf;
		if (n < 0)
			return n;
		lf = memchr(conn->rbuf, '\n', conn->rend);
		if (lf != NULL) {
			conn->rstart = (size_t)(lf - conn->rbuf) + 1;
			return MF_CONN_TOO_LONG;
		}
		skipped += conn->rend;
		conn->rstart = conn->rend = 0;
		if (skipped > MF_NET_LINE_SKIP_MAX) {
			*error_r = mf_errorf("line too long (no end within %d bytes)",
					     MF_NET_LINE_SKIP_MAX);
			return MF_CONN_ERROR;
		}
	}
}

ssize_t mf_conn_read_line(struct mf_conn *conn, size_t max, const char **line_r,
			  const char **error_r)
{
	int64_t deadline = now_ms() + conn->timeout_ms;
	size_t scanned = 0, need;

	*line_r = NULL;
	if (max > MF_NET_LINE_MAX)
		max = MF_NET_LINE_MAX;
	need = max + 2;    /* content, CR, LF */
	for (;;) {
		size_t avail = conn->rend - conn->rstart;
		char *start = conn->rbuf + conn->rstart;
		char *lf = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;
		ssize_t n;
		if (lf != NULL) {
			size_t pos = (size_t)(lf - start), len = pos;
			bool crlf = pos > 0 && start[pos - 1] == '\r';
			if (crlf)
				len--;
			conn->rstart += pos + 1;
			if (len > max)
				return MF_CONN_TOO_LONG;
			start[len] = '\0';
			conn->last_crlf = crlf;
			*line_r = start;
			return (ssize_t)len;
		}
		scanned = avail;
		if (avail >= need)
			return skip_line(conn, deadline, error_r);
		n = rbuf_fill(conn, need, deadline, error_r);
		if (n < 0)
			return n;
	}
}

bool mf_conn_last_line_crlf(const struct mf_conn *conn)
{
	return conn->last_crlf;
}

int mf_conn_read_exact(struct mf_conn *conn, void *buf, size_t len, const char **error_r)
{
	int64_t deadline = now_ms() + conn->timeout_ms;
	unsigned char *p = buf;
	size_t have = conn->rend - conn->rstart;

	if (have > len)
		have = len;
	memcpy(p, conn->rbuf + conn->rstart, have);
	conn->rstart += have;
	p += have;
	len -= have;
	while (len > 0) {
		ssize_t n = conn_recv(conn, p, len, deadline, error_r);
		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t mf_conn_read_some(struct mf_conn *conn, void *buf, size_t size, const char **error_r)
{
	size_t have = conn->rend - conn->rstart;

	if (size == 0)
		return 0;
	if (have > 0) {
		if (have > size)
			have = size;
		memcpy(buf, conn->rbuf + conn->rstart, have);
		conn->rstart += have;
		return (ssize_t)have;
	}
	return conn_recv(conn, buf, size, now_ms() + conn->timeout_ms, error_r);
}

int mf_conn_write(struct mf_conn *conn, const void *data, size_t len, const char **error_r)
{
	return conn_send(conn, data, len, now_ms() + conn->timeout_ms, error_r);
}

int mf_conn_printf(struct mf_conn *conn, const char **error_r, const char *fmt, ...)
{
	struct mf_buf b;
	va_list ap;
	int ret;

	mf_buf_init(&b, MF_NET_PRINTF_MAX);
	va_start(ap, fmt);
	ret = mf_buf_vappendf(&b, fmt, ap);
	va_end(ap);
	if (ret < 0) {
		*error_r = mf_errorf("write: formatted text longer than %d bytes",
				     MF_NET_PRINTF_MAX);
		ret = MF_CONN_ERROR;
		goto out;
	}
	ret = mf_conn_write(conn, b.data, b.len, error_r);
out:
	mf_buf_free(&b);
	return ret;
}

void mf_conn_set_timeout(struct mf_conn *conn, unsigned timeout_ms)
{
	conn->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
}

int mf_conn_starttls(struct mf_conn *conn, const char **error_r)
{
	struct mf_net_server *server = conn->server;
	size_t injected = conn->rend - conn->rstart;

	if (conn->ssl != NULL) {
		*error_r = "starttls: TLS is already active";
		return -1;
	}
	if (conn->mode != MF_NET_STARTTLS || server->tls_ctx == NULL) {
		*error_r = "starttls: TLS is not offered on this listener";
		return -1;
	}
	if (conn->closed) {
		*error_r = "starttls: connection closed";
		return -1;
	}
	/* RFC 3207 6: nothing received before the handshake may be acted on
	 * after it. */
	if (injected > 0)
		mf_log_info(server->service, conn->cid, "discarding bytes sent before TLS",
			    "remote=%s bytes=%zu", conn->remote_ip, injected);
	conn->rstart = conn->rend = 0;
	if (tls_accept(conn, error_r) < 0) {
		mf_log_debug(server->service, conn->cid, "starttls handshake failed",
			     "remote=%s err=%s", conn->remote_ip, *error_r);
		return -1;
	}
	return 0;
}

bool mf_conn_is_tls(const struct mf_conn *conn)
{
	return conn->ssl != NULL;
}

const char *mf_conn_tls_version(const struct mf_conn *conn)
{
	return conn->ssl != NULL ? mf_tls_version(conn->ssl) : NULL;
}

const char *mf_conn_tls_cipher(const struct mf_conn *conn)
{
	return conn->ssl != NULL ? mf_tls_cipher(conn->ssl) : NULL;
}

SSL *mf_conn_ssl(struct mf_conn *conn)
{
	return conn->ssl;
}

const char *mf_conn_remote_ip(const struct mf_conn *conn)
{
	return conn->remote_ip;
}

unsigned mf_conn_remote_port(const struct mf_conn *conn)
{
	return conn->remote_port;
}

const struct sockaddr_storage *mf_conn_remote_addr(const struct mf_conn *conn)
{
	return &conn->remote;
}

const char *mf_conn_local_ip(const struct mf_conn *conn)
{
	return conn->local_ip;
}

unsigned mf_conn_local_port(const struct mf_conn *conn)
{
	return conn->local_port;
}

const char *mf_conn_id(const struct mf_conn *conn)
{
	return conn->cid;
}

const char *mf_conn_service(const struct mf_conn *conn)
{
	return conn->server->service;
}

bool mf_conn_draining(const struct mf_conn *conn)
{
	return atomic_load(&conn->server->draining);
}

void mf_conn_close(struct mf_conn *conn)
{
	if (conn->closed)
		return;
	if (conn->ssl != NULL) {
		ERR_clear_error();
		SSL_shutdown(conn->ssl);
		ERR_clear_error();
	}
	conn->closed = true;
	shutdown(conn->fd, SHUT_RDWR);
}
