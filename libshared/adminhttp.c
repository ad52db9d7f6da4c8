/* adminhttp: see adminhttp.h.  We bind the listening socket ourselves and
 * hand it to libmicrohttpd, so that a failed bind reports the real errno
 * ("address already in use") with the address, which MHD cannot do. */
#include "adminhttp.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PKG "adminhttp"
#define MF_ADMINHTTP_BACKLOG 16
#define MF_ADMINHTTP_READYZ_MAX 4096   /* /readyz body */

struct admin_check {
	char *name;
	mf_adminhttp_check_fn *fn;
	void *ctx;
};

struct mf_adminhttp {
	char *service;
	struct mf_metrics *metrics;
	struct mf_metric *requests;
	struct admin_check checks[MF_ADMINHTTP_CHECKS_MAX];
	size_t n_checks;
	struct MHD_Daemon *daemon;
	unsigned port;
	atomic_bool draining;
	atomic_bool stopping;
};

static const char *const paths[] = {"/metrics", "/healthz", "/readyz", "other", NULL};
static const char *const codes[] = {"200", "404", "405", "500", "503", NULL};

struct mf_adminhttp *mf_adminhttp_create(const char *service, struct mf_metrics *metrics)
{
	struct mf_adminhttp *h = mf_xcalloc(1, sizeof(*h));
	const struct mf_metric_label labels[] = {
		{"path", paths}, {"code", codes}, {NULL, NULL},
	};
	char *name;

	h->service = mf_xstrdup(service);
	h->metrics = metrics;
	atomic_init(&h->draining, false);
	atomic_init(&h->stopping, false);
	name = mf_xasprintf("mailfleet_%s_admin_requests_total", service);
	for (char *p = name; *p != '\0'; p++)
		if (*p == '-')
			*p = '_';
	h->requests = mf_metrics_counter(metrics, name,
					 "Requests to the admin HTTP server by path and status code.",
					 labels);
	free(name);
	return h;
}

void mf_adminhttp_add_check(struct mf_adminhttp *h, const char *name,
			    mf_adminhttp_check_fn *fn, void *ctx)
{
	if (h->daemon != NULL)
		mf_fatal("adminhttp: readiness check %s added after start", name);
	if (h->n_checks == MF_ADMINHTTP_CHECKS_MAX)
		mf_fatal("adminhttp: more than %d readiness checks", MF_ADMINHTTP_CHECKS_MAX);
	h->checks[h->n_checks].name = mf_xstrdup(name);
	h->checks[h->n_checks].fn = fn;
	h->checks[h->n_checks].ctx = ctx;
	h->n_checks++;
}

void mf_adminhttp_set_draining(struct mf_adminhttp *h, bool draining)
{
	atomic_store(&h->draining, draining);
}

void mf_adminhttp_set_stopping(struct mf_adminhttp *h)
{
	atomic_store(&h->stopping, true);
}

unsigned mf_adminhttp_port(const struct mf_adminhttp *h)
{
	return h->daemon != NULL ? h->port : 0;
}

/* Queues a response with body (owned, handed to MHD, freed with free()). */
static enum MHD_Result reply(struct mf_adminhttp *h, struct MHD_Connection *conn,
			     const char *path_label, unsigned code, const char *content_type,
			     char *body)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char code_text[8];

	snprintf(code_text, sizeof(code_text), "%u", code);
	mf_metric_inc(h->requests, path_label, code_text);
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

#define TEXT_PLAIN "text/plain; charset=utf-8"

static enum MHD_Result serve_metrics(struct mf_adminhttp *h, struct MHD_Connection *conn)
{
	struct mf_buf b;
	const char *error;

	mf_buf_init(&b, MF_METRICS_TEXT_MAX);
	if (mf_metrics_format(h->metrics, &b, &error) < 0) {
		mf_log_error(LOG_PKG, NULL, "metrics exposition failed", "err=%s", error);
		mf_buf_free(&b);
		return reply(h, conn, "/metrics", MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT_PLAIN,
			     mf_xasprintf("%s\n", error));
	}
	return reply(h, conn, "/metrics", MHD_HTTP_OK,
		     "text/plain; version=0.0.4; charset=utf-8", mf_buf_steal(&b));
}

static enum MHD_Result serve_readyz(struct mf_adminhttp *h, struct MHD_Connection *conn)
{
	struct mf_buf b;
	bool ready = true;

	if (atomic_load(&h->stopping))
		return reply(h, conn, "/readyz", MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN,
			     mf_xstrdup("stopping\n"));
	if (atomic_load(&h->draining))
		return reply(h, conn, "/readyz", MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN,
			     mf_xstrdup("draining\n"));
	mf_buf_init(&b, MF_ADMINHTTP_READYZ_MAX);
	for (size_t i = 0; i < h->n_checks; i++) {
		const char *error = NULL;
		if (h->checks[i].fn(h->checks[i].ctx, &error) == 0)
			continue;
		ready = false;
		/* past the cap the rest is left out; the status says enough */
		mf_buf_appendf(&b, "%s: %s\n", h->checks[i].name,
			       error != NULL ? error : "not ready");
	}
	if (ready) {
		mf_buf_free(&b);
		return reply(h, conn, "/readyz", MHD_HTTP_OK, TEXT_PLAIN, mf_xstrdup("ready\n"));
	}
	return reply(h, conn, "/readyz", MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN,
		     mf_buf_steal(&b));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct mf_adminhttp *h = cls;
	const char *path_label = "other";

	for (size_t i = 0; paths[i] != NULL; i++)
		if (strcmp(url, paths[i]) == 0)
			path_label = paths[i];
	/* Answer on the first call, before any body: nothing here takes one. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply(h, conn, path_label, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT_PLAIN,
			     mf_xstrdup("method not allowed\n"));
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(h, conn);
	if (strcmp(url, "/healthz") == 0) {
		if (atomic_load(&h->stopping))
			return reply(h, conn, "/healthz", MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN,
				     mf_xstrdup("stopping\n"));
		return reply(h, conn, "/healthz", MHD_HTTP_OK, TEXT_PLAIN, mf_xstrdup("ok\n"));
	}
	if (strcmp(url, "/readyz") == 0)
		return serve_readyz(h, conn);
	return reply(h, conn, "other", MHD_HTTP_NOT_FOUND, TEXT_PLAIN, mf_xstrdup("not found\n"));
}

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct mf_adminhttp *h = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	mf_log_warn(LOG_PKG, NULL, "libmicrohttpd", "service=%s detail=%s", h->service, msg);
}

/* strerror with a lower-case first letter, as our errors are written. */
static const char *errno_text(int err, char *buf, size_t size)
{
	snprintf(buf, size, "%s", strerror(err));
	if (buf[0] != '\0')
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

int mf_adminhttp_start(struct mf_adminhttp *h, const char *host, unsigned port,
		       const char **error_r)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[16], addr[300], errbuf[128];
	int fd = -1, one = 1, rc, ret = -1;

	if (host == NULL || host[0] == '\0')
		host = "::";
	snprintf(addr, sizeof(addr), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
	if (h->daemon != NULL) {
		*error_r = mf_errorf("%s: admin listen %s: already started", h->service, addr);
		goto out;
	}
	if (port > 65535) {
		*error_r = mf_errorf("%s: admin listen %s: bad port", h->service, addr);
		goto out;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0) {
		*error_r = mf_errorf("%s: admin listen %s: %s", h->service, addr, gai_strerror(rc));
		goto out;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*error_r = mf_errorf("%s: admin listen %s: %s", h->service, addr,
				     errno_text(errno, errbuf, sizeof(errbuf)));
		goto out;
	}
	/* a restart must not wait for TIME_WAIT; two listeners still conflict */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, MF_ADMINHTTP_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		*error_r = mf_errorf("%s: admin listen %s: %s", h->service, addr,
				     errno_text(errno, errbuf, sizeof(errbuf)));
		goto out;
	}
	h->port = ss.ss_family == AF_INET6 ?
		ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
		ntohs(((struct sockaddr_in *)&ss)->sin_port);

	h->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, h,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MF_ADMINHTTP_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)MF_ADMINHTTP_TIMEOUT_SECS,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MF_ADMINHTTP_MEMORY_MAX,
		MHD_OPTION_END);
	/* MHD owns the socket from here, also on most failure paths: do not
	 * close it again (a rare leak beats closing someone else's fd). */
	fd = -1;
	if (h->daemon == NULL) {
		*error_r = mf_errorf("%s: admin listen %s: cannot start HTTP server", h->service,
				     addr);
		goto out;
	}
	mf_log_info(LOG_PKG, NULL, "admin http listening", "service=%s addr=%s port=%u",
		    h->service, addr, h->port);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ai != NULL)
		freeaddrinfo(ai);
	return ret;
}

void mf_adminhttp_stop(struct mf_adminhttp *h)
{
	if (h->daemon == NULL)
		return;
	MHD_stop_daemon(h->daemon);
	h->daemon = NULL;
	h->port = 0;
}

void mf_adminhttp_free(struct mf_adminhttp **hp)
{
	struct mf_adminhttp *h = *hp;

	if (h == NULL)
		return;
	mf_adminhttp_stop(h);
	for (size_t i = 0; i < h->n_checks; i++)
		free(h->checks[i].name);
	free(h->service);
	free(h);
	*hp = NULL;
}
