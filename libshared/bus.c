#include "bus.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include "common.pb-c.h"

#include <nats/nats.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUS_PKG "bus"
/* How long mf_bus_close waits for in-flight work and nats.c callbacks. */
#define MF_BUS_CLOSE_WAIT_MS 5000
#define MF_BUS_FLUSH_WAIT_MS 1000
/* A request envelope adds a deadline, a cid and field tags to the body. */
#define MF_BUS_ENVELOPE_OVERHEAD (MF_BUS_CID_MAX + 32)

struct mf_bus_sub {
	struct mf_bus *bus;
	struct mf_bus_sub *next;
	natsSubscription *nsub;
	char *subject;
	bool is_request;
	mf_bus_request_handler *request_handler;
	mf_bus_event_handler *event_handler;
	void *ctx;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Ring of messages handed over by nats.c's callback. */
	natsMsg *queue[MF_BUS_QUEUE_MAX];
	size_t head, count;
	bool stopping;
	bool complete;          /* nats.c will not call on_msg again */
	bool full_logged;       /* one warning per burst, the counters say the rest */
	unsigned nworkers;
	pthread_t workers[MF_BUS_WORKERS_MAX];
};

struct mf_bus {
	natsConnection *nc;
	jsCtx *js;
	char *url;
	char *name;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mf_bus_sub *subs;
	bool closed;            /* nats.c's closed callback has run */
	atomic_bool closing;    /* mf_bus_close has begun: disconnect is ours */

	_Atomic uint64_t reconnects, disconnects;
	_Atomic uint64_t requests_sent, request_failures;
	_Atomic uint64_t requests_served, request_errors, requests_expired;
	_Atomic uint64_t requests_busy, requests_malformed;
	_Atomic uint64_t events_received, events_dropped;
};

struct mf_bus_consumer {
	struct mf_bus *bus;
	natsSubscription *nsub;
	char *stream;
	char *durable;
	int64_t timeout_ms;
};

struct mf_bus_jsmsg {
	natsMsg *msg;
	int64_t timeout_ms;
	uint64_t seq;
	uint64_t delivered;
};

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* nats.c keeps a thread-local error stack with the server's text. */
static const char *nats_error(natsStatus s)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);

	/* Only when it belongs to s: the stack can hold an older error. */
	if (last == s && text != NULL && text[0] != '\0')
		return mf_errorf("%s", text);
	return mf_errorf("%s", natsStatus_GetText(s));
}

static bool subject_valid(const char *subject)
{
	size_t len;

	if (subject == NULL)
		return false;
	len = strlen(subject);
	if (len == 0 || len > MF_BUS_SUBJECT_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (subject[i] == ' ' || subject[i] == '\t' || subject[i] == '\r' ||
		    subject[i] == '\n')
			return false;
	return true;
}

/* Stream and consumer names become API subject tokens. */
static bool name_valid(const char *name)
{
	if (!subject_valid(name))
		return false;
	return strpbrk(name, ".*>") == NULL;
}

const char *mf_bus_status_name(enum mf_bus_status status)
{
	switch (status) {
	case MF_BUS_OK:
		return "ok";
	case MF_BUS_TEMPORARY:
		return "temporary";
	case MF_BUS_PERMANENT:
		return "permanent";
	}
	return "unknown";
}

/* --- connection ----------------------------------------------------------- */

static void log_url(enum mf_log_level level, natsConnection *nc, const char *name,
		    const char *msg)
{
	char url[256];

	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	mf_log(level, BUS_PKG, NULL, msg, "bus=%s url=%s", name, url);
}

static void on_connected(natsConnection *nc, void *closure)
{
	struct mf_bus *bus = closure;

	log_url(MF_LOG_INFO, nc, bus->name, "connected to nats");
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct mf_bus *bus = closure;

	if (atomic_load(&bus->closing)) {
		mf_log_debug(BUS_PKG, NULL, "disconnected from nats", "bus=%s url=%s",
			     bus->name, bus->url);
		return;
	}
	atomic_fetch_add(&bus->disconnects, 1);
	mf_log_warn(BUS_PKG, NULL, "disconnected from nats", "bus=%s url=%s", bus->name,
		    bus->url);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct mf_bus *bus = closure;

	atomic_fetch_add(&bus->reconnects, 1);
	log_url(MF_LOG_INFO, nc, bus->name, "reconnected to nats");
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct mf_bus *bus = closure;

	mf_log_debug(BUS_PKG, NULL, "nats connection closed", "bus=%s url=%s", bus->name,
		     bus->url);
	pthread_mutex_lock(&bus->lock);
	bus->closed = true;
	pthread_cond_broadcast(&bus->cond);
	pthread_mutex_unlock(&bus->lock);
}

static void on_async_error(natsConnection *nc, natsSubscription *nsub, natsStatus err,
			   void *closure)
{
	struct mf_bus *bus = closure;

	mf_log_warn(BUS_PKG, NULL, "nats error", "bus=%s subject=%s error=%s", bus->name,
		    nsub != NULL ? natsSubscription_GetSubject(nsub) : "",
		    natsStatus_GetText(err));
}

int mf_bus_connect(const char *url, const char *name, struct mf_bus **bus_r,
		   const char **error_r)
{
	natsOptions *opts = NULL;
	struct mf_bus *bus = NULL;
	natsStatus s;
	int ret = -1;

	*bus_r = NULL;
	if (url == NULL || url[0] == '\0' || name == NULL) {
		*error_r = "bus: url and name are required";
		return -1;
	}
	bus = mf_xcalloc(1, sizeof(*bus));
	bus->url = mf_xstrdup(url);
	bus->name = mf_xstrdup(name);
	pthread_mutex_init(&bus->lock, NULL);
	pthread_cond_init(&bus->cond, NULL);

	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, url);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, MF_BUS_RECONNECT_WAIT_MS);
	/* A connected callback makes the first connect asynchronous: we return
	 * at once and nats.c keeps trying with the reconnect settings. */
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, bus);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(opts, on_disconnected, bus);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(opts, on_reconnected, bus);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(opts, on_closed, bus);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(opts, on_async_error, bus);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: options for %s: %s", url, nats_error(s));
		goto out;
	}

	s = natsConnection_Connect(&bus->nc, opts);
	if (s == NATS_OK) {
		log_url(MF_LOG_INFO, bus->nc, name, "connected to nats");
	} else if (s == NATS_NOT_YET_CONNECTED) {
		mf_log_warn(BUS_PKG, NULL, "nats not reachable yet, retrying in the background",
			    "bus=%s url=%s", name, url);
	} else {
		*error_r = mf_errorf("bus: connect to %s: %s", url, nats_error(s));
		goto out;
	}
	s = natsConnection_JetStream(&bus->js, bus->nc, NULL);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: jetstream context: %s", nats_error(s));
		goto out;
	}
	*bus_r = bus;
	bus = NULL;
	ret = 0;
out:
	natsOptions_Destroy(opts);
	if (bus != NULL)
		mf_bus_close(&bus);
	return ret;
}

bool mf_bus_connected(struct mf_bus *bus)
{
	return natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

void mf_bus_get_stats(struct mf_bus *bus, struct mf_bus_stats *stats_r)
{
	stats_r->reconnects = atomic_load(&bus->reconnects);
	stats_r->disconnects = atomic_load(&bus->disconnects);
	stats_r->requests_sent = atomic_load(&bus->requests_sent);
	stats_r->request_failures = atomic_load(&bus->request_failures);
	stats_r->requests_served = atomic_load(&bus->requests_served);
	stats_r->request_errors = atomic_load(&bus->request_errors);
	stats_r->requests_expired = atomic_load(&bus->requests_expired);
	stats_r->requests_busy = atomic_load(&bus->requests_busy);
	stats_r->requests_malformed = atomic_load(&bus->requests_malformed);
	stats_r->events_received = atomic_load(&bus->events_received);
	stats_r->events_dropped = atomic_load(&bus->events_dropped);
}

static void sub_stop_workers(struct mf_bus_sub *sub)
{
	pthread_mutex_lock(&sub->lock);
	sub->stopping = true;
	pthread_cond_broadcast(&sub->cond);
	pthread_mutex_unlock(&sub->lock);
	for (unsigned i = 0; i < sub->nworkers; i++)
		pthread_join(sub->workers[i], NULL);
	sub->nworkers = 0;
}

/* Returns true once nats.c has promised not to call on_msg for sub again. */
static bool sub_wait_complete(struct mf_bus_sub *sub, int64_t ms)
{
	struct timespec ts;
	bool complete;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&sub->lock);
	while (!sub->complete) {
		if (pthread_cond_timedwait(&sub->cond, &sub->lock, &ts) == ETIMEDOUT)
			break;
	}
	complete = sub->complete;
	pthread_mutex_unlock(&sub->lock);
	return complete;
}

static void sub_free(struct mf_bus_sub *sub)
{
	/* Messages still queued belong to no worker any more. */
	while (sub->count > 0) {
		natsMsg_Destroy(sub->queue[sub->head]);
		sub->head = (sub->head + 1) % MF_BUS_QUEUE_MAX;
		sub->count--;
	}
	natsSubscription_Destroy(sub->nsub);
	pthread_mutex_destroy(&sub->lock);
	pthread_cond_destroy(&sub->cond);
	free(sub->subject);
	free(sub);
}

void mf_bus_close(struct mf_bus **busp)
{
	struct mf_bus *bus = *busp;
	struct mf_bus_sub *sub, *next;
	struct timespec ts;
	bool connected, closed;

	if (bus == NULL)
		return;
	*busp = NULL;
	atomic_store(&bus->closing, true);

	if (bus->nc != NULL) {
		/* Stop taking new work: drain lets nats.c hand over what the
		 * server already sent us; without a connection, just stop. */
		connected = mf_bus_connected(bus);
		for (sub = bus->subs; sub != NULL; sub = sub->next) {
			if (!connected || natsSubscription_Drain(sub->nsub) != NATS_OK)
				(void)natsSubscription_Unsubscribe(sub->nsub);
		}
		for (sub = bus->subs; sub != NULL; sub = sub->next) {
			if (connected &&
			    natsSubscription_WaitForDrainCompletion(sub->nsub,
					MF_BUS_CLOSE_WAIT_MS) != NATS_OK)
				(void)natsSubscription_Unsubscribe(sub->nsub);
		}
	}
	/* Workers answer what is queued before they stop. */
	for (sub = bus->subs; sub != NULL; sub = sub->next)
		sub_stop_workers(sub);
	if (bus->nc != NULL && mf_bus_connected(bus))
		(void)natsConnection_FlushTimeout(bus->nc, MF_BUS_FLUSH_WAIT_MS);

	for (sub = bus->subs; sub != NULL; sub = next) {
		next = sub->next;
		if (!sub_wait_complete(sub, MF_BUS_CLOSE_WAIT_MS)) {
			/* nats.c may still call into sub: leaking beats a crash. */
			mf_log_error(BUS_PKG, NULL, "subscription did not stop, leaking it",
				     "subject=%s", sub->subject);
			continue;
		}
		sub_free(sub);
	}
	bus->subs = NULL;

	jsCtx_Destroy(bus->js);
	closed = true;
	if (bus->nc != NULL) {
		natsConnection_Close(bus->nc);
		/* The callbacks get bus as closure: wait for the last one. */
		deadline_in(&ts, MF_BUS_CLOSE_WAIT_MS);
		pthread_mutex_lock(&bus->lock);
		while (!bus->closed) {
			if (pthread_cond_timedwait(&bus->cond, &bus->lock, &ts) == ETIMEDOUT)
				break;
		}
		closed = bus->closed;
		pthread_mutex_unlock(&bus->lock);
		natsConnection_Destroy(bus->nc);
	}
	if (!closed) {
		mf_log_error(BUS_PKG, NULL, "nats close callback did not run, leaking the bus",
			     "url=%s", bus->url);
		return;
	}
	pthread_mutex_destroy(&bus->lock);
	pthread_cond_destroy(&bus->cond);
	free(bus->url);
	free(bus->name);
	free(bus);
}

/* --- request / reply: caller side ------------------------------------------ */

static void reply_set(struct mf_bus_reply *reply, enum mf_bus_status status,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reply_set(struct mf_bus_reply *reply, enum mf_bus_status status,
		      const char *fmt, ...)
{
	char text[MF_BUS_STATUS_MESSAGE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	free(reply->message);
	free(reply->body);
	reply->body = NULL;
	reply->body_len = 0;
	reply->status = status;
	reply->message = mf_xstrdup(text);
}

void mf_bus_reply_free(struct mf_bus_reply *reply)
{
	free(reply->message);
	free(reply->body);
	memset(reply, 0, sizeof(*reply));
}

/* Fills reply from a Reply envelope.  Returns 0, or -1 when it is malformed. */
static int reply_parse(struct mf_bus_reply *reply, const void *data, size_t len)
{
	Mailfleet__V1__Reply *env = NULL;
	int ret = -1;

	if (len > MF_BUS_PAYLOAD_MAX)
		goto out;
	env = mailfleet__v1__reply__unpack(NULL, len, data);
	if (env == NULL || env->status == NULL)
		goto out;
	switch (env->status->code) {
	case MAILFLEET__V1__STATUS__CODE__OK:
	case MAILFLEET__V1__STATUS__CODE__TEMPORARY:
	case MAILFLEET__V1__STATUS__CODE__PERMANENT:
		break;
	default:
		goto out;
	}
	reply->status = (enum mf_bus_status)env->status->code;
	reply->message = mf_xstrndup(env->status->message != NULL ? env->status->message : "",
				     MF_BUS_STATUS_MESSAGE_MAX);
	if (env->body.len > 0) {
		reply->body = mf_xmalloc(env->body.len);
		memcpy(reply->body, env->body.data, env->body.len);
		reply->body_len = env->body.len;
	}
	ret = 0;
out:
	if (env != NULL)
		mailfleet__v1__reply__free_unpacked(env, NULL);
	return ret;
}

int mf_bus_request(struct mf_bus *bus, const char *subject, const char *cid,
		   const void *body, size_t len, int64_t timeout_ms,
		   struct mf_bus_reply *reply_r)
{
	Mailfleet__V1__Request env = MAILFLEET__V1__REQUEST__INIT;
	natsMsg *msg = NULL;
	uint8_t *packed = NULL;
	size_t packed_len;
	bool valid_reply = false;
	natsStatus s;

	memset(reply_r, 0, sizeof(*reply_r));
	atomic_fetch_add(&bus->requests_sent, 1);
	if (cid == NULL)
		cid = "";

	/* Caller mistakes: retrying will not help. */
	if (!subject_valid(subject)) {
		reply_set(reply_r, MF_BUS_PERMANENT, "invalid bus subject");
		goto out;
	}
	if (strlen(cid) > MF_BUS_CID_MAX || timeout_ms <= 0 ||
	    len > MF_BUS_PAYLOAD_MAX - MF_BUS_ENVELOPE_OVERHEAD) {
		reply_set(reply_r, MF_BUS_PERMANENT, "%s: invalid request (cid, timeout or size)",
			  subject);
		goto out;
	}
	/* Published while reconnecting, a request would sit in nats.c's buffer
	 * until it times out: say so at once. */
	if (!mf_bus_connected(bus)) {
		reply_set(reply_r, MF_BUS_TEMPORARY, "%s: not connected to the bus", subject);
		goto out;
	}

	env.deadline_unix_ms = now_unix_ms() + timeout_ms;
	env.cid = (char *)cid;
	env.body.data = (uint8_t *)body;
	env.body.len = body != NULL ? len : 0;
	packed_len = mailfleet__v1__request__get_packed_size(&env);
	packed = mf_xmalloc(packed_len > 0 ? packed_len : 1);
	mailfleet__v1__request__pack(&env, packed);

	s = natsConnection_Request(&msg, bus->nc, subject, packed, (int)packed_len, timeout_ms);
	switch (s) {
	case NATS_OK:
		if (reply_parse(reply_r, natsMsg_GetData(msg),
				(size_t)natsMsg_GetDataLength(msg)) == 0) {
			valid_reply = true;
		} else {
			mf_log_warn(BUS_PKG, cid, "malformed reply", "subject=%s len=%d",
				    subject, natsMsg_GetDataLength(msg));
			reply_set(reply_r, MF_BUS_TEMPORARY, "%s: malformed reply", subject);
		}
		break;
	case NATS_TIMEOUT:
		reply_set(reply_r, MF_BUS_TEMPORARY,
			  "%s: no service answered within %" PRId64 " ms", subject, timeout_ms);
		break;
	case NATS_NO_RESPONDERS:
		reply_set(reply_r, MF_BUS_TEMPORARY, "%s: no service is serving it", subject);
		break;
	default:
		reply_set(reply_r, MF_BUS_TEMPORARY, "%s: bus error: %s", subject,
			  nats_error(s));
		break;
	}
out:
	if (!valid_reply)
		atomic_fetch_add(&bus->request_failures, 1);
	if (reply_r->status != MF_BUS_OK)
		mf_log_debug(BUS_PKG, cid, "request failed", "subject=%s status=%s error=%s",
			     subject != NULL ? subject : "", mf_bus_status_name(reply_r->status),
			     reply_r->message);
	natsMsg_Destroy(msg);
	free(packed);
	return reply_r->status == MF_BUS_OK ? 0 : -1;
}

/* --- serving -------------------------------------------------------------- */

void mf_bus_response_set(struct mf_bus_response *resp, enum mf_bus_status status,
			 const char *fmt, ...)
{
	char text[MF_BUS_STATUS_MESSAGE_MAX + 1];
	va_list ap;

	resp->status = status;
	free(resp->message);
	resp->message = NULL;
	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	resp->message = mf_xstrdup(text);
}

void mf_bus_response_set_body(struct mf_bus_response *resp, const void *body, size_t len)
{
	void *copy = NULL;

	if (len > 0) {
		copy = mf_xmalloc(len);
		memcpy(copy, body, len);
	}
	mf_bus_response_take_body(resp, copy, len);
}

void mf_bus_response_take_body(struct mf_bus_response *resp, void *body, size_t len)
{
	free(resp->body);
	resp->body = body;
	resp->body_len = body != NULL ? len : 0;
}

static void send_reply(struct mf_bus *bus, const char *reply_to, const char *cid,
		       enum mf_bus_status status, const char *message,
		       const uint8_t *body, size_t body_len)
{
	Mailfleet__V1__Reply env = MAILFLEET__V1__REPLY__INIT;
	Mailfleet__V1__Status st = MAILFLEET__V1__STATUS__INIT;
	uint8_t *packed = NULL;
	size_t packed_len;
	natsStatus s;

	if (status != MF_BUS_OK && status != MF_BUS_TEMPORARY && status != MF_BUS_PERMANENT) {
		status = MF_BUS_TEMPORARY;
		message = "internal error: invalid status";
		body = NULL;
		body_len = 0;
	}
	st.code = (Mailfleet__V1__Status__Code)status;
	st.message = (char *)(message != NULL ? message : "");
	env.status = &st;
	env.body.data = (uint8_t *)body;
	env.body.len = body != NULL ? body_len : 0;
	packed_len = mailfleet__v1__reply__get_packed_size(&env);
	if (packed_len > MF_BUS_PAYLOAD_MAX) {
		mf_log_error(BUS_PKG, cid, "reply too large", "len=%zu", packed_len);
		atomic_fetch_add(&bus->request_errors, 1);
		st.code = MAILFLEET__V1__STATUS__CODE__PERMANENT;
		st.message = "reply too large";
		env.body.data = NULL;
		env.body.len = 0;
		packed_len = mailfleet__v1__reply__get_packed_size(&env);
	}
	packed = mf_xmalloc(packed_len > 0 ? packed_len : 1);
	mailfleet__v1__reply__pack(&env, packed);
	s = natsConnection_Publish(bus->nc, reply_to, packed, (int)packed_len);
	if (s != NATS_OK) {
		atomic_fetch_add(&bus->request_errors, 1);
		mf_log_warn(BUS_PKG, cid, "cannot send reply", "error=%s", nats_error(s));
	}
	free(packed);
}

static void serve_request(struct mf_bus_sub *sub, natsMsg *msg)
{
	struct mf_bus *bus = sub->bus;
	Mailfleet__V1__Request *env = NULL;
	struct mf_bus_response resp = { .status = MF_BUS_OK };
	struct mf_bus_request req;
	const char *reply_to = natsMsg_GetReply(msg);
	const char *subject = natsMsg_GetSubject(msg);
	int len = natsMsg_GetDataLength(msg);
	int64_t now;

	if (reply_to == NULL || reply_to[0] == '\0') {
		/* Nobody to answer: not a request of ours. */
		atomic_fetch_add(&bus->requests_malformed, 1);
		atomic_fetch_add(&bus->request_errors, 1);
		mf_log_warn(BUS_PKG, NULL, "request without reply subject dropped",
			    "subject=%s", subject);
		goto out;
	}
	if (len >= 0 && (size_t)len <= MF_BUS_PAYLOAD_MAX)
		env = mailfleet__v1__request__unpack(NULL, (size_t)len,
						     (const uint8_t *)natsMsg_GetData(msg));
	if (env == NULL || env->deadline_unix_ms <= 0 || env->cid == NULL ||
	    strlen(env->cid) > MF_BUS_CID_MAX) {
		atomic_fetch_add(&bus->requests_malformed, 1);
		atomic_fetch_add(&bus->request_errors, 1);
		mf_log_warn(BUS_PKG, NULL, "malformed request", "subject=%s len=%d",
			    subject, len);
		send_reply(bus, reply_to, NULL, MF_BUS_PERMANENT, "malformed request", NULL, 0);
		goto out;
	}
	now = now_unix_ms();
	if (now > env->deadline_unix_ms) {
		/* The caller has given up; doing the work could only duplicate it. */
		atomic_fetch_add(&bus->requests_expired, 1);
		mf_log_debug(BUS_PKG, env->cid, "expired request dropped",
			     "subject=%s late_ms=%lld", subject,
			     (long long)(now - env->deadline_unix_ms));
		goto out;
	}

	req.subject = subject;
	req.cid = env->cid;
	req.body = env->body.data;
	req.body_len = env->body.len;
	req.deadline_unix_ms = env->deadline_unix_ms;
	sub->request_handler(sub->ctx, &req, &resp);

	atomic_fetch_add(&bus->requests_served, 1);
	if (resp.status != MF_BUS_OK)
		atomic_fetch_add(&bus->request_errors, 1);
	send_reply(bus, reply_to, env->cid, resp.status, resp.message, resp.body, resp.body_len);
out:
	free(resp.message);
	free(resp.body);
	if (env != NULL)
		mailfleet__v1__request__free_unpacked(env, NULL);
	natsMsg_Destroy(msg);
}

static void serve_event(struct mf_bus_sub *sub, natsMsg *msg)
{
	int len = natsMsg_GetDataLength(msg);

	sub->event_handler(sub->ctx, natsMsg_GetSubject(msg),
			   (const uint8_t *)natsMsg_GetData(msg), len > 0 ? (size_t)len : 0);
	natsMsg_Destroy(msg);
}

static void *worker_main(void *arg)
{
	struct mf_bus_sub *sub = arg;
	natsMsg *msg;

	for (;;) {
		pthread_mutex_lock(&sub->lock);
		while (sub->count == 0 && !sub->stopping)
			pthread_cond_wait(&sub->cond, &sub->lock);
		if (sub->count == 0) {
			pthread_mutex_unlock(&sub->lock);
			break;
		}
		msg = sub->queue[sub->head];
		sub->head = (sub->head + 1) % MF_BUS_QUEUE_MAX;
		sub->count--;
		if (sub->count < MF_BUS_QUEUE_MAX / 2)
			sub->full_logged = false;
		pthread_mutex_unlock(&sub->lock);

		if (sub->is_request)
			serve_request(sub, msg);
		else
			serve_event(sub, msg);
	}
	nats_ReleaseThreadMemory();
	return NULL;
}

/* nats.c's delivery thread: hand the message over, never run the handler
 * here (DESIGN.md: NATS callbacks hand work to the owning thread). */
static void on_msg(natsConnection *nc, natsSubscription *nsub, natsMsg *msg, void *closure)
{
	struct mf_bus_sub *sub = closure;
	struct mf_bus *bus = sub->bus;
	const char *reply_to;
	bool first;

	if (!sub->is_request)
		atomic_fetch_add(&bus->events_received, 1);
	pthread_mutex_lock(&sub->lock);
	if (sub->count < MF_BUS_QUEUE_MAX && !sub->stopping) {
		sub->queue[(sub->head + sub->count) % MF_BUS_QUEUE_MAX] = msg;
		sub->count++;
		pthread_cond_signal(&sub->cond);
		pthread_mutex_unlock(&sub->lock);
		return;
	}
	first = !sub->full_logged;
	sub->full_logged = true;
	pthread_mutex_unlock(&sub->lock);

	if (sub->is_request) {
		atomic_fetch_add(&bus->requests_busy, 1);
		atomic_fetch_add(&bus->request_errors, 1);
		if (first)
			mf_log_warn(BUS_PKG, NULL, "work queue full, refusing requests",
				    "subject=%s max=%d", natsMsg_GetSubject(msg),
				    MF_BUS_QUEUE_MAX);
		reply_to = natsMsg_GetReply(msg);
		if (reply_to != NULL && reply_to[0] != '\0')
			send_reply(bus, reply_to, NULL, MF_BUS_TEMPORARY, "busy", NULL, 0);
	} else {
		atomic_fetch_add(&bus->events_dropped, 1);
		if (first)
			mf_log_warn(BUS_PKG, NULL, "event queue full, dropping events",
				    "subject=%s max=%d", natsMsg_GetSubject(msg),
				    MF_BUS_QUEUE_MAX);
	}
	natsMsg_Destroy(msg);
}

static void on_sub_complete(void *closure)
{
	struct mf_bus_sub *sub = closure;

	pthread_mutex_lock(&sub->lock);
	sub->complete = true;
	pthread_cond_broadcast(&sub->cond);
	pthread_mutex_unlock(&sub->lock);
}

static int sub_start(struct mf_bus *bus, const char *subject, const char *queue_group,
		     unsigned nworkers, mf_bus_request_handler *request_handler,
		     mf_bus_event_handler *event_handler, void *ctx, const char **error_r)
{
	struct mf_bus_sub *sub;
	natsStatus s;
	int err;

	if (!subject_valid(subject)) {
		*error_r = "bus: invalid subject";
		return -1;
	}
	if (queue_group != NULL && !name_valid(queue_group)) {
		*error_r = mf_errorf("bus: %s: invalid queue group", subject);
		return -1;
	}
	if (nworkers == 0 || nworkers > MF_BUS_WORKERS_MAX) {
		*error_r = mf_errorf("bus: %s: workers must be 1..%d", subject,
				     MF_BUS_WORKERS_MAX);
		return -1;
	}

	sub = mf_xcalloc(1, sizeof(*sub));
	sub->bus = bus;
	sub->subject = mf_xstrdup(subject);
	sub->is_request = request_handler != NULL;
	sub->request_handler = request_handler;
	sub->event_handler = event_handler;
	sub->ctx = ctx;
	pthread_mutex_init(&sub->lock, NULL);
	pthread_cond_init(&sub->cond, NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		err = pthread_create(&sub->workers[i], NULL, worker_main, sub);
		if (err != 0) {
			*error_r = mf_errorf("bus: %s: cannot start worker: %s", subject,
					     strerror(err));
			goto fail;
		}
		sub->nworkers++;
	}

	/* Also fine while disconnected: nats.c sends every subscription when
	 * the connection comes (back). */
	if (queue_group != NULL)
		s = natsConnection_QueueSubscribe(&sub->nsub, bus->nc, subject, queue_group,
						  on_msg, sub);
	else
		s = natsConnection_Subscribe(&sub->nsub, bus->nc, subject, on_msg, sub);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: subscribe %s: %s", subject, nats_error(s));
		goto fail;
	}
	s = natsSubscription_SetOnCompleteCB(sub->nsub, on_sub_complete, sub);
	if (s != NATS_OK) {
		/* Without it we could not know when to free sub. */
		*error_r = mf_errorf("bus: subscribe %s: %s", subject, nats_error(s));
		(void)natsSubscription_Unsubscribe(sub->nsub);
		sub_stop_workers(sub);
		mf_log_error(BUS_PKG, NULL, "subscription leaked", "subject=%s", subject);
		return -1;
	}

	pthread_mutex_lock(&bus->lock);
	sub->next = bus->subs;
	bus->subs = sub;
	pthread_mutex_unlock(&bus->lock);
	/* Round trip, so that once we return the server routes to us. */
	if (mf_bus_connected(bus))
		(void)natsConnection_FlushTimeout(bus->nc, MF_BUS_FLUSH_WAIT_MS);
	mf_log_debug(BUS_PKG, NULL, "subscribed", "subject=%s queue=%s workers=%u", subject,
		     queue_group != NULL ? queue_group : "", nworkers);
	return 0;
fail:
	sub_stop_workers(sub);
	sub->complete = true;
	sub_free(sub);
	return -1;
}

int mf_bus_serve(struct mf_bus *bus, const char *subject, const char *queue_group,
		 unsigned nworkers, mf_bus_request_handler *handler, void *ctx,
		 const char **error_r)
{
	if (handler == NULL) {
		*error_r = "bus: a handler is required";
		return -1;
	}
	return sub_start(bus, subject, queue_group, nworkers, handler, NULL, ctx, error_r);
}

/* --- events --------------------------------------------------------------- */

int mf_bus_publish(struct mf_bus *bus, const char *subject, const void *data,
		   size_t len, const char **error_r)
{
	natsStatus s;

	if (!subject_valid(subject)) {
		*error_r = "bus: invalid subject";
		return -1;
	}
	if (len > MF_BUS_PAYLOAD_MAX) {
		*error_r = mf_errorf("bus: %s: event too large (%zu bytes)", subject, len);
		return -1;
	}
	s = natsConnection_Publish(bus->nc, subject, data, (int)len);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: publish %s: %s", subject, nats_error(s));
		return -1;
	}
	return 0;
}

int mf_bus_subscribe(struct mf_bus *bus, const char *subject, const char *queue_group,
		     mf_bus_event_handler *handler, void *ctx, const char **error_r)
{
	if (handler == NULL) {
		*error_r = "bus: a handler is required";
		return -1;
	}
	/* One worker keeps events in order. */
	return sub_start(bus, subject, queue_group, 1, NULL, handler, ctx, error_r);
}

/* --- JetStream ------------------------------------------------------------ */

static void js_opts(jsOptions *jo, int64_t timeout_ms)
{
	jsOptions_Init(jo);
	jo->Wait = timeout_ms > 0 ? timeout_ms : 5000;
}

static const char *js_error(natsStatus s, jsErrCode jerr)
{
	if (jerr != 0)
		return mf_errorf("%s (jetstream error %d)", nats_error(s), (int)jerr);
	return nats_error(s);
}

int mf_bus_js_ensure_stream(struct mf_bus *bus, const struct mf_bus_stream_config *cfg,
			    int64_t timeout_ms, const char **error_r)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;
	int ret = -1;

	if (!name_valid(cfg->name) || cfg->nsubjects == 0 || cfg->nsubjects > INT32_MAX) {
		*error_r = "bus: stream needs a valid name and subjects";
		return -1;
	}
	for (size_t i = 0; i < cfg->nsubjects; i++) {
		if (!subject_valid(cfg->subjects[i])) {
			*error_r = mf_errorf("bus: stream %s: invalid subject", cfg->name);
			return -1;
		}
	}
	if (!mf_bus_connected(bus)) {
		*error_r = mf_errorf("bus: stream %s: not connected to the bus", cfg->name);
		return -1;
	}
	js_opts(&jo, timeout_ms);
	jsStreamConfig_Init(&sc);
	sc.Name = cfg->name;
	sc.Subjects = (const char **)cfg->subjects;
	sc.SubjectsLen = (int)cfg->nsubjects;
	sc.Retention = cfg->retention == MF_BUS_RETENTION_WORKQUEUE ?
		js_WorkQueuePolicy : js_LimitsPolicy;
	sc.Storage = js_FileStorage;
	sc.MaxAge = cfg->max_age_ms > 0 ? cfg->max_age_ms * 1000000 : 0;

	s = js_GetStreamInfo(&si, bus->js, cfg->name, &jo, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jerr = 0;
		s = js_AddStream(NULL, bus->js, &sc, &jo, &jerr);
	} else if (s == NATS_OK) {
		s = js_UpdateStream(NULL, bus->js, &sc, &jo, &jerr);
	}
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: stream %s: %s", cfg->name, js_error(s, jerr));
		goto out;
	}
	ret = 0;
out:
	jsStreamInfo_Destroy(si);
	return ret;
}

int mf_bus_js_consumer_open(struct mf_bus *bus, const struct mf_bus_consumer_config *cfg,
			    int64_t timeout_ms, struct mf_bus_consumer **consumer_r,
			    const char **error_r)
{
	struct mf_bus_consumer *c = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsSubOptions so;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;
	int ret = -1;

	*consumer_r = NULL;
	if (!name_valid(cfg->stream) || !name_valid(cfg->durable) ||
	    (cfg->filter_subject != NULL && !subject_valid(cfg->filter_subject)) ||
	    cfg->ack_wait_ms < 0 || cfg->max_deliver < 0) {
		*error_r = "bus: consumer needs a valid stream, durable name and limits";
		return -1;
	}
	if (!mf_bus_connected(bus)) {
		*error_r = mf_errorf("bus: consumer %s: not connected to the bus", cfg->durable);
		return -1;
	}
	js_opts(&jo, timeout_ms);
	jsConsumerConfig_Init(&cc);
	cc.Durable = cfg->durable;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = (cfg->ack_wait_ms > 0 ? cfg->ack_wait_ms : 30000) * 1000000;
	cc.MaxDeliver = cfg->max_deliver > 0 ? cfg->max_deliver : -1;
	cc.FilterSubject = cfg->filter_subject;

	s = js_GetConsumerInfo(&ci, bus->js, cfg->stream, cfg->durable, &jo, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
		jerr = 0;
		s = js_AddConsumer(NULL, bus->js, cfg->stream, &cc, &jo, &jerr);
	} else if (s == NATS_OK) {
		s = js_UpdateConsumer(NULL, bus->js, cfg->stream, &cc, &jo, &jerr);
	}
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: consumer %s/%s: %s", cfg->stream, cfg->durable,
				     js_error(s, jerr));
		goto out;
	}

	c = mf_xcalloc(1, sizeof(*c));
	c->bus = bus;
	c->stream = mf_xstrdup(cfg->stream);
	c->durable = mf_xstrdup(cfg->durable);
	c->timeout_ms = jo.Wait;
	jsSubOptions_Init(&so);
	so.Stream = c->stream;
	so.Consumer = c->durable;
	jerr = 0;
	s = js_PullSubscribe(&c->nsub, bus->js, NULL, NULL, &jo, &so, &jerr);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: consumer %s/%s: subscribe: %s", cfg->stream,
				     cfg->durable, js_error(s, jerr));
		goto out;
	}
	*consumer_r = c;
	c = NULL;
	ret = 0;
out:
	jsConsumerInfo_Destroy(ci);
	if (c != NULL)
		mf_bus_js_consumer_free(&c);
	return ret;
}

void mf_bus_js_consumer_free(struct mf_bus_consumer **consumer)
{
	struct mf_bus_consumer *c = *consumer;

	if (c == NULL)
		return;
	*consumer = NULL;
	/* Destroy, not Unsubscribe: the durable consumer must stay. */
	natsSubscription_Destroy(c->nsub);
	free(c->stream);
	free(c->durable);
	free(c);
}

int mf_bus_js_publish(struct mf_bus *bus, const char *subject, const void *data,
		      size_t len, const char *msg_id, int64_t timeout_ms,
		      uint64_t *seq_r, const char **error_r)
{
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	if (seq_r != NULL)
		*seq_r = 0;
	if (!subject_valid(subject) || len > MF_BUS_PAYLOAD_MAX) {
		*error_r = "bus: jetstream publish: invalid subject or size";
		return -1;
	}
	if (!mf_bus_connected(bus)) {
		*error_r = mf_errorf("bus: jetstream publish %s: not connected to the bus",
				     subject);
		return -1;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms > 0 ? timeout_ms : 5000;
	po.MsgId = msg_id;
	s = js_Publish(&pa, bus->js, subject, data, (int)len, &po, &jerr);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: jetstream publish %s: %s", subject, js_error(s, jerr));
		return -1;
	}
	if (seq_r != NULL)
		*seq_r = pa->Sequence;
	jsPubAck_Destroy(pa);
	return 0;
}

int mf_bus_js_fetch(struct mf_bus_consumer *consumer, struct mf_bus_jsmsg **msgs_r,
		    size_t max, int64_t timeout_ms, size_t *count_r, const char **error_r)
{
	natsMsgList list = { NULL, 0 };
	jsMsgMetaData *meta = NULL;
	struct mf_bus_jsmsg *m;
	jsErrCode jerr = 0;
	natsStatus s;
	size_t n = 0;

	*count_r = 0;
	if (max == 0 || max > MF_BUS_FETCH_MAX || timeout_ms <= 0) {
		*error_r = "bus: fetch: batch must be 1..MF_BUS_FETCH_MAX, timeout > 0";
		return -1;
	}
	if (!mf_bus_connected(consumer->bus)) {
		*error_r = mf_errorf("bus: fetch %s: not connected to the bus", consumer->durable);
		return -1;
	}
	s = natsSubscription_Fetch(&list, consumer->nsub, (int)max, timeout_ms, &jerr);
	if (s == NATS_TIMEOUT && list.Count == 0) {
		natsMsgList_Destroy(&list);
		return 0;
	}
	if (s != NATS_OK && s != NATS_TIMEOUT) {
		natsMsgList_Destroy(&list);
		*error_r = mf_errorf("bus: fetch %s: %s", consumer->durable, js_error(s, jerr));
		return -1;
	}
	for (int i = 0; i < list.Count && n < max; i++) {
		m = mf_xcalloc(1, sizeof(*m));
		m->msg = list.Msgs[i];
		list.Msgs[i] = NULL;
		m->timeout_ms = consumer->timeout_ms;
		if (natsMsg_GetMetaData(&meta, m->msg) == NATS_OK) {
			m->seq = meta->Sequence.Stream;
			m->delivered = meta->NumDelivered;
			jsMsgMetaData_Destroy(meta);
			meta = NULL;
		}
		msgs_r[n++] = m;
	}
	natsMsgList_Destroy(&list);
	*count_r = n;
	return 0;
}

const char *mf_bus_jsmsg_subject(const struct mf_bus_jsmsg *msg)
{
	return natsMsg_GetSubject(msg->msg);
}

const uint8_t *mf_bus_jsmsg_data(const struct mf_bus_jsmsg *msg, size_t *len_r)
{
	int len = natsMsg_GetDataLength(msg->msg);

	*len_r = len > 0 ? (size_t)len : 0;
	return (const uint8_t *)natsMsg_GetData(msg->msg);
}

uint64_t mf_bus_jsmsg_seq(const struct mf_bus_jsmsg *msg)
{
	return msg->seq;
}

uint64_t mf_bus_jsmsg_delivered(const struct mf_bus_jsmsg *msg)
{
	return msg->delivered;
}

int mf_bus_jsmsg_ack(struct mf_bus_jsmsg *msg, const char **error_r)
{
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;

	/* Confirmed, so that "acked" means the server will not redeliver. */
	js_opts(&jo, msg->timeout_ms);
	s = natsMsg_AckSync(msg->msg, &jo, &jerr);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: ack: %s", js_error(s, jerr));
		return -1;
	}
	return 0;
}

int mf_bus_jsmsg_nak(struct mf_bus_jsmsg *msg, int64_t delay_ms, const char **error_r)
{
	natsStatus s;

	if (delay_ms > 0)
		s = natsMsg_NakWithDelay(msg->msg, delay_ms, NULL);
	else
		s = natsMsg_Nak(msg->msg, NULL);
	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: nak: %s", nats_error(s));
		return -1;
	}
	return 0;
}

int mf_bus_jsmsg_term(struct mf_bus_jsmsg *msg, const char **error_r)
{
	natsStatus s = natsMsg_Term(msg->msg, NULL);

	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: term: %s", nats_error(s));
		return -1;
	}
	return 0;
}

int mf_bus_jsmsg_in_progress(struct mf_bus_jsmsg *msg, const char **error_r)
{
	natsStatus s = natsMsg_InProgress(msg->msg, NULL);

	if (s != NATS_OK) {
		*error_r = mf_errorf("bus: in progress: %s", nats_error(s));
		return -1;
	}
	return 0;
}

void mf_bus_jsmsg_free(struct mf_bus_jsmsg **msg)
{
	if (*msg == NULL)
		return;
	natsMsg_Destroy((*msg)->msg);
	free(*msg);
	*msg = NULL;
}
