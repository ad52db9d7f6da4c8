/* mf-fake-store: a stand-in for the account store's deliver endpoint, for
 * smtp-in integration tests while (or where) the real store is not used.
 *
 *   mf-fake-store NATS_URL BLOB_DIR OUT_DIR
 *
 * Serves store.v1.deliver.* and, per request, reads OUT_DIR/mode ("ok"
 * when missing; "temp", "perm" or "hang" to simulate failures).  With ok it
 * writes OUT_DIR/<account>.<n>.eml (the recipient's header prefix followed
 * by the blob, as the store would keep it) and OUT_DIR/<account>.<n>.meta
 * (envelope fields, one "key value" per line), then answers OK.  Runs until
 * SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "bus.h"
#include "log.h"
#include "store.pb-c.h"

struct fake {
	struct mf_blob_store *blobs;
	const char *out;
	unsigned n;
};

static void read_mode(const char *dir, char *mode, size_t size)
{
	char path[4096];
	FILE *f;

	snprintf(mode, size, "ok");
	snprintf(path, sizeof(path), "%s/mode", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fgets(mode, (int)size, f) == NULL)
		snprintf(mode, size, "ok");
	mode[strcspn(mode, "\r\n")] = '\0';
	fclose(f);
}

static void handle(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	struct fake *fk = ctx;
	Mailfleet__V1__DeliverRequest *dr;
	Mailfleet__V1__DeliverReply rep = MAILFLEET__V1__DELIVER_REPLY__INIT;
	char mode[64], path[4096];
	char *data = NULL;
	size_t size;
	const char *err;
	FILE *f;

	dr = mailfleet__v1__deliver_request__unpack(NULL, req->body_len, req->body);
	if (dr == NULL || dr->n_recipients == 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed deliver request");
		goto out;
	}
	read_mode(fk->out, mode, sizeof(mode));
	if (strcmp(mode, "hang") == 0) {
		sleep(60);
		goto out;
	}
	if (strcmp(mode, "temp") == 0) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "fake store: temporary failure");
		goto out;
	}
	Mailfleet__V1__DeliverResult **results = calloc(dr->n_recipients, sizeof(*results));
	Mailfleet__V1__Status *st = calloc(dr->n_recipients, sizeof(*st));
	Mailfleet__V1__DeliverResult *res = calloc(dr->n_recipients, sizeof(*res));
	if (strcmp(mode, "perm") != 0 &&
	    mf_blob_read_all(fk->blobs, dr->blob_key, 256 * 1024 * 1024, &data, &size, &err) != 1) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "fake store: cannot read blob");
		goto free_results;
	}
	for (size_t i = 0; i < dr->n_recipients && strcmp(mode, "perm") != 0; i++) {
		Mailfleet__V1__DeliverRecipient *r = dr->recipients[i];
		unsigned n = __atomic_add_fetch(&fk->n, 1, __ATOMIC_SEQ_CST);
		snprintf(path, sizeof(path), "%s/%s.%u.eml", fk->out, dr->account, n);
		f = fopen(path, "w");
		if (f != NULL) {
			fwrite(r->header_prefix.data, 1, r->header_prefix.len, f);
			fwrite(data, 1, size, f);
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/%s.%u.meta", fk->out, dr->account, n);
		f = fopen(path, "w");
		if (f != NULL) {
			fprintf(f, "account %s\nmail_from %s\naddress %s\nmessage_id %s\n"
				"envid %s\nret %s\nrequiretls %d\nsmtputf8 %d\nnotify %u\norcpt %s\n",
				dr->account, dr->mail_from, r->address, dr->message_id,
				dr->dsn_envid, dr->dsn_ret, dr->requiretls, dr->smtputf8,
				r->dsn_notify, r->dsn_orcpt);
			fclose(f);
		}
	}
	for (size_t i = 0; i < dr->n_recipients; i++) {
		mailfleet__v1__status__init(&st[i]);
		mailfleet__v1__deliver_result__init(&res[i]);
		res[i].address = dr->recipients[i]->address;
		res[i].status = &st[i];
		if (strcmp(mode, "perm") == 0) {
			st[i].code = MAILFLEET__V1__STATUS__CODE__PERMANENT;
			st[i].message = "fake store: mailbox full";
			res[i].smtp_code = 552;
			res[i].enhanced_code = "5.2.2";
		} else {
			res[i].mailbox = "Inbox";
			res[i].uid = fk->n;
		}
		results[i] = &res[i];
	}
	rep.n_results = dr->n_recipients;
	rep.results = results;
	size_t len = mailfleet__v1__deliver_reply__get_packed_size(&rep);
	uint8_t *body = malloc(len > 0 ? len : 1);
	mailfleet__v1__deliver_reply__pack(&rep, body);
	mf_bus_response_set_body(resp, body, len);
	free(body);
free_results:
	free(results);
	free(st);
	free(res);
out:
	free(data);
	if (dr != NULL)
		mailfleet__v1__deliver_request__free_unpacked(dr, NULL);
}

int main(int argc, char **argv)
{
	struct fake fk = { 0 };
	struct mf_bus *bus = NULL;
	const char *err;
	sigset_t set;
	int sig;

	if (argc != 4) {
		fprintf(stderr, "usage: mf-fake-store NATS_URL BLOB_DIR OUT_DIR\n");
		return 2;
	}
	mf_log_init("fake-store");
	fk.out = argv[3];
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (mf_blob_store_open(argv[2], &fk.blobs, &err) < 0 ||
	    mf_bus_connect(argv[1], "fake-store", &bus, &err) < 0 ||
	    mf_bus_serve(bus, "store.v1.deliver.*", "store", 4, handle, &fk, &err) < 0) {
		fprintf(stderr, "mf-fake-store: %s\n", err);
		return 1;
	}
	printf("fake store ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	mf_bus_close(&bus);
	mf_blob_store_free(&fk.blobs);
	return 0;
}
