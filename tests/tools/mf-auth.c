/* mf-auth: asks a running dnsauth over NATS, for the integration tests.
 *
 *   mf-auth CONF verify IP HELO MAILFROM FILE [event]
 *       sends auth.v1.verify with FILE inline; prints the
 *       Authentication-Results field, then "dkim=<result> d=<d>" per
 *       signature and "dmarc=<result> disposition=<policy> from=<domain>";
 *       with "event", also waits for the events.v1.dmarc evaluation and
 *       prints "event result=... disposition=... policy_domain=...".
 *   mf-auth CONF sign DOMAIN FILE
 *       sends auth.v1.sign; prints the signed message (headers + FILE).
 * Exits 0 on an OK reply, 1 otherwise (printing "status=<status> <message>"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "services/cli/cli_bus.h"

#include "auth.pb-c.h"
#include "events.pb-c.h"

#define FILE_MAX (4 * 1024 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *event_line;

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	struct mf_buf b;
	char chunk[65536];
	size_t n;

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	mf_buf_init(&b, FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (mf_buf_append(&b, chunk, n) < 0)
			exit(2);
	fclose(f);
	*len_r = b.len;
	return b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
}

static void on_event(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	Mailfleet__V1__DmarcEvaluation *ev = mailfleet__v1__dmarc_evaluation__unpack(NULL, len, data);

	if (ev == NULL)
		return;
	pthread_mutex_lock(&lock);
	free(event_line);
	event_line = mf_xasprintf("event result=%s disposition=%s header_from=%s policy_domain=%s "
				  "p=%s rua=%s spf=%s/%s dkim=%zu envelope_to=%s",
				  ev->result, ev->disposition, ev->header_from, ev->policy_domain, ev->p,
				  ev->n_rua > 0 ? ev->rua[0] : "-", ev->spf_scope, ev->spf_result,
				  ev->n_dkim, ev->n_envelope_to > 0 ? ev->envelope_to[0] : "-");
	pthread_mutex_unlock(&lock);
	mailfleet__v1__dmarc_evaluation__free_unpacked(ev, NULL);
}

static const char *dkim_name(int r)
{
	static const char *const names[] = { "pass", "fail", "neutral", "policy", "temperror",
					     "permerror" };
	return r >= 0 && r < 6 ? names[r] : "?";
}

static const char *dmarc_name(int r)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };
	return r >= 0 && r < 5 ? names[r] : "?";
}

static const char *policy_name(int p)
{
	static const char *const names[] = { "none", "quarantine", "reject" };
	return p >= 0 && p < 3 ? names[p] : "?";
}

static int verify(struct mf_bus *bus, char **argv, bool want_event)
{
	Mailfleet__V1__VerifyRequest req = MAILFLEET__V1__VERIFY_REQUEST__INIT;
	Mailfleet__V1__VerifyReply *rep;
	struct mf_bus_reply reply;
	char *rcpts[] = { (char *)"mail@localhost" };
	const char *err;
	size_t len, n;
	char *msg = read_file(argv[3], &len);
	uint8_t *buf;

	if (want_event && mf_bus_subscribe(bus, "events.v1.dmarc", NULL, on_event, NULL, &err) < 0) {
		fprintf(stderr, "subscribe: %s\n", err);
		return 2;
	}
	req.client_ip = argv[0];
	req.helo = argv[1];
	req.mail_from = argv[2];
	req.recipients = rcpts;
	req.n_recipients = 1;
	req.message.data = (uint8_t *)msg;
	req.message.len = len;
	n = mailfleet__v1__verify_request__get_packed_size(&req);
	buf = mf_xmalloc(n + 1);
	mailfleet__v1__verify_request__pack(&req, buf);
	if (mf_bus_request(bus, "auth.v1.verify", "mf-auth", buf, n, 30000, &reply) < 0) {
		printf("status=%s %s\n", mf_bus_status_name(reply.status), reply.message);
		mf_bus_reply_free(&reply);
		return 1;
	}
	rep = mailfleet__v1__verify_reply__unpack(NULL, reply.body_len, reply.body);
	if (rep == NULL) {
		printf("status=malformed\n");
		return 1;
	}
	fputs(rep->authentication_results, stdout);
	for (size_t i = 0; i < rep->n_dkim; i++)
		printf("dkim=%s d=%s s=%s\n", dkim_name(rep->dkim[i]->result), rep->dkim[i]->domain,
		       rep->dkim[i]->selector);
	printf("dmarc=%s disposition=%s from=%s\n", dmarc_name(rep->dmarc->result),
	       policy_name(rep->dmarc->disposition), rep->from_domain);
	mailfleet__v1__verify_reply__free_unpacked(rep, NULL);
	mf_bus_reply_free(&reply);
	if (want_event) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		for (int i = 0; i < 100; i++) {
			pthread_mutex_lock(&lock);
			if (event_line != NULL) {
				printf("%s\n", event_line);
				pthread_mutex_unlock(&lock);
				break;
			}
			pthread_mutex_unlock(&lock);
			nanosleep(&pause, NULL);
		}
	}
	free(buf);
	free(msg);
	return 0;
}

static int sign(struct mf_bus *bus, char **argv)
{
	Mailfleet__V1__SignRequest req = MAILFLEET__V1__SIGN_REQUEST__INIT;
	Mailfleet__V1__SignReply *rep;
	struct mf_bus_reply reply;
	size_t len, n;
	char *msg = read_file(argv[1], &len);
	uint8_t *buf;

	req.domain = argv[0];
	req.message.data = (uint8_t *)msg;
	req.message.len = len;
	n = mailfleet__v1__sign_request__get_packed_size(&req);
	buf = mf_xmalloc(n + 1);
	mailfleet__v1__sign_request__pack(&req, buf);
	if (mf_bus_request(bus, "auth.v1.sign", "mf-auth", buf, n, 10000, &reply) < 0) {
		printf("status=%s %s\n", mf_bus_status_name(reply.status), reply.message);
		mf_bus_reply_free(&reply);
		return 1;
	}
	rep = mailfleet__v1__sign_reply__unpack(NULL, reply.body_len, reply.body);
	if (rep == NULL) {
		printf("status=malformed\n");
		return 1;
	}
	fputs(rep->headers, stdout);
	fwrite(msg, 1, len, stdout);
	mailfleet__v1__sign_reply__free_unpacked(rep, NULL);
	mf_bus_reply_free(&reply);
	free(buf);
	free(msg);
	return 0;
}

int main(int argc, char **argv)
{
	struct mf_config *config = NULL;
	struct mf_bus *bus = NULL;
	int ret;

	if (argc < 3) {
		fprintf(stderr, "usage: mf-auth CONF verify IP HELO MAILFROM FILE [event] | "
				"sign DOMAIN FILE\n");
		return 2;
	}
	if (cli_bus_open(argv[1], &config, &bus) < 0)
		return 2;
	if (strcmp(argv[2], "verify") == 0 && (argc == 7 || argc == 8))
		ret = verify(bus, argv + 3, argc == 8 && strcmp(argv[7], "event") == 0);
	else if (strcmp(argv[2], "sign") == 0 && argc == 5)
		ret = sign(bus, argv + 3);
	else
		ret = 2;
	cli_bus_close(&config, &bus);
	return ret;
}
