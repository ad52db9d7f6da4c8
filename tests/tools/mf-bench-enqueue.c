/* mf-bench-enqueue: fills the queue for the delivery benchmark: N times
 * what submission does for one message (put it under incoming/ in the blob
 * store, call queue.v1.add, delete the incoming key once the queue has its
 * own link), from one process and one NATS connection, so that filling a
 * queue of thousands of messages takes seconds, not one process each.
 *
 *   mf-bench-enqueue -c mailfleet.conf -n COUNT -f FROM -t TO -a ACCOUNT -m MSGFILE
 *
 * Prints "queued=N seconds=S msgs_per_s=R"; exits 0 when every message was
 * queued, 1 at the first one that was not (with the queue's answer), 2 on
 * bad usage. */
#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "config.h"
#include "services/cli/cli_bus.h"
#include "tests/tools/mf_bench.h"

#include "queue.pb-c.h"

#include <fcntl.h>
#include <stdio.h>

#define BENCH_ENQUEUE_COUNT_MAX 10000000UL
#define BENCH_ENQUEUE_MSG_MAX (64 * 1024 * 1024)
#define BENCH_ENQUEUE_TIMEOUT_MS 30000

static int usage(void)
{
	fprintf(stderr, "usage: mf-bench-enqueue -c mailfleet.conf -n count -f from -t to -a account "
			"-m msgfile\n");
	return 2;
}

static char *read_file(const char *path, size_t *len_r)
{
	struct mf_buf b;
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	mf_buf_init(&b, BENCH_ENQUEUE_MSG_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if ((n < 0 && errno != EINTR) || (n > 0 && mf_buf_append(&b, chunk, (size_t)n) < 0)) {
			close(fd);
			mf_buf_free(&b);
			return NULL;
		}
	}
	close(fd);
	*len_r = b.len;
	return b.data != NULL ? mf_buf_steal(&b) : NULL;
}

/* Queues one message.  Returns 0, or -1 after printing why. */
static int enqueue_one(struct mf_bus *bus, struct mf_blob_store *blobs, unsigned long i,
		       const char *from, char *to, const char *account, const char *data,
		       size_t len)
{
	Mailfleet__V1__QueueRecipient rcpt = MAILFLEET__V1__QUEUE_RECIPIENT__INIT, *rcptp = &rcpt;
	Mailfleet__V1__QueueAddRequest req = MAILFLEET__V1__QUEUE_ADD_REQUEST__INIT;
	struct mf_bus_reply reply;
	const char *err = NULL;
	char *key = mf_xasprintf("incoming/bench/%ld-%lu", (long)getpid(), i);
	char *msgid = mf_xasprintf("<bench-%ld-%lu@mf-bench-enqueue>", (long)getpid(), i);
	uint8_t *buf = NULL;
	size_t plen;
	int ret = -1;

	if (mf_blob_put(blobs, key, data, len, &err) < 0) {
		fprintf(stderr, "mf-bench-enqueue: message %lu: %s\n", i, err);
		goto out;
	}
	rcpt.address = to;
	req.account = (char *)account;
	req.mail_from = (char *)from;
	req.recipients = &rcptp;
	req.n_recipients = 1;
	req.blob_key = key;
	req.size = len;
	req.message_id = msgid;
	plen = mailfleet__v1__queue_add_request__get_packed_size(&req);
	buf = mf_xmalloc(plen > 0 ? plen : 1);
	mailfleet__v1__queue_add_request__pack(&req, buf);
	if (mf_bus_request(bus, "queue.v1.add", "mf-bench-enqueue", buf, plen,
			   BENCH_ENQUEUE_TIMEOUT_MS, &reply) < 0)
		fprintf(stderr, "mf-bench-enqueue: message %lu: %s: %s\n", i,
			mf_bus_status_name(reply.status), reply.message);
	else
		ret = 0;
	mf_bus_reply_free(&reply);
	/* Whether queued or not, the incoming key is ours to remove: the
	 * queue keeps its own link. */
	(void)mf_blob_delete(blobs, key, &err);
out:
	free(buf);
	free(msgid);
	free(key);
	return ret;
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *from = NULL, *account = NULL, *msgfile = NULL, *err = NULL;
	char *to = NULL, *data = NULL, *end;
	struct mf_config *cfg = NULL;
	struct mf_bus *bus = NULL;
	struct mf_blob_store *blobs = NULL;
	unsigned long count = 0, i = 0;
	size_t len = 0;
	double t0, secs;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "c:n:f:t:a:m:")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'n':
			errno = 0;
			count = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || count == 0 || count > BENCH_ENQUEUE_COUNT_MAX)
				return usage();
			break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'a': account = optarg; break;
		case 'm': msgfile = optarg; break;
		default: return usage();
		}
	}
	if (conf == NULL || count == 0 || from == NULL || to == NULL || account == NULL ||
	    msgfile == NULL)
		return usage();
	data = read_file(msgfile, &len);
	if (data == NULL) {
		fprintf(stderr, "mf-bench-enqueue: cannot read %s\n", msgfile);
		return 1;
	}
	if (cli_bus_open(conf, &cfg, &bus) < 0)
		goto out;
	if (mf_blob_store_open(cfg->blob_dir, &blobs, &err) < 0) {
		fprintf(stderr, "mf-bench-enqueue: %s\n", err);
		goto out;
	}
	t0 = mf_bench_now();
	for (i = 0; i < count; i++)
		if (enqueue_one(bus, blobs, i, from, to, account, data, len) < 0)
			break;
	secs = mf_bench_now() - t0;
	printf("queued=%lu seconds=%.3f msgs_per_s=%.1f\n", i, secs, secs > 0 ? (double)i / secs : 0.0);
	if (i == count)
		rc = 0;
out:
	mf_blob_store_free(&blobs);
	cli_bus_close(&cfg, &bus);
	free(data);
	return rc;
}
