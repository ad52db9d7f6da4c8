/* mf-store-sink: stands in for the account store in tests of services that
 * deliver through it (store.v1.deliver.*): copies each delivered blob into
 * OUTDIR as <account>-<n>.eml and answers OK for every recipient.  With
 * --fail-temp every delivery gets a temporary error instead.
 *
 *   mf-store-sink -c mailfleet.conf OUTDIR [--fail-temp]
 * Runs until SIGTERM/SIGINT. */
#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "config.h"
#include "services/cli/cli_bus.h"

#include "store.pb-c.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINK_MESSAGE_MAX (64 * 1024 * 1024)

static const char *outdir;
static struct mf_blob_store *blobs;
static bool fail_temp;
static atomic_uint counter;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void handle(void *ctx, const struct mf_bus_request *req, struct mf_bus_response *resp)
{
	Mailfleet__V1__DeliverRequest *r;
	Mailfleet__V1__DeliverReply reply = MAILFLEET__V1__DELIVER_REPLY__INIT;
	Mailfleet__V1__DeliverResult *res = NULL, **resp_ = NULL;
	Mailfleet__V1__Status *st = NULL;
	char *data = NULL, *path = NULL;
	size_t len = 0;
	const char *err;
	FILE *f;

	r = mailfleet__v1__deliver_request__unpack(NULL, req->body_len, req->body);
	if (r == NULL) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "malformed");
		return;
	}
	if (fail_temp) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "store sink: simulated failure");
		goto out;
	}
	if (mf_blob_read_all(blobs, r->blob_key, SINK_MESSAGE_MAX, &data, &len, &err) != 1) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "store sink: blob %s unreadable",
				    r->blob_key);
		goto out;
	}
	path = mf_xasprintf("%s/%s-%u.eml", outdir, r->account, atomic_fetch_add(&counter, 1));
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len) {
		if (f != NULL)
			fclose(f);
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "store sink: cannot write %s", path);
		goto out;
	}
	fprintf(f, "\n--- envelope: account=%s from=<%s> rcpts=%zu rcpt0=<%s>\n", r->account,
		r->mail_from, r->n_recipients,
		r->n_recipients > 0 ? r->recipients[0]->address : "");
	fclose(f);
	res = mf_xcalloc(r->n_recipients + 1, sizeof(*res));
	resp_ = mf_xcalloc(r->n_recipients + 1, sizeof(*resp_));
	st = mf_xcalloc(r->n_recipients + 1, sizeof(*st));
	for (size_t i = 0; i < r->n_recipients; i++) {
		mailfleet__v1__deliver_result__init(&res[i]);
		mailfleet__v1__status__init(&st[i]);
		res[i].address = r->recipients[i]->address;
		res[i].status = &st[i];
		res[i].smtp_code = 250;
		res[i].enhanced_code = "2.0.0";
		res[i].mailbox = "Inbox";
		resp_[i] = &res[i];
	}
	reply.results = resp_;
	reply.n_results = r->n_recipients;
	{
		size_t plen = mailfleet__v1__deliver_reply__get_packed_size(&reply);
		uint8_t *buf = mf_xmalloc(plen > 0 ? plen : 1);
		mailfleet__v1__deliver_reply__pack(&reply, buf);
		mf_bus_response_take_body(resp, buf, plen);
	}
out:
	free(res);
	free(resp_);
	free(st);
	free(data);
	free(path);
	mailfleet__v1__deliver_request__free_unpacked(r, NULL);
}

int main(int argc, char **argv)
{
	struct mf_config *cfg = NULL;
	struct mf_bus *bus = NULL;
	const char *conf = NULL, *err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--fail-temp") == 0)
			fail_temp = true;
		else
			outdir = argv[i];
	}
	if (outdir == NULL) {
		fprintf(stderr, "usage: mf-store-sink -c mailfleet.conf OUTDIR [--fail-temp]\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (cli_bus_open(conf, &cfg, &bus) < 0)
		return 1;
	if (mf_blob_store_open(cfg->blob_dir, &blobs, &err) < 0 ||
	    mf_bus_serve(bus, "store.v1.deliver.>", "imap", 2, handle, NULL, &err) < 0) {
		fprintf(stderr, "mf-store-sink: %s\n", err);
		return 1;
	}
	printf("mf-store-sink ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	mf_bus_close(&bus);
	mf_blob_store_free(&blobs);
	mf_config_free(&cfg);
	return 0;
}
