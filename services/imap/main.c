/* imap: owns the account stores and serves IMAP on 143 (STARTTLS) and 993.
 *
 * This version has the service frame only: IMAP connections get
 * "* BYE [UNAVAILABLE]" (RFC 5530) and the store API over NATS answers with a
 * clear "not available yet" error. */
#include "log.h"
#include "service.h"

static void handle_connection(struct mf_conn *conn, void *ctx)
{
	const char *err;

	if (mf_conn_printf(conn, &err, "* BYE [UNAVAILABLE] IMAP is not available yet "
			   "in this version of mailfleet\r\n") < 0)
		mf_log_debug(NULL, mf_conn_id(conn), "write failed", "error=%s", err);
	mf_log_info(NULL, mf_conn_id(conn), "connection refused: not available yet",
		    "remote=%s", mf_conn_remote_ip(conn));
}

static int start(struct mf_service *svc, const char **error_r)
{
	if (mf_service_serve_unavailable(svc, "store.v1.>", "the account store", error_r) < 0)
		return -1;
	return mf_service_listen(svc, "* BYE [UNAVAILABLE] too many connections, try again later\r\n",
				 handle_connection, svc, error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_IMAP,
		.needs_redis = true,  /* login throttling shared across replicas */
		.start = start,
	};
	return mf_service_main(&def, argc, argv);
}
