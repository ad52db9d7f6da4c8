/* smtp-in: receives mail from the internet on port 25 and hands it to the
 * account store (see smtp_session.c for the flow, smtp_server.h for the
 * limits). */
#include "blob.h"
#include "log.h"
#include "ratelimit.h"
#include "service.h"
#include "smtp_server.h"

static struct smtp_server server;

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *c = mf_service_config(svc);

	smtp_server_init(&server, svc, c);
	if (mf_blob_store_open(c->blob_dir, &server.blobs, error_r) < 0)
		return -1;
	server.rl = mf_ratelimit_create(mf_service_redis(svc),
					c->redis_down == MF_REDIS_DOWN_DENY ?
					MF_RATELIMIT_REDIS_DOWN_DENY : MF_RATELIMIT_REDIS_DOWN_ALLOW);
	return mf_service_listen(svc, "421 4.3.2 too many connections, try again later\r\n",
				 smtp_session_handle, &server, error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_SMTP_IN,
		.needs_redis = true,  /* connection and message rate limits */
		.start = start,
	};
	int rc = mf_service_main(&def, argc, argv);

	mf_ratelimit_free(&server.rl);
	mf_blob_store_free(&server.blobs);
	if (server.config != NULL)
		smtp_server_deinit(&server);
	return rc;
}
