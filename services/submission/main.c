/* submission: takes mail from authenticated users on 587 (STARTTLS) and 465
 * (implicit TLS) and hands it to the queue.
 *
 * This version has the service frame only: listeners answer every connection
 * with a temporary error; no message is taken. */
#include "log.h"
#include "service.h"

static struct mf_service *service;

static void handle_connection(struct mf_conn *conn, void *ctx)
{
	const char *err;

	if (mf_conn_printf(conn, &err, "421 4.3.2 %s submission is not available yet, "
			   "try again later\r\n", mf_service_config(service)->hostname) < 0)
		mf_log_debug(NULL, mf_conn_id(conn), "write failed", "error=%s", err);
	mf_log_info(NULL, mf_conn_id(conn), "connection refused: not available yet",
		    "remote=%s", mf_conn_remote_ip(conn));
}

static int start(struct mf_service *svc, const char **error_r)
{
	service = svc;
	return mf_service_listen(svc, "421 4.3.2 too many connections, try again later\r\n",
				 handle_connection, svc, error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_SUBMISSION,
		.needs_redis = true,  /* per-account sending limits, auth throttling */
		.start = start,
	};
	return mf_service_main(&def, argc, argv);
}
