/* web: admin pages, account pages, webmail, webapi, autoconfig, MTA-STS.
 *
 * This version has the service frame only: HTTP requests on the web port are
 * answered 503 "not available yet". */
#include <string.h>

#include "log.h"
#include "service.h"

#define WEB_REQUEST_LINE_MAX 8192
#define WEB_HEADERS_MAX 100

static void handle_connection(struct mf_conn *conn, void *ctx)
{
	static const char body[] = "mailfleet web is not available yet in this version\n";
	const char *line, *err;
	ssize_t n;

	/* Read the request line and headers so the client sees a clean answer. */
	if (mf_conn_read_line(conn, WEB_REQUEST_LINE_MAX, &line, &err) < 0)
		return;
	for (int i = 0; i < WEB_HEADERS_MAX; i++) {
		n = mf_conn_read_line(conn, WEB_REQUEST_LINE_MAX, &line, &err);
		if (n <= 0)
			break;
	}
	if (mf_conn_printf(conn, &err, "HTTP/1.1 503 Service Unavailable\r\n"
			   "Content-Type: text/plain; charset=utf-8\r\n"
			   "Content-Length: %zu\r\nRetry-After: 3600\r\nConnection: close\r\n\r\n%s",
			   strlen(body), body) < 0)
		mf_log_debug(NULL, mf_conn_id(conn), "write failed", "error=%s", err);
}

static int start(struct mf_service *svc, const char **error_r)
{
	return mf_service_listen(svc, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				 "Content-Length: 0\r\n\r\n", handle_connection, svc, error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_WEB,
		.needs_redis = true,  /* web sessions and CSRF tokens */
		.start = start,
	};
	return mf_service_main(&def, argc, argv);
}
