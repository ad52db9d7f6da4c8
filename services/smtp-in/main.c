/* smtp-in: receives mail from the internet on port 25.
 *
 * This version has the service frame only: listeners (plain, STARTTLS,
 * PROXY) answer every connection with a temporary error so that sending
 * servers retry later; no mail is accepted and none is lost. */
#include "log.h"
#include "service.h"

static struct mf_service *service;

static void handle_connection(struct mf_conn *conn, void *ctx)
{
	const char *err;

	/* RFC 5321 3.1: a server may answer 421 instead of 220 and close. */
	if (mf_conn_printf(conn, &err, "421 4.3.2 %s mail reception is not available yet, "
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
		.id = MF_SERVICE_SMTP_IN,
		.needs_redis = true,  /* connection and message rate limits */
		.start = start,
	};
	return mf_service_main(&def, argc, argv);
}
