/* mf-store: a small client of the store API for integration tests.
 *
 *   mf-store -c CONF put KEY FILE                  put FILE into the blob store as KEY
 *   mf-store -c CONF deliver ACCOUNT KEY RCPT[=MAILBOX[=PREFIX]]...
 *   mf-store -c CONF auth ACCOUNT LOGIN PASSWORD
 *   mf-store -c CONF mailboxes ACCOUNT
 *   mf-store -c CONF messages ACCOUNT MAILBOX [FIRST_UID [LIMIT]]
 *   mf-store -c CONF fetch ACCOUNT MAILBOX UID [OFFSET [MAX]]
 *   mf-store -c CONF flags ACCOUNT MAILBOX set|add|remove UID,UID,... FLAG...
 *   mf-store -c CONF move ACCOUNT MAILBOX UID,... DEST [copy]
 *   mf-store -c CONF expunge ACCOUNT MAILBOX [UID,...]
 *   mf-store -c CONF changes ACCOUNT COUNT SECONDS   print COUNT change events
 *   mf-store -c CONF raw SUBJECT                    send an empty/garbage body
 *
 * Output is one line per item, fields separated by spaces, for grep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "bus.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "store.pb-c.h"
#include "storeclient.h"

#define TIMEOUT_MS 10000

static struct mf_bus *bus;
static struct mf_config *config;

static int die(const char *what, const char *err)
{
	fprintf(stderr, "mf-store: %s: %s\n", what, err);
	return 1;
}

static int connect_bus(void)
{
	const char *err;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (mf_bus_connect(config->nats_url, "mf-store", &bus, &err) < 0)
		return die("connect", err);
	for (int waited = 0; !mf_bus_connected(bus); waited += 50) {
		if (waited > 5000)
			return die("connect", "NATS not reachable");
		nanosleep(&pause, NULL);
	}
	return 0;
}

/* Sends a request and unpacks nothing: returns the reply (caller frees). */
static int request(const char *op, const char *account, const void *body, size_t len,
		   struct mf_bus_reply *reply)
{
	char *subject = mf_xasprintf("store.v1.%s.%s", op, account);
	int r = mf_bus_request(bus, subject, "mf-store", body, len, TIMEOUT_MS, reply);

	free(subject);
	if (r < 0) {
		printf("error %s %s\n", mf_bus_status_name(reply->status), reply->message);
		mf_bus_reply_free(reply);
		return -1;
	}
	return 0;
}

static uint32_t *parse_uids(const char *s, size_t *n_r)
{
	uint32_t *u = mf_xcalloc(strlen(s) + 1, sizeof(*u));
	size_t n = 0;
	char *copy = mf_xstrdup(s), *save = NULL;

	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		u[n++] = (uint32_t)strtoul(t, NULL, 10);
	free(copy);
	*n_r = n;
	return u;
}

static void print_flags(char **flags, size_t n)
{
	if (n == 0)
		printf("-");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i > 0 ? "," : "", flags[i]);
}

#define PACK(type, msg, buf, len) do { \
	len = mailfleet__v1__##type##__get_packed_size(msg); \
	buf = mf_xmalloc(len + 1); \
	mailfleet__v1__##type##__pack(msg, buf); \
} while (0)

static int cmd_put(char **a, int n)
{
	struct mf_blob_store *bs;
	const char *err;
	char *data;
	size_t len;

	if (n != 2)
		return 2;
	if ((data = mf_fs_read_file(a[1], 64 * 1024 * 1024, &len, &err)) == NULL)
		return die("read", err);
	if (mf_blob_store_open(config->blob_dir, &bs, &err) < 0 ||
	    mf_blob_put(bs, a[0], data, len, &err) < 0)
		return die("put", err);
	mf_blob_store_free(&bs);
	free(data);
	printf("put %s %zu\n", a[0], len);
	return 0;
}

static int cmd_deliver(char **a, int n)
{
	struct mf_storeclient_rcpt *r;
	enum mf_bus_status status;
	const char *err;
	int ret;

	if (n < 3)
		return 2;
	r = mf_xcalloc((size_t)n, sizeof(*r));
	for (int i = 2; i < n; i++) {
		char *spec = a[i], *eq = strchr(spec, '=');

		r[i - 2].address = spec;
		if (eq != NULL) {
			char *eq2;

			*eq = '\0';
			r[i - 2].mailbox = eq + 1;
			eq2 = strchr(eq + 1, '=');
			if (eq2 != NULL) {
				*eq2 = '\0';
				r[i - 2].header_prefix = mf_xasprintf("%s\r\n", eq2 + 1);
				r[i - 2].header_prefix_len = strlen(eq2 + 1) + 2;
			}
		}
	}
	ret = mf_storeclient_deliver(bus, "mf-store", a[0], a[1], "test", "sender@example.org",
				     (int64_t)time(NULL) * 1000, r, (size_t)n - 2, TIMEOUT_MS,
				     &status, &err);
	if (ret < 0)
		printf("error %s %s\n", mf_bus_status_name(status), err);
	for (int i = 0; i < n - 2; i++) {
		printf("rcpt %s %s %u %s %s %u %s\n", r[i].address, mf_bus_status_name(r[i].status),
		       r[i].smtp_code, r[i].enhanced_code,
		       r[i].stored_mailbox != NULL && r[i].stored_mailbox[0] != '\0' ?
		       r[i].stored_mailbox : "-", r[i].uid, r[i].message);
		free((void *)r[i].header_prefix);
	}
	mf_storeclient_rcpts_clear(r, (size_t)n - 2);
	free(r);
	return ret < 0 ? 1 : 0;
}

static int cmd_auth(char **a, int n)
{
	struct mf_storeclient_auth auth = { 0 };
	enum mf_bus_status status;
	char *message = NULL;
	const char *err;
	bool ok;

	if (n != 3)
		return 2;
	auth.login = a[1];
	auth.password = a[2];
	auth.password_len = strlen(a[2]);
	auth.protocol = "test";
	auth.mechanism = "PLAIN";
	auth.remote_ip = "127.0.0.1";
	if (mf_storeclient_authenticate(bus, "mf-store", a[0], &auth, TIMEOUT_MS, &ok, &message,
					&status, &err) < 0) {
		printf("error %s %s\n", mf_bus_status_name(status), err);
		return 1;
	}
	printf("auth %s %s\n", ok ? "ok" : "failed", message != NULL ? message : "");
	free(message);
	return 0;
}

static int cmd_mailboxes(char **a, int n)
{
	Mailfleet__V1__MailboxesRequest in = MAILFLEET__V1__MAILBOXES_REQUEST__INIT;
	Mailfleet__V1__MailboxesReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n != 1)
		return 2;
	in.account = a[0];
	PACK(mailboxes_request, &in, buf, len);
	r = request("mailboxes", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__mailboxes_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("mailboxes", "bad reply");
	for (size_t i = 0; i < out->n_mailboxes; i++) {
		Mailfleet__V1__Mailbox *m = out->mailboxes[i];

		printf("mailbox %s messages=%u unseen=%u deleted=%u size=%llu uidnext=%u special=",
		       m->name, m->messages, m->unseen, m->deleted, (unsigned long long)m->size,
		       m->uidnext);
		print_flags(m->special_use, m->n_special_use);
		printf("\n");
	}
	mailfleet__v1__mailboxes_reply__free_unpacked(out, NULL);
	return 0;
}

static int cmd_messages(char **a, int n)
{
	Mailfleet__V1__MessagesRequest in = MAILFLEET__V1__MESSAGES_REQUEST__INIT;
	Mailfleet__V1__MessagesReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n < 2 || n > 4)
		return 2;
	in.account = a[0];
	in.mailbox = a[1];
	in.first_uid = n > 2 ? (uint32_t)strtoul(a[2], NULL, 10) : 0;
	in.limit = n > 3 ? (uint32_t)strtoul(a[3], NULL, 10) : 0;
	PACK(messages_request, &in, buf, len);
	r = request("messages", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__messages_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("messages", "bad reply");
	for (size_t i = 0; i < out->n_messages; i++) {
		Mailfleet__V1__MessageInfo *m = out->messages[i];

		printf("message uid=%u modseq=%llu size=%llu flags=", m->uid,
		       (unsigned long long)m->modseq, (unsigned long long)m->size);
		print_flags(m->flags, m->n_flags);
		printf(" subject=%s\n", m->subject);
	}
	printf("next %u\n", out->next_uid);
	mailfleet__v1__messages_reply__free_unpacked(out, NULL);
	return 0;
}

static int cmd_fetch(char **a, int n)
{
	Mailfleet__V1__FetchRequest in = MAILFLEET__V1__FETCH_REQUEST__INIT;
	Mailfleet__V1__FetchReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n < 3 || n > 5)
		return 2;
	in.account = a[0];
	in.mailbox = a[1];
	in.uid = (uint32_t)strtoul(a[2], NULL, 10);
	in.offset = n > 3 ? strtoull(a[3], NULL, 10) : 0;
	in.max_bytes = n > 4 ? strtoull(a[4], NULL, 10) : 0;
	PACK(fetch_request, &in, buf, len);
	r = request("fetch", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__fetch_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("fetch", "bad reply");
	fwrite(out->data.data, 1, out->data.len, stdout);
	mailfleet__v1__fetch_reply__free_unpacked(out, NULL);
	return 0;
}

static int cmd_flags(char **a, int n)
{
	Mailfleet__V1__FlagsRequest in = MAILFLEET__V1__FLAGS_REQUEST__INIT;
	Mailfleet__V1__FlagsReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n < 4)
		return 2;
	in.account = a[0];
	in.mailbox = a[1];
	in.mode = strcmp(a[2], "add") == 0 ? MAILFLEET__V1__FLAGS_REQUEST__MODE__ADD :
		  strcmp(a[2], "remove") == 0 ? MAILFLEET__V1__FLAGS_REQUEST__MODE__REMOVE :
		  MAILFLEET__V1__FLAGS_REQUEST__MODE__SET;
	in.uids = parse_uids(a[3], &in.n_uids);
	in.flags = a + 4;
	in.n_flags = (size_t)n - 4;
	PACK(flags_request, &in, buf, len);
	free(in.uids);
	r = request("flags", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__flags_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("flags", "bad reply");
	printf("flags modseq=%llu failed=%zu\n", (unsigned long long)out->modseq,
	       out->n_failed_uids);
	mailfleet__v1__flags_reply__free_unpacked(out, NULL);
	return 0;
}

static int cmd_move(char **a, int n)
{
	Mailfleet__V1__MoveRequest in = MAILFLEET__V1__MOVE_REQUEST__INIT;
	Mailfleet__V1__MoveReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n != 4 && n != 5)
		return 2;
	in.account = a[0];
	in.mailbox = a[1];
	in.uids = parse_uids(a[2], &in.n_uids);
	in.destination = a[3];
	in.copy = n == 5 && strcmp(a[4], "copy") == 0;
	PACK(move_request, &in, buf, len);
	free(in.uids);
	r = request("move", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__move_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("move", "bad reply");
	for (size_t i = 0; i < out->n_dst_uids; i++)
		printf("moved %u %u uidvalidity=%u\n", out->src_uids[i], out->dst_uids[i],
		       out->uidvalidity);
	mailfleet__v1__move_reply__free_unpacked(out, NULL);
	return 0;
}

static int cmd_expunge(char **a, int n)
{
	Mailfleet__V1__ExpungeRequest in = MAILFLEET__V1__EXPUNGE_REQUEST__INIT;
	Mailfleet__V1__ExpungeReply *out;
	struct mf_bus_reply reply;
	uint8_t *buf;
	size_t len;
	int r;

	if (n != 2 && n != 3)
		return 2;
	in.account = a[0];
	in.mailbox = a[1];
	if (n == 3)
		in.uids = parse_uids(a[2], &in.n_uids);
	PACK(expunge_request, &in, buf, len);
	free(in.uids);
	r = request("expunge", a[0], buf, len, &reply);
	free(buf);
	if (r < 0)
		return 1;
	out = mailfleet__v1__expunge_reply__unpack(NULL, reply.body_len, reply.body);
	mf_bus_reply_free(&reply);
	if (out == NULL)
		return die("expunge", "bad reply");
	for (size_t i = 0; i < out->n_expunged; i++)
		printf("expunged %u\n", out->expunged[i]);
	mailfleet__v1__expunge_reply__free_unpacked(out, NULL);
	return 0;
}

static int events_seen;

static void on_change(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	Mailfleet__V1__ChangeEvent *ev = mailfleet__v1__change_event__unpack(NULL, len, data);

	if (ev == NULL) {
		printf("change malformed\n");
	} else {
		printf("change kind=%d mailbox=%s modseq=%llu count=%zu\n", (int)ev->kind, ev->mailbox,
		       (unsigned long long)ev->modseq, ev->n_messages);
		mailfleet__v1__change_event__free_unpacked(ev, NULL);
	}
	fflush(stdout);
	__atomic_add_fetch(&events_seen, 1, __ATOMIC_SEQ_CST);
}

static int cmd_changes(char **a, int n)
{
	char *subject;
	const char *err;
	int want, secs;

	if (n != 3)
		return 2;
	want = atoi(a[1]);
	secs = atoi(a[2]);
	subject = mf_xasprintf("store.v1.changes.%s", a[0]);
	if (mf_bus_subscribe(bus, subject, NULL, on_change, NULL, &err) < 0)
		return die("subscribe", err);
	printf("subscribed\n");
	fflush(stdout);
	for (int i = 0; i < secs * 10 && __atomic_load_n(&events_seen, __ATOMIC_SEQ_CST) < want; i++)
		usleep(100 * 1000);
	free(subject);
	return __atomic_load_n(&events_seen, __ATOMIC_SEQ_CST) >= want ? 0 : 1;
}

static int cmd_raw(char **a, int n)
{
	struct mf_bus_reply reply;
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0x0f, 0x12 };

	if (n != 1)
		return 2;
	if (mf_bus_request(bus, a[0], "mf-store", garbage, sizeof(garbage), TIMEOUT_MS,
			   &reply) < 0)
		printf("error %s %s\n", mf_bus_status_name(reply.status), reply.message);
	else
		printf("ok\n");
	mf_bus_reply_free(&reply);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(char **a, int n);
		bool bus;
	} cmds[] = {
		{ "put", cmd_put, false }, { "deliver", cmd_deliver, true },
		{ "auth", cmd_auth, true }, { "mailboxes", cmd_mailboxes, true },
		{ "messages", cmd_messages, true }, { "fetch", cmd_fetch, true },
		{ "flags", cmd_flags, true }, { "move", cmd_move, true },
		{ "expunge", cmd_expunge, true }, { "changes", cmd_changes, true },
		{ "raw", cmd_raw, true },
	};
	const char *err;
	int ret = 2;

	mf_log_init("mf-store");
	mf_log_set_level("bus", "error", &err);
	if (argc < 4 || strcmp(argv[1], "-c") != 0)
		goto usage;
	if (mf_config_load(argv[2], &config, &err) < 0)
		return die("config", err);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[3], cmds[i].name) != 0)
			continue;
		if (cmds[i].bus && connect_bus() != 0)
			return 1;
		ret = cmds[i].run(argv + 4, argc - 4);
		break;
	}
	if (bus != NULL)
		mf_bus_close(&bus);
	mf_config_free(&config);
	if (ret != 2)
		return ret;
usage:
	fprintf(stderr, "usage: mf-store -c CONF put|deliver|auth|mailboxes|messages|fetch|flags|"
		"move|expunge|changes|raw ...\n");
	return 2;
}
