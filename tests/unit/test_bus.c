/* Tests for the bus module against a real nats-server (with JetStream) on a
 * random loopback port, killed by PID at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bus.h"
#include "common.pb-c.h"
#include "log.h"

struct nats_server {
	pid_t pid;
	int port;
	char url[64];
	char store[256];
};

static char tmpdir[128];
static struct nats_server main_server;
/* Every server we started, so that a failed test still kills it. */
#define MAX_SERVERS 8
static pid_t started[MAX_SERVERS];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void server_init(struct nats_server *srv, const char *name)
{
	srv->pid = -1;
	srv->port = free_port();
	snprintf(srv->url, sizeof(srv->url), "nats://127.0.0.1:%d", srv->port);
	snprintf(srv->store, sizeof(srv->store), "%s/%s", tmpdir, name);
}

/* Starts nats-server on srv->port; returns 0 once it accepts connections. */
static int server_start(struct nats_server *srv)
{
	char port[16];
	int64_t until;
	pid_t pid;

	snprintf(port, sizeof(port), "%d", srv->port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
		execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port,
		       "-js", "-sd", srv->store, (char *)NULL);
		_exit(127);
	}
	srv->pid = pid;
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (started[i] == 0) {
			started[i] = pid;
			break;
		}
	}
	until = now_ms() + 10000;
	while (now_ms() < until) {
		if (port_open(srv->port))
			return 0;
		usleep(20000);
	}
	return -1;
}

static void server_stop(struct nats_server *srv, int sig)
{
	if (srv->pid <= 0)
		return;
	kill(srv->pid, sig);
	waitpid(srv->pid, NULL, 0);
	for (int i = 0; i < MAX_SERVERS; i++)
		if (started[i] == srv->pid)
			started[i] = 0;
	srv->pid = -1;
}

static bool wait_connected(struct mf_bus *bus, bool want, int64_t ms)
{
	int64_t until = now_ms() + ms;

	while (now_ms() < until) {
		if (mf_bus_connected(bus) == want)
			return true;
		usleep(20000);
	}
	return mf_bus_connected(bus) == want;
}

static struct mf_bus *bus_new(const char *url, const char *name)
{
	struct mf_bus *bus = NULL;
	const char *err = NULL;

	assert_int_equal(mf_bus_connect(url, name, &bus, &err), 0);
	assert_non_null(bus);
	return bus;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_bus.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	mf_log_init("test-bus");
	server_init(&main_server, "main");
	return server_start(&main_server);
}

static int group_teardown(void **state)
{
	server_stop(&main_server, SIGTERM);
	for (int i = 0; i < MAX_SERVERS; i++) {
		if (started[i] > 0) {
			kill(started[i], SIGKILL);
			waitpid(started[i], NULL, 0);
		}
	}
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* --- handlers --------------------------------------------------------------- */

struct echo_ctx {
	atomic_int calls;
	char cid[64];
	int64_t deadline;
};

/* Echoes the body; "temp" and "perm" bodies fail as named. */
static void echo_handler(void *ctx, const struct mf_bus_request *req,
			 struct mf_bus_response *resp)
{
	struct echo_ctx *ec = ctx;

	atomic_fetch_add(&ec->calls, 1);
	snprintf(ec->cid, sizeof(ec->cid), "%s", req->cid);
	ec->deadline = req->deadline_unix_ms;
	if (req->body_len == 4 && memcmp(req->body, "temp", 4) == 0) {
		mf_bus_response_set(resp, MF_BUS_TEMPORARY, "try again in %d s", 30);
		return;
	}
	if (req->body_len == 4 && memcmp(req->body, "perm", 4) == 0) {
		mf_bus_response_set(resp, MF_BUS_PERMANENT, "no such user");
		return;
	}
	if (req->body_len == 5 && memcmp(req->body, "sleep", 5) == 0)
		usleep(700000);
	mf_bus_response_set(resp, MF_BUS_OK, "echo");
	mf_bus_response_set_body(resp, req->body, req->body_len);
}

/* --- request / reply ------------------------------------------------------ */

static void test_request_ok(void **state)
{
	struct mf_bus *srv = bus_new(main_server.url, "srv");
	struct mf_bus *cli = bus_new(main_server.url, "cli");
	struct echo_ctx ec = { 0 };
	struct mf_bus_reply reply;
	struct mf_bus_stats st;
	const char *err = NULL;
	int64_t before;

	assert_true(wait_connected(srv, true, 5000));
	assert_true(wait_connected(cli, true, 5000));
	assert_int_equal(mf_bus_serve(srv, "t.v1.echo", "echo", 2, echo_handler, &ec, &err), 0);

	before = unix_ms();
	assert_int_equal(mf_bus_request(cli, "t.v1.echo", "cid-1", "hello", 5, 3000, &reply), 0);
	assert_int_equal(reply.status, MF_BUS_OK);
	assert_string_equal(reply.message, "echo");
	assert_int_equal(reply.body_len, 5);
	assert_memory_equal(reply.body, "hello", 5);
	assert_string_equal(ec.cid, "cid-1");
	/* the deadline travels in the envelope */
	assert_true(ec.deadline >= before + 3000 && ec.deadline <= unix_ms() + 3000);
	mf_bus_reply_free(&reply);

	/* empty body, no cid */
	assert_int_equal(mf_bus_request(cli, "t.v1.echo", NULL, NULL, 0, 3000, &reply), 0);
	assert_int_equal(reply.body_len, 0);
	assert_null(reply.body);
	assert_string_equal(ec.cid, "");
	mf_bus_reply_free(&reply);

	mf_bus_get_stats(srv, &st);
	assert_int_equal(st.requests_served, 2);
	assert_int_equal(st.request_errors, 0);
	mf_bus_get_stats(cli, &st);
	assert_int_equal(st.requests_sent, 2);
	assert_int_equal(st.request_failures, 0);

	mf_bus_close(&cli);
	mf_bus_close(&srv);
	assert_null(srv);
}

static void test_statuses_round_trip(void **state)
{
	struct mf_bus *bus = bus_new(main_server.url, "status");
	struct echo_ctx ec = { 0 };
	struct mf_bus_reply reply;
	struct mf_bus_stats st;
	const char *err = NULL;

	assert_true(wait_connected(bus, true, 5000));
	assert_int_equal(mf_bus_serve(bus, "t.v1.status", "status", 1, echo_handler, &ec,
				      &err), 0);
	assert_int_equal(mf_bus_request(bus, "t.v1.status", "c", "temp", 4, 3000, &reply), -1);
	assert_int_equal(reply.status, MF_BUS_TEMPORARY);
	assert_string_equal(reply.message, "try again in 30 s");
	mf_bus_reply_free(&reply);

	assert_int_equal(mf_bus_request(bus, "t.v1.status", "c", "perm", 4, 3000, &reply), -1);
	assert_int_equal(reply.status, MF_BUS_PERMANENT);
	assert_string_equal(reply.message, "no such user");
	mf_bus_reply_free(&reply);

	mf_bus_get_stats(bus, &st);
	assert_int_equal(st.requests_served, 2);
	assert_int_equal(st.request_errors, 2);
	/* the server answered: not a transport failure */
	assert_int_equal(st.request_failures, 0);
	mf_bus_close(&bus);
}

static void test_no_responder_and_timeout(void **state)
{
	struct mf_bus *bus = bus_new(main_server.url, "nobody");
	struct echo_ctx ec = { 0 };
	struct mf_bus_reply reply;
	struct mf_bus_stats st;
	const char *err = NULL;
	int64_t start;

	assert_true(wait_connected(bus, true, 5000));
	/* nats-server >= 2.2 says at once that nobody listens */
	start = now_ms();
	assert_int_equal(mf_bus_request(bus, "t.v1.nobody", "c", "x", 1, 5000, &reply), -1);
	assert_true(now_ms() - start < 1000);
	assert_int_equal(reply.status, MF_BUS_TEMPORARY);
	assert_non_null(strstr(reply.message, "t.v1.nobody"));
	mf_bus_reply_free(&reply);

	/* a responder too slow for the caller's timeout */
	assert_int_equal(mf_bus_serve(bus, "t.v1.slow", "slow", 1, echo_handler, &ec, &err), 0);
	start = now_ms();
	assert_int_equal(mf_bus_request(bus, "t.v1.slow", "c", "sleep", 5, 200, &reply), -1);
	assert_true(now_ms() - start < 650);
	assert_int_equal(reply.status, MF_BUS_TEMPORARY);
	assert_string_equal(reply.message, "t.v1.slow: no service answered within 200 ms");
	mf_bus_reply_free(&reply);

	/* caller mistakes are permanent */
	assert_int_equal(mf_bus_request(bus, "bad subject", "c", "x", 1, 200, &reply), -1);
	assert_int_equal(reply.status, MF_BUS_PERMANENT);
	mf_bus_reply_free(&reply);

	mf_bus_get_stats(bus, &st);
	assert_int_equal(st.requests_sent, 3);
	assert_int_equal(st.request_failures, 3);
	mf_bus_close(&bus); /* waits for the sleeping handler */
	assert_int_equal(atomic_load(&ec.calls), 1);
}

static void test_queue_group_shares_load(void **state)
{
	struct mf_bus *a = bus_new(main_server.url, "a");
	struct mf_bus *b = bus_new(main_server.url, "b");
	struct mf_bus *cli = bus_new(main_server.url, "cli");
	struct echo_ctx ea = { 0 }, eb = { 0 };
	struct mf_bus_reply reply;
	const char *err = NULL;
	char body[16];
	int n = 40;

	assert_true(wait_connected(a, true, 5000));
	assert_true(wait_connected(b, true, 5000));
	assert_true(wait_connected(cli, true, 5000));
	assert_int_equal(mf_bus_serve(a, "t.v1.share", "share", 2, echo_handler, &ea, &err), 0);
	assert_int_equal(mf_bus_serve(b, "t.v1.share", "share", 2, echo_handler, &eb, &err), 0);
	for (int i = 0; i < n; i++) {
		int len = snprintf(body, sizeof(body), "r%d", i);

		assert_int_equal(mf_bus_request(cli, "t.v1.share", NULL, body, (size_t)len,
						3000, &reply), 0);
		assert_int_equal(reply.body_len, (size_t)len);
		assert_memory_equal(reply.body, body, (size_t)len);
		mf_bus_reply_free(&reply);
	}
	/* each request answered exactly once, by both members */
	assert_int_equal(atomic_load(&ea.calls) + atomic_load(&eb.calls), n);
	assert_true(atomic_load(&ea.calls) > 0);
	assert_true(atomic_load(&eb.calls) > 0);
	mf_bus_close(&cli);
	mf_bus_close(&a);
	mf_bus_close(&b);
}

/* Sends payload to subject over a plain nats.c connection; returns the
 * reply message (caller destroys) or NULL on timeout. */
static natsMsg *raw_request(const char *subject, const void *payload, size_t len,
			    int64_t timeout_ms)
{
	natsConnection *nc = NULL;
	natsMsg *msg = NULL;

	assert_int_equal(natsConnection_ConnectTo(&nc, main_server.url), NATS_OK);
	(void)natsConnection_Request(&msg, nc, subject, payload, (int)len, timeout_ms);
	natsConnection_Destroy(nc);
	return msg;
}

static size_t pack_request(uint8_t *out, int64_t deadline, const char *cid)
{
	Mailfleet__V1__Request env = MAILFLEET__V1__REQUEST__INIT;

	env.deadline_unix_ms = deadline;
	env.cid = (char *)cid;
	return mailfleet__v1__request__pack(&env, out);
}

static void test_expired_dropped_and_malformed_answered(void **state)
{
	struct mf_bus *bus = bus_new(main_server.url, "expiry");
	struct echo_ctx ec = { 0 };
	Mailfleet__V1__Reply *rep;
	struct mf_bus_stats st;
	const char *err = NULL;
	uint8_t buf[256];
	natsMsg *msg;
	size_t len;

	assert_true(wait_connected(bus, true, 5000));
	assert_int_equal(mf_bus_serve(bus, "t.v1.exp", "exp", 1, echo_handler, &ec, &err), 0);

	/* deadline one second ago: dropped, never handled, never answered */
	len = pack_request(buf, unix_ms() - 1000, "late");
	msg = raw_request("t.v1.exp", buf, len, 300);
	assert_null(msg);
	assert_int_equal(atomic_load(&ec.calls), 0);
	mf_bus_get_stats(bus, &st);
	assert_int_equal(st.requests_expired, 1);

	/* a valid envelope with a future deadline is handled */
	len = pack_request(buf, unix_ms() + 5000, "ok");
	msg = raw_request("t.v1.exp", buf, len, 2000);
	assert_non_null(msg);
	natsMsg_Destroy(msg);
	assert_int_equal(atomic_load(&ec.calls), 1);

	/* garbage, and an envelope without deadline: PERMANENT "malformed request" */
	const char *bad[] = { "\xff\xff\xff\xff", "" };
	size_t bad_len[] = { 4, 0 };
	for (size_t i = 0; i < 2; i++) {
		msg = raw_request("t.v1.exp", bad[i], bad_len[i], 2000);
		assert_non_null(msg);
		rep = mailfleet__v1__reply__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
						   (const uint8_t *)natsMsg_GetData(msg));
		assert_non_null(rep);
		assert_non_null(rep->status);
		assert_int_equal(rep->status->code, MAILFLEET__V1__STATUS__CODE__PERMANENT);
		assert_string_equal(rep->status->message, "malformed request");
		mailfleet__v1__reply__free_unpacked(rep, NULL);
		natsMsg_Destroy(msg);
	}
	assert_int_equal(atomic_load(&ec.calls), 1);
	mf_bus_get_stats(bus, &st);
	assert_int_equal(st.requests_malformed, 2);
	mf_bus_close(&bus);
}

/* A handler that blocks until released, to fill the work queue. */
struct block_ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool released;
	atomic_int calls;
};

static void block_handler(void *ctx, const struct mf_bus_request *req,
			  struct mf_bus_response *resp)
{
	struct block_ctx *bc = ctx;

	atomic_fetch_add(&bc->calls, 1);
	pthread_mutex_lock(&bc->lock);
	while (!bc->released)
		pthread_cond_wait(&bc->cond, &bc->lock);
	pthread_mutex_unlock(&bc->lock);
}

static void test_full_queue_answers_busy(void **state)
{
	struct mf_bus *bus = bus_new(main_server.url, "busy");
	struct block_ctx bc = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
				false, 0 };
	natsConnection *nc = NULL;
	natsSubscription *inbox = NULL;
	const char *err = NULL;
	int total = MF_BUS_QUEUE_MAX + 80, ok = 0, busy = 0, other = 0;
	uint8_t buf[64];
	size_t len;
	natsMsg *msg;

	assert_true(wait_connected(bus, true, 5000));
	assert_int_equal(mf_bus_serve(bus, "t.v1.busy", "busy", 1, block_handler, &bc, &err), 0);
	assert_int_equal(natsConnection_ConnectTo(&nc, main_server.url), NATS_OK);
	assert_int_equal(natsConnection_SubscribeSync(&inbox, nc, "test.inbox.busy"), NATS_OK);
	assert_int_equal(natsSubscription_SetPendingLimits(inbox, -1, -1), NATS_OK);
	len = pack_request(buf, unix_ms() + 30000, "b");
	for (int i = 0; i < total; i++)
		assert_int_equal(natsConnection_PublishRequest(nc, "t.v1.busy", "test.inbox.busy",
							       buf, (int)len), NATS_OK);
	assert_int_equal(natsConnection_Flush(nc), NATS_OK);

	/* one request in the handler, MF_BUS_QUEUE_MAX queued, the rest "busy" */
	while (busy < total - MF_BUS_QUEUE_MAX - 1 &&
	       natsSubscription_NextMsg(&msg, inbox, 3000) == NATS_OK) {
		Mailfleet__V1__Reply *rep = mailfleet__v1__reply__unpack(
			NULL, (size_t)natsMsg_GetDataLength(msg),
			(const uint8_t *)natsMsg_GetData(msg));

		assert_non_null(rep);
		if (rep->status->code == MAILFLEET__V1__STATUS__CODE__TEMPORARY &&
		    strcmp(rep->status->message, "busy") == 0)
			busy++;
		else
			other++;
		mailfleet__v1__reply__free_unpacked(rep, NULL);
		natsMsg_Destroy(msg);
	}
	assert_int_equal(other, 0);
	assert_int_equal(busy, total - MF_BUS_QUEUE_MAX - 1);

	pthread_mutex_lock(&bc.lock);
	bc.released = true;
	pthread_cond_broadcast(&bc.cond);
	pthread_mutex_unlock(&bc.lock);
	/* everything queued is answered OK; at most one more was refused */
	while (ok + busy < total && natsSubscription_NextMsg(&msg, inbox, 5000) == NATS_OK) {
		Mailfleet__V1__Reply *rep = mailfleet__v1__reply__unpack(
			NULL, (size_t)natsMsg_GetDataLength(msg),
			(const uint8_t *)natsMsg_GetData(msg));

		assert_non_null(rep);
		if (rep->status->code == MAILFLEET__V1__STATUS__CODE__OK)
			ok++;
		else
			busy++;
		mailfleet__v1__reply__free_unpacked(rep, NULL);
		natsMsg_Destroy(msg);
	}
	assert_int_equal(ok + busy, total);
	assert_true(ok >= MF_BUS_QUEUE_MAX);
	assert_int_equal(atomic_load(&bc.calls), ok);
	natsSubscription_Destroy(inbox);
	natsConnection_Destroy(nc);
	mf_bus_close(&bus);
}

/* --- events ----------------------------------------------------------------- */

struct event_ctx {
	pthread_mutex_t lock;
	char seen[256];
	atomic_int count;
	pthread_t thread;
};

static void event_handler(void *ctx, const char *subject, const uint8_t *data, size_t len)
{
	struct event_ctx *ev = ctx;
	size_t used;

	pthread_mutex_lock(&ev->lock);
	used = strlen(ev->seen);
	snprintf(ev->seen + used, sizeof(ev->seen) - used, "%s=%.*s;", subject, (int)len,
		 (const char *)data);
	ev->thread = pthread_self();
	pthread_mutex_unlock(&ev->lock);
	atomic_fetch_add(&ev->count, 1);
}

static bool wait_count(atomic_int *count, int want, int64_t ms)
{
	int64_t until = now_ms() + ms;

	while (now_ms() < until && atomic_load(count) < want)
		usleep(10000);
	return atomic_load(count) == want;
}

static void test_events(void **state)
{
	struct mf_bus *a = bus_new(main_server.url, "ev-a");
	struct mf_bus *b = bus_new(main_server.url, "ev-b");
	struct event_ctx all = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct event_ctx ga = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct event_ctx gb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct mf_bus_stats st;
	const char *err = NULL;

	assert_true(wait_connected(a, true, 5000));
	assert_true(wait_connected(b, true, 5000));
	assert_int_equal(mf_bus_subscribe(a, "config.v1.>", NULL, event_handler, &all, &err), 0);
	assert_int_equal(mf_bus_subscribe(a, "events.v1.x", "g", event_handler, &ga, &err), 0);
	assert_int_equal(mf_bus_subscribe(b, "events.v1.x", "g", event_handler, &gb, &err), 0);

	assert_int_equal(mf_bus_publish(b, "config.v1.changed", "1", 1, &err), 0);
	assert_int_equal(mf_bus_publish(b, "config.v1.changed", "2", 1, &err), 0);
	assert_int_equal(mf_bus_publish(b, "config.v1.other", "3", 1, &err), 0);
	assert_true(wait_count(&all.count, 3, 3000));
	/* in order, on a thread that is not ours */
	assert_string_equal(all.seen, "config.v1.changed=1;config.v1.changed=2;config.v1.other=3;");
	assert_false(pthread_equal(all.thread, pthread_self()));

	/* a queue group gets each event once */
	for (int i = 0; i < 20; i++)
		assert_int_equal(mf_bus_publish(a, "events.v1.x", "e", 1, &err), 0);
	int64_t until = now_ms() + 3000;
	while (now_ms() < until && atomic_load(&ga.count) + atomic_load(&gb.count) < 20)
		usleep(10000);
	usleep(100000);
	assert_int_equal(atomic_load(&ga.count) + atomic_load(&gb.count), 20);

	assert_int_equal(mf_bus_publish(a, "bad subject", "e", 1, &err), -1);
	mf_bus_get_stats(a, &st);
	assert_int_equal(st.events_received, 3 + (uint64_t)atomic_load(&ga.count));
	assert_int_equal(st.events_dropped, 0);
	mf_bus_close(&a);
	mf_bus_close(&b);
}

/* --- connection life -------------------------------------------------------- */

static void test_connect_while_server_down(void **state)
{
	struct nats_server srv;
	struct mf_bus *bus;
	struct echo_ctx ec = { 0 };
	struct mf_bus_reply reply;
	const char *err = NULL;
	int64_t start;

	server_init(&srv, "late");
	start = now_ms();
	bus = bus_new(srv.url, "early");
	assert_true(now_ms() - start < 1000); /* does not block */
	assert_false(mf_bus_connected(bus));

	/* served before any connection exists */
	assert_int_equal(mf_bus_serve(bus, "t.v1.late", "late", 1, echo_handler, &ec, &err), 0);
	start = now_ms();
	assert_int_equal(mf_bus_request(bus, "t.v1.late", NULL, "x", 1, 3000, &reply), -1);
	assert_true(now_ms() - start < 500);
	assert_int_equal(reply.status, MF_BUS_TEMPORARY);
	assert_string_equal(reply.message, "t.v1.late: not connected to the bus");
	mf_bus_reply_free(&reply);

	assert_int_equal(server_start(&srv), 0);
	assert_true(wait_connected(bus, true, 10000));
	assert_int_equal(mf_bus_request(bus, "t.v1.late", NULL, "x", 1, 3000, &reply), 0);
	assert_memory_equal(reply.body, "x", 1);
	mf_bus_reply_free(&reply);
	assert_int_equal(atomic_load(&ec.calls), 1);

	mf_bus_close(&bus);
	server_stop(&srv, SIGTERM);
}

static void test_server_restart(void **state)
{
	struct nats_server srv;
	struct mf_bus *server_bus, *client_bus;
	struct echo_ctx ec = { 0 };
	struct mf_bus_reply reply;
	struct mf_bus_stats st;
	const char *err = NULL;
	int64_t until;
	int ret = -1;

	server_init(&srv, "restart");
	assert_int_equal(server_start(&srv), 0);
	server_bus = bus_new(srv.url, "srv");
	client_bus = bus_new(srv.url, "cli");
	assert_true(wait_connected(server_bus, true, 5000));
	assert_true(wait_connected(client_bus, true, 5000));
	assert_int_equal(mf_bus_serve(server_bus, "t.v1.rs", "rs", 1, echo_handler, &ec, &err), 0);
	assert_int_equal(mf_bus_request(client_bus, "t.v1.rs", NULL, "a", 1, 3000, &reply), 0);
	mf_bus_reply_free(&reply);

	server_stop(&srv, SIGKILL);
	assert_true(wait_connected(client_bus, false, 5000));
	assert_int_equal(mf_bus_request(client_bus, "t.v1.rs", NULL, "b", 1, 1000, &reply), -1);
	assert_int_equal(reply.status, MF_BUS_TEMPORARY);
	mf_bus_reply_free(&reply);

	assert_int_equal(server_start(&srv), 0);
	assert_true(wait_connected(server_bus, true, 10000));
	assert_true(wait_connected(client_bus, true, 10000));
	/* both reconnect on their own; the server side resubscribes */
	until = now_ms() + 5000;
	while (now_ms() < until) {
		ret = mf_bus_request(client_bus, "t.v1.rs", NULL, "c", 1, 1000, &reply);
		if (ret == 0)
			break;
		mf_bus_reply_free(&reply);
		usleep(50000);
	}
	assert_int_equal(ret, 0);
	assert_memory_equal(reply.body, "c", 1);
	mf_bus_reply_free(&reply);

	mf_bus_get_stats(server_bus, &st);
	assert_true(st.reconnects >= 1);
	assert_true(st.disconnects >= 1);
	mf_bus_close(&client_bus);
	mf_bus_close(&server_bus);
	server_stop(&srv, SIGTERM);
}

/* --- JetStream -------------------------------------------------------------- */

static void fetch_expect(struct mf_bus_consumer *c, size_t want, int64_t timeout_ms,
			 struct mf_bus_jsmsg **msgs)
{
	const char *err = NULL;
	size_t n = 99;

	assert_int_equal(mf_bus_js_fetch(c, msgs, 10, timeout_ms, &n, &err), 0);
	assert_int_equal(n, want);
}

static void assert_jsmsg(struct mf_bus_jsmsg *m, const char *data, uint64_t delivered)
{
	size_t len;
	const uint8_t *d = mf_bus_jsmsg_data(m, &len);

	assert_int_equal(len, strlen(data));
	assert_memory_equal(d, data, len);
	assert_int_equal(mf_bus_jsmsg_delivered(m), delivered);
	assert_string_equal(mf_bus_jsmsg_subject(m), "jobs.smtp");
}

static void test_jetstream(void **state)
{
	struct mf_bus *bus = bus_new(main_server.url, "js");
	const char *subjects[] = { "jobs.>" };
	struct mf_bus_stream_config sc = {
		.name = "JOBS", .subjects = subjects, .nsubjects = 1,
		.retention = MF_BUS_RETENTION_WORKQUEUE,
	};
	struct mf_bus_consumer_config cc = {
		.stream = "JOBS", .durable = "workers", .filter_subject = "jobs.>",
		.ack_wait_ms = 30000, .max_deliver = 5,
	};
	struct mf_bus_consumer *c = NULL;
	struct mf_bus_jsmsg *msgs[10];
	const char *err = NULL;
	uint64_t seq[3], dup;

	assert_true(wait_connected(bus, true, 5000));
	assert_int_equal(mf_bus_js_ensure_stream(bus, &sc, 5000, &err), 0);
	/* idempotent */
	assert_int_equal(mf_bus_js_ensure_stream(bus, &sc, 5000, &err), 0);
	/* the retention of an existing stream cannot change: a clear error */
	sc.retention = MF_BUS_RETENTION_LIMITS;
	assert_int_equal(mf_bus_js_ensure_stream(bus, &sc, 5000, &err), -1);
	assert_non_null(strstr(err, "JOBS"));
	sc.retention = MF_BUS_RETENTION_WORKQUEUE;

	assert_int_equal(mf_bus_js_consumer_open(bus, &cc, 5000, &c, &err), 0);
	mf_bus_js_consumer_free(&c);
	assert_null(c);
	assert_int_equal(mf_bus_js_consumer_open(bus, &cc, 5000, &c, &err), 0);

	assert_int_equal(mf_bus_js_publish(bus, "jobs.smtp", "job1", 4, "id-1", 5000, &seq[0],
					   &err), 0);
	assert_int_equal(mf_bus_js_publish(bus, "jobs.smtp", "job2", 4, NULL, 5000, &seq[1],
					   &err), 0);
	assert_int_equal(mf_bus_js_publish(bus, "jobs.smtp", "job3", 4, NULL, 5000, &seq[2],
					   &err), 0);
	assert_true(seq[0] < seq[1] && seq[1] < seq[2]);
	/* the same msg id again is not stored twice */
	assert_int_equal(mf_bus_js_publish(bus, "jobs.smtp", "job1", 4, "id-1", 5000, &dup,
					   &err), 0);
	assert_int_equal(dup, seq[0]);
	/* no stream for the subject */
	assert_int_equal(mf_bus_js_publish(bus, "nostream.x", "x", 1, NULL, 1000, NULL, &err),
			 -1);

	fetch_expect(c, 3, 3000, msgs);
	assert_jsmsg(msgs[0], "job1", 1);
	assert_jsmsg(msgs[1], "job2", 1);
	assert_jsmsg(msgs[2], "job3", 1);
	assert_int_equal(mf_bus_jsmsg_seq(msgs[0]), seq[0]);
	assert_int_equal(mf_bus_jsmsg_ack(msgs[0], &err), 0);
	assert_int_equal(mf_bus_jsmsg_in_progress(msgs[1], &err), 0);
	assert_int_equal(mf_bus_jsmsg_ack(msgs[1], &err), 0);
	assert_int_equal(mf_bus_jsmsg_nak(msgs[2], 0, &err), 0);
	for (int i = 0; i < 3; i++)
		mf_bus_jsmsg_free(&msgs[i]);
	assert_null(msgs[0]);

	/* the nak'd one comes back, and only it */
	fetch_expect(c, 1, 3000, msgs);
	assert_jsmsg(msgs[0], "job3", 2);
	assert_int_equal(mf_bus_jsmsg_seq(msgs[0]), seq[2]);
	/* nak with a delay: not before it */
	assert_int_equal(mf_bus_jsmsg_nak(msgs[0], 800, &err), 0);
	mf_bus_jsmsg_free(&msgs[0]);
	fetch_expect(c, 0, 300, msgs);
	fetch_expect(c, 1, 3000, msgs);
	assert_jsmsg(msgs[0], "job3", 3);
	assert_int_equal(mf_bus_jsmsg_ack(msgs[0], &err), 0);
	mf_bus_jsmsg_free(&msgs[0]);

	/* no duplicates after ack */
	fetch_expect(c, 0, 500, msgs);

	/* term: never again */
	assert_int_equal(mf_bus_js_publish(bus, "jobs.smtp", "job4", 4, NULL, 5000, NULL,
					   &err), 0);
	fetch_expect(c, 1, 3000, msgs);
	assert_jsmsg(msgs[0], "job4", 1);
	assert_int_equal(mf_bus_jsmsg_term(msgs[0], &err), 0);
	mf_bus_jsmsg_free(&msgs[0]);
	fetch_expect(c, 0, 500, msgs);

	mf_bus_js_consumer_free(&c);
	mf_bus_close(&bus);
}

static void test_jetstream_not_connected(void **state)
{
	struct nats_server srv;
	struct mf_bus *bus;
	const char *subjects[] = { "x.>" };
	struct mf_bus_stream_config sc = { .name = "X", .subjects = subjects, .nsubjects = 1 };
	const char *err = NULL;

	server_init(&srv, "never");
	bus = bus_new(srv.url, "js-down");
	assert_int_equal(mf_bus_js_ensure_stream(bus, &sc, 1000, &err), -1);
	assert_non_null(strstr(err, "not connected"));
	assert_int_equal(mf_bus_js_publish(bus, "x.y", "1", 1, NULL, 1000, NULL, &err), -1);

	/* closing a bus that never connected, with subscriptions, is quick */
	struct echo_ctx ec = { 0 };
	struct event_ctx ev = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int64_t start;

	assert_int_equal(mf_bus_serve(bus, "t.v1.never", "never", 3, echo_handler, &ec, &err), 0);
	assert_int_equal(mf_bus_subscribe(bus, "t.v1.ev", NULL, event_handler, &ev, &err), 0);
	/* bad arguments are refused */
	assert_int_equal(mf_bus_serve(bus, "t.v1.never", "never", 0, echo_handler, &ec, &err), -1);
	assert_int_equal(mf_bus_serve(bus, "", "never", 1, echo_handler, &ec, &err), -1);
	assert_int_equal(mf_bus_serve(bus, "t.v1.x", "a.b", 1, echo_handler, &ec, &err), -1);
	start = now_ms();
	mf_bus_close(&bus);
	assert_true(now_ms() - start < 2000);
	assert_null(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ok),
		cmocka_unit_test(test_statuses_round_trip),
		cmocka_unit_test(test_no_responder_and_timeout),
		cmocka_unit_test(test_queue_group_shares_load),
		cmocka_unit_test(test_expired_dropped_and_malformed_answered),
		cmocka_unit_test(test_full_queue_answers_busy),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_connect_while_server_down),
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_jetstream),
		cmocka_unit_test(test_jetstream_not_connected),
	};
	int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);

	nats_CloseAndWait(5000);
	return failed;
}
