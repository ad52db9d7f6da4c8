/* net: TCP listeners and client connections for the services that speak a
 * line protocol (SMTP, submission, IMAP).
 *
 * A connection is served by its own thread with blocking-style I/O and a
 * deadline on every read and write (DESIGN.md "How code is run").  The
 * number of connections is bounded; past the bound a new connection gets the
 * service's "busy" line and is closed.  Listeners speak plain TCP, implicit
 * TLS or STARTTLS, and optionally expect a PROXY protocol header (proxy.h)
 * first.  For TLS listeners the handshake, and for PROXY listeners the
 * header, are done (with the same deadline) before the handler runs.
 *
 * Draining (SIGTERM): mf_net_server_drain stops accepting, lets handlers see
 * mf_conn_draining(), waits, then shuts the remaining sockets down so that
 * their blocked reads return.
 *
 * Creating a server sets SIGPIPE to be ignored in the process: a peer that
 * goes away must show up as a write error, never kill the service. */
#ifndef MF_NET_H
#define MF_NET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* Listeners per server (e.g. 587 and 465 on v4 and v6). */
#define MF_NET_LISTENERS_MAX 16
/* Longest line mf_conn_read_line accepts as max (a long IMAP command line
 * before its literal; SMTP uses 512 or 1000, RFC 5321 4.5.3.1.4-6). */
#define MF_NET_LINE_MAX 65536
/* Bytes of an over-long line that are skipped to find its end before the
 * connection is given up (MF_CONN_ERROR). */
#define MF_NET_LINE_SKIP_MAX (1024 * 1024)
/* Initial read buffer; it grows up to the longest line asked for. */
#define MF_NET_RBUF_INITIAL 4096
/* Longest formatted write from mf_conn_printf. */
#define MF_NET_PRINTF_MAX 65536
/* Longest "busy" reply. */
#define MF_NET_BUSY_MAX 512
/* Connection id: random bytes, shown as twice as many hex digits. */
#define MF_NET_CID_BYTES 8
/* "[ffff:...]:65535" */
#define MF_NET_ADDR_STR_MAX 64

enum mf_net_mode {
	MF_NET_PLAIN,      /* plain TCP, no TLS at all */
	MF_NET_TLS,        /* implicit TLS: handshake before the handler runs */
	MF_NET_STARTTLS,   /* plain at first; the handler may call mf_conn_starttls */
};

/* Results of reads (negative; a successful read returns a length >= 0). */
enum mf_conn_result {
	MF_CONN_EOF = -1,       /* peer closed (or the server shut the socket) */
	MF_CONN_TIMEOUT = -2,   /* the deadline passed */
	MF_CONN_TOO_LONG = -3,  /* line longer than max; it was skipped */
	MF_CONN_ERROR = -4,     /* I/O or TLS error; error_r says which */
};

struct mf_conn;
struct mf_net_server;

typedef void mf_net_handler_fn(struct mf_conn *conn, void *ctx);

struct mf_net_settings {
	const char *service;        /* for logs and error texts, e.g. "smtp-in" */
	unsigned max_conns;         /* concurrent connections, > 0 */
	/* Written to plain/STARTTLS connections over the bound before they are
	 * closed, e.g. "421 4.3.2 too many connections, try later\r\n"; NULL
	 * for none.  Implicit-TLS connections are closed without a reply. */
	const char *busy_reply;
	mf_net_handler_fn *handler; /* runs on the connection's own thread */
	void *ctx;                  /* passed to handler */
	unsigned timeout_ms;        /* per read and per write call, > 0 */
	SSL_CTX *tls_ctx;           /* not owned; NULL when no TLS is offered */
};

/* Counters for metrics; read with mf_net_server_stats. */
struct mf_net_stats {
	uint64_t current;           /* connections open now */
	uint64_t accepted_total;    /* connections accepted (including refused) */
	uint64_t refused_busy_total;
	uint64_t tls_failures_total;   /* failed handshakes (implicit and STARTTLS) */
	uint64_t proxy_errors_total;   /* missing, invalid or late PROXY headers */
};

/* Creates a server (not listening yet).  The settings' strings are copied.
 * Returns 0 with *server_r, or -1 with error_r for invalid settings. */
int mf_net_server_create(const struct mf_net_settings *settings,
			 struct mf_net_server **server_r, const char **error_r);

/* Binds addr ("127.0.0.1:1025", "[::1]:1025", "0.0.0.0:25", "[::]:25"; port
 * 0 picks a free one) and starts accepting on it at once.  mode
 * MF_NET_TLS/STARTTLS need settings.tls_ctx.  proxy: every connection must
 * start with a PROXY v1 or v2 header whose source becomes the remote
 * address.  Returns 0, or -1 with error_r such as
 * "smtp-in: listen 127.0.0.1:1025: address already in use". */
int mf_net_server_listen(struct mf_net_server *server, const char *addr,
			 enum mf_net_mode mode, bool proxy, const char **error_r);

/* Returns the port the index-th successful listen bound (useful with port
 * 0), or 0 when there is no such listener. */
unsigned mf_net_server_port(struct mf_net_server *server, size_t index);

void mf_net_server_stats(struct mf_net_server *server, struct mf_net_stats *stats_r);

/* Stops accepting (closes the listeners), marks connections as draining,
 * waits up to timeout_ms for the handlers to return, then shuts down the
 * sockets of the remaining ones so that their reads return MF_CONN_EOF and
 * waits up to timeout_ms more.  Returns 0 when every handler has returned,
 * or -1 with error_r naming how many are still running. */
int mf_net_server_drain(struct mf_net_server *server, unsigned timeout_ms,
			const char **error_r);

/* Drains (if not done yet) and frees the server, waiting for every
 * connection thread to finish; sets *server to NULL. */
void mf_net_server_free(struct mf_net_server **server);

/* --- connections (used by handlers, on the connection's thread) --------- */

/* Reads one line ended by CRLF or a bare LF and returns its length without
 * the ending; *line_r points at it inside the connection's buffer,
 * NUL-terminated, valid until the next read, mf_conn_starttls or close.
 * max (<= MF_NET_LINE_MAX) bounds the length without the ending.
 * Returns >= 0, or MF_CONN_EOF, MF_CONN_TIMEOUT, MF_CONN_TOO_LONG (the rest
 * of the line, through its LF, has been read and dropped so the caller can
 * reply and go on), MF_CONN_ERROR (error_r set). */
ssize_t mf_conn_read_line(struct mf_conn *conn, size_t max, const char **line_r,
			  const char **error_r);
/* Returns true when the last line read ended in CRLF, false for a bare LF
 * (SMTP DATA uses this against "smuggling" with <LF>.<CR><LF>). */
bool mf_conn_last_line_crlf(const struct mf_conn *conn);

/* Reads exactly len bytes into buf (a literal, a BDAT chunk).  Returns 0, or
 * MF_CONN_EOF (also when the peer closes midway), MF_CONN_TIMEOUT,
 * MF_CONN_ERROR.  The deadline covers the whole call: read big data in
 * pieces. */
int mf_conn_read_exact(struct mf_conn *conn, void *buf, size_t len, const char **error_r);
/* Reads what is available (buffered bytes first), at most size, waiting
 * for at least one byte.  Returns the count (> 0), or MF_CONN_EOF,
 * MF_CONN_TIMEOUT, MF_CONN_ERROR. */
ssize_t mf_conn_read_some(struct mf_conn *conn, void *buf, size_t size,
			  const char **error_r);

/* Writes all len bytes.  Returns 0, or MF_CONN_TIMEOUT or MF_CONN_ERROR with
 * error_r.  The deadline covers the whole call: write big data in pieces. */
int mf_conn_write(struct mf_conn *conn, const void *data, size_t len, const char **error_r);
/* Formats (at most MF_NET_PRINTF_MAX bytes) and writes like mf_conn_write. */
int mf_conn_printf(struct mf_conn *conn, const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets the per-call timeout of this connection (e.g. longer for DATA,
 * RFC 5321 4.5.3.2). */
void mf_conn_set_timeout(struct mf_conn *conn, unsigned timeout_ms);

/* Starts TLS on a STARTTLS connection after the caller has sent its "go
 * ahead" reply.  Bytes the client sent after the STARTTLS command and that
 * are already buffered are discarded (RFC 3207 6, CVE-2011-0411: they were
 * not protected and must not be taken as commands after the handshake).
 * Returns 0, or -1 with error_r (handshake failure, timeout, no TLS
 * configured, already TLS); after -1 the connection is unusable. */
int mf_conn_starttls(struct mf_conn *conn, const char **error_r);

bool mf_conn_is_tls(const struct mf_conn *conn);
/* Protocol and cipher (RFC 8314 4.3 names) of a TLS connection; NULL when
 * not TLS.  Static strings. */
const char *mf_conn_tls_version(const struct mf_conn *conn);
const char *mf_conn_tls_cipher(const struct mf_conn *conn);
/* The OpenSSL connection for tls.h helpers (channel binding, client
 * certificate), or NULL.  Owned by the connection. */
SSL *mf_conn_ssl(struct mf_conn *conn);

/* Remote and local addresses, after the PROXY header when there was one:
 * IP as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped IPv6 shown as IPv4),
 * port, and the socket address.  Strings are owned by the connection. */
const char *mf_conn_remote_ip(const struct mf_conn *conn);
unsigned mf_conn_remote_port(const struct mf_conn *conn);
const struct sockaddr_storage *mf_conn_remote_addr(const struct mf_conn *conn);
const char *mf_conn_local_ip(const struct mf_conn *conn);
unsigned mf_conn_local_port(const struct mf_conn *conn);
/* Random id (2 * MF_NET_CID_BYTES hex digits) for cid= in logs. */
const char *mf_conn_id(const struct mf_conn *conn);
/* The service name given to the server. */
const char *mf_conn_service(const struct mf_conn *conn);
/* True once the server is draining: finish the current command, say
 * goodbye (e.g. "421 4.3.2 shutting down") and return. */
bool mf_conn_draining(const struct mf_conn *conn);

/* Ends the connection early: sends TLS close_notify (best effort, without
 * waiting) and shuts the socket down; later reads return MF_CONN_EOF and
 * writes MF_CONN_ERROR.  The net layer frees the connection after the
 * handler returns; calling this is optional. */
void mf_conn_close(struct mf_conn *conn);

#endif
