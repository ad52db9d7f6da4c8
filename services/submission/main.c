/* submission: takes mail from authenticated users on 587 (STARTTLS) and 465
 * (implicit TLS), checks and signs it, and hands it to the queue (see
 * sub_session.c for the flow, sub_server.h for the limits). */
#include "blob.h"
#include "log.h"
#include "ratelimit.h"
#include "service.h"
#include "tls.h"
#include "sub_server.h"

static struct sub_server server;

static int start(struct mf_service *svc, const char **error_r)
{
	const struct mf_config *c = mf_service_config(svc);

	sub_server_init(&server, svc, c);
	if (mf_blob_store_open(c->blob_dir, &server.blobs, error_r) < 0)
		return -1;
	server.redis = mf_service_redis(svc);
	server.rl = mf_ratelimit_create(server.redis, c->redis_down == MF_REDIS_DOWN_DENY ?
					MF_RATELIMIT_REDIS_DOWN_DENY :
					MF_RATELIMIT_REDIS_DOWN_ALLOW);
	if (server.rl != NULL) {
		struct mf_authlimit_settings als;
		mf_authlimit_settings_from_config(c, &als);
		if (mf_authlimit_create(server.rl, &als, &server.authlimit, error_r) < 0)
			return -1;
		mf_authlimit_register_metrics(server.authlimit, mf_service_metrics(svc),
					      "submission");
	}
	return mf_service_listen(svc, "421 4.3.2 too many connections, try again later\r\n",
				 sub_session_handle, &server, error_r);
}

int main(int argc, char **argv)
{
	static const struct mf_service_def def = {
		.id = MF_SERVICE_SUBMISSION,
		.tls_flags = MF_TLS_REQUEST_CLIENT_CERT,  /* TLS client-certificate logins */
		.needs_redis = true,  /* per-account sending limits, auth throttling */
		.start = start,
	};
	int rc = mf_service_main(&def, argc, argv);

	mf_authlimit_free(&server.authlimit);
	mf_ratelimit_free(&server.rl);
	mf_blob_store_free(&server.blobs);
	return rc;
}
