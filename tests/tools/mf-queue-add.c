/* mf-queue-add: a test client that does what submission will do: puts a
 * message under incoming/ in the blob store, calls queue.v1.add, and
 * deletes its incoming key once the queue committed.
 *
 *   mf-queue-add -c mailfleet.conf --from a@b --to c@d [--to ...]
 *                [--account NAME] [--file MSG] [--transport SPEC]
 *                [--notify BITS] [--ret FULL|HDRS] [--envid ID]
 *                [--max-attempts N] [--release-in-ms MS] [--smtputf8]
 * Prints "queued base=<id> ids=<id>,<id>..." and exits 0, or the error and 1. */
#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "config.h"
#include "services/cli/cli_bus.h"

#include "queue.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RCPTS_MAX 1000

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct mf_buf b;
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return NULL;
	mf_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		mf_buf_append(&b, chunk, n);
	if (f != stdin)
		fclose(f);
	*len_r = b.len;
	return b.data != NULL ? mf_buf_steal(&b) : mf_xstrdup("");
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *from = "", *account = "", *file = NULL, *transport = "";
	const char *ret = "", *envid = "", *err;
	Mailfleet__V1__QueueRecipient rcpts[RCPTS_MAX], *rcptp[RCPTS_MAX];
	Mailfleet__V1__QueueAddRequest req = MAILFLEET__V1__QUEUE_ADD_REQUEST__INIT;
	Mailfleet__V1__QueueAddReply *rep;
	struct mf_config *cfg = NULL;
	struct mf_bus *bus = NULL;
	struct mf_blob_store *blobs = NULL;
	struct mf_bus_reply reply;
	size_t nrcpts = 0, len, plen;
	unsigned notify = 0, max_attempts = 0;
	long long release_in = 0;
	bool smtputf8 = false;
	char *data, *key;
	uint8_t *buf;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--smtputf8") == 0) {
			smtputf8 = true;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "mf-queue-add: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "-c") == 0)
			conf = v;
		else if (strcmp(a, "--from") == 0)
			from = v;
		else if (strcmp(a, "--to") == 0 && nrcpts < RCPTS_MAX) {
			mailfleet__v1__queue_recipient__init(&rcpts[nrcpts]);
			rcpts[nrcpts].address = (char *)v;
			rcptp[nrcpts] = &rcpts[nrcpts];
			nrcpts++;
		} else if (strcmp(a, "--account") == 0)
			account = v;
		else if (strcmp(a, "--file") == 0)
			file = v;
		else if (strcmp(a, "--transport") == 0)
			transport = v;
		else if (strcmp(a, "--notify") == 0)
			notify = (unsigned)atoi(v);
		else if (strcmp(a, "--ret") == 0)
			ret = v;
		else if (strcmp(a, "--envid") == 0)
			envid = v;
		else if (strcmp(a, "--max-attempts") == 0)
			max_attempts = (unsigned)atoi(v);
		else if (strcmp(a, "--release-in-ms") == 0)
			release_in = atoll(v);
		else {
			fprintf(stderr, "mf-queue-add: unknown option %s\n", a);
			return 2;
		}
	}
	for (size_t i = 0; i < nrcpts; i++)
		rcpts[i].dsn_notify = notify;
	if (file != NULL) {
		data = read_file(file, &len);
		if (data == NULL) {
			perror(file);
			return 1;
		}
	} else {
		data = mf_xasprintf("From: <%s>\r\nTo: <%s>\r\nSubject: test\r\n"
				    "Message-ID: <test-%ld@mf-queue-add>\r\n\r\nhello\r\n", from,
				    nrcpts > 0 ? rcpts[0].address : "", (long)getpid());
		len = strlen(data);
	}
	if (cli_bus_open(conf, &cfg, &bus) < 0)
		goto out;
	if (mf_blob_store_open(cfg->blob_dir, &blobs, &err) < 0) {
		fprintf(stderr, "mf-queue-add: %s\n", err);
		goto out;
	}
	key = mf_xasprintf("incoming/test/%ld-%ld", (long)time(NULL), (long)getpid());
	if (mf_blob_put(blobs, key, data, len, &err) < 0) {
		fprintf(stderr, "mf-queue-add: %s\n", err);
		free(key);
		goto out;
	}
	req.account = (char *)account;
	req.mail_from = (char *)from;
	req.recipients = rcptp;
	req.n_recipients = nrcpts;
	req.blob_key = key;
	req.size = len;
	req.message_id = "<test@mf-queue-add>";
	req.transport = (char *)transport;
	req.dsn_ret = (char *)ret;
	req.dsn_envid = (char *)envid;
	req.max_attempts = max_attempts;
	req.smtputf8 = smtputf8;
	if (release_in > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		req.release_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + release_in;
	}
	plen = mailfleet__v1__queue_add_request__get_packed_size(&req);
	buf = mf_xmalloc(plen > 0 ? plen : 1);
	mailfleet__v1__queue_add_request__pack(&req, buf);
	if (mf_bus_request(bus, "queue.v1.add", "mf-queue-add", buf, plen, 10000, &reply) < 0) {
		fprintf(stderr, "mf-queue-add: %s: %s\n", mf_bus_status_name(reply.status),
			reply.message);
		(void)mf_blob_delete(blobs, key, &err);
	} else {
		rep = mailfleet__v1__queue_add_reply__unpack(NULL, reply.body_len, reply.body);
		if (rep != NULL) {
			printf("queued base=%lld ids=", (long long)rep->base_id);
			for (size_t i = 0; i < rep->n_ids; i++)
				printf("%s%lld", i > 0 ? "," : "", (long long)rep->ids[i]);
			printf("\n");
			mailfleet__v1__queue_add_reply__free_unpacked(rep, NULL);
			rc = 0;
		}
		/* The queue has its own link now. */
		(void)mf_blob_delete(blobs, key, &err);
	}
	mf_bus_reply_free(&reply);
	free(buf);
	free(key);
out:
	mf_blob_store_free(&blobs);
	cli_bus_close(&cfg, &bus);
	free(data);
	return rc;
}
