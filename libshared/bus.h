/* bus: the NATS message bus between services (nats.c), carrying protobuf.
 *
 * - Request/reply: every request travels in a mailfleet.v1.Request envelope
 *   (deadline, cid, body) and every reply in a mailfleet.v1.Reply (status,
 *   body).  A caller always gets a status: OK, TEMPORARY (no answer, no
 *   responder, not connected, malformed reply) or PERMANENT (as the server
 *   said).
 * - Serving: queue-group subscriptions.  nats.c's callback only queues the
 *   message (bounded by MF_BUS_QUEUE_MAX); handlers run on worker threads
 *   owned by the subscription, never on nats.c's threads.
 * - Events: plain publish/subscribe (e.g. config.v1.changed), also handled
 *   on a thread of ours.
 * - JetStream: streams, durable pull consumers, publish with ack, fetch,
 *   ack / nak / term / in-progress.
 *
 * The connection is made in the background: mf_bus_connect returns at once,
 * nats.c keeps retrying forever and replays subscriptions on (re)connect.
 * Counters for metrics come from mf_bus_get_stats.
 *
 * All functions may be called from any thread.  Handlers of one served
 * subject may run concurrently (nworkers threads); event handlers of one
 * subscription run one at a time, in order. */
#ifndef MF_BUS_H
#define MF_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages waiting for a worker, per served subject or event subscription.
 * Past it a request is answered TEMPORARY "busy" and an event is dropped. */
#define MF_BUS_QUEUE_MAX 1024
#define MF_BUS_WORKERS_MAX 64
/* Limits on what arrives from other services. */
#define MF_BUS_SUBJECT_MAX 256
#define MF_BUS_CID_MAX 128
#define MF_BUS_STATUS_MESSAGE_MAX 1024
/* Whole NATS payload; the nats-server default max_payload. */
#define MF_BUS_PAYLOAD_MAX (1024 * 1024)
/* Messages per JetStream fetch. */
#define MF_BUS_FETCH_MAX 256
/* Delay between connection attempts, forever. */
#define MF_BUS_RECONNECT_WAIT_MS 1000

/* The status every reply carries (same values as mailfleet.v1.Status.Code). */
enum mf_bus_status {
	MF_BUS_OK = 0,
	MF_BUS_TEMPORARY = 1,  /* try again later: 4xx / NO [UNAVAILABLE] */
	MF_BUS_PERMANENT = 2,  /* will not succeed: 5xx / NO */
};

/* Opaque handles. */
struct mf_bus;
struct mf_bus_consumer;
struct mf_bus_jsmsg;

/* Counters since connect, for /metrics. */
struct mf_bus_stats {
	uint64_t reconnects;         /* successful reconnections */
	uint64_t disconnects;
	uint64_t requests_sent;      /* mf_bus_request calls */
	uint64_t request_failures;   /* ... that ended without a valid reply */
	uint64_t requests_served;    /* requests our handlers answered */
	uint64_t request_errors;     /* served with a non-OK status, malformed,
				      * busy, or whose reply could not be sent */
	uint64_t requests_expired;   /* dropped: deadline passed before handling */
	uint64_t requests_busy;      /* answered "busy": work queue full */
	uint64_t requests_malformed; /* answered "malformed request" */
	uint64_t events_received;
	uint64_t events_dropped;     /* event queue full */
};

/* What mf_bus_request returns; free with mf_bus_reply_free. */
struct mf_bus_reply {
	enum mf_bus_status status;
	char *message;     /* never NULL after mf_bus_request; "" when none */
	uint8_t *body;     /* NULL when body_len is 0 */
	size_t body_len;
};

/* A request as a handler sees it.  Everything is owned by the bus and valid
 * only during the handler call. */
struct mf_bus_request {
	const char *subject;
	const char *cid;              /* "" when the caller gave none */
	const uint8_t *body;
	size_t body_len;
	int64_t deadline_unix_ms;     /* the caller gives up at this time */
};

/* A handler's answer.  Starts as OK with no message and no body; change it
 * with mf_bus_response_set / _set_body / _take_body. */
struct mf_bus_response {
	enum mf_bus_status status;
	char *message;     /* owned */
	uint8_t *body;     /* owned */
	size_t body_len;
};

typedef void mf_bus_request_handler(void *ctx, const struct mf_bus_request *req,
				    struct mf_bus_response *resp);
/* data is valid only during the call. */
typedef void mf_bus_event_handler(void *ctx, const char *subject,
				  const uint8_t *data, size_t len);

/* Creates a bus named name (shown in the server's connection list) for the
 * server(s) at url ("nats://127.0.0.1:4222", comma-separated for several).
 * Returns 0 and a handle even when no server answers yet: the connection is
 * retried in the background forever.  Returns -1 with error_r only for a bad
 * url or name.  Free with mf_bus_close. */
int mf_bus_connect(const char *url, const char *name, struct mf_bus **bus_r,
		   const char **error_r);
/* Stops serving (unsubscribes, lets the workers finish what is queued and
 * answer it), flushes and closes the connection, frees the bus and sets
 * *bus to NULL.  JetStream consumers must have been freed before. */
void mf_bus_close(struct mf_bus **bus);
/* Returns true while connected to a server (for /readyz). */
bool mf_bus_connected(struct mf_bus *bus);
/* Copies the counters into stats_r. */
void mf_bus_get_stats(struct mf_bus *bus, struct mf_bus_stats *stats_r);
/* Returns "ok", "temporary" or "permanent". */
const char *mf_bus_status_name(enum mf_bus_status status);

/* Sends body to subject wrapped in a Request envelope with cid (may be NULL)
 * and a deadline timeout_ms from now, and waits up to timeout_ms for the
 * reply.  Always fills reply_r (free it with mf_bus_reply_free, whatever the
 * result): status and message as the server said, or TEMPORARY with a
 * message naming the subject when no valid reply came ("queue.v1.add: no
 * service answered within 5000 ms").  Returns 0 when the status is OK, -1
 * otherwise. */
int mf_bus_request(struct mf_bus *bus, const char *subject, const char *cid,
		   const void *body, size_t len, int64_t timeout_ms,
		   struct mf_bus_reply *reply_r);
void mf_bus_reply_free(struct mf_bus_reply *reply);

/* Serves subject: requests are spread over the members of queue_group
 * across all connected services, and handled here by nworkers threads
 * (1..MF_BUS_WORKERS_MAX) that call handler(ctx, req, resp) and send resp
 * back.  Requests past their deadline are dropped unanswered; a malformed
 * envelope is answered PERMANENT "malformed request"; a full work queue
 * TEMPORARY "busy".  When connected, returns once the server has the
 * subscription; while disconnected it is sent on connect.  Served until
 * mf_bus_close.  queue_group may be NULL (every instance gets every request).
 * Returns 0, or -1 with error_r. */
int mf_bus_serve(struct mf_bus *bus, const char *subject, const char *queue_group,
		 unsigned nworkers, mf_bus_request_handler *handler, void *ctx,
		 const char **error_r);
/* Sets the answer: status and a message formatted from fmt (may be NULL;
 * cut at MF_BUS_STATUS_MESSAGE_MAX). */
void mf_bus_response_set(struct mf_bus_response *resp, enum mf_bus_status status,
			 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets the reply body to a copy of body. */
void mf_bus_response_set_body(struct mf_bus_response *resp, const void *body,
			      size_t len);
/* Sets the reply body to body, an mf_xmalloc'd buffer the response now owns. */
void mf_bus_response_take_body(struct mf_bus_response *resp, void *body, size_t len);

/* Publishes an event (no envelope: data is the event's own message).
 * Returns 0 when the message is handed to nats.c (buffered while
 * reconnecting), -1 with error_r otherwise.  Events are not durable: use
 * JetStream for what must survive. */
int mf_bus_publish(struct mf_bus *bus, const char *subject, const void *data,
		   size_t len, const char **error_r);
/* Calls handler for each message on subject (wildcards allowed), on one
 * thread of ours, in order.  With a queue_group only one member of the group
 * gets each event.  Returns 0, or -1 with error_r. */
int mf_bus_subscribe(struct mf_bus *bus, const char *subject, const char *queue_group,
		     mf_bus_event_handler *handler, void *ctx, const char **error_r);

/* JetStream. */

enum mf_bus_retention {
	MF_BUS_RETENTION_LIMITS,     /* kept until max_age / limits */
	MF_BUS_RETENTION_WORKQUEUE,  /* removed when acked */
};

struct mf_bus_stream_config {
	const char *name;            /* no '.', '*', '>' or spaces */
	const char *const *subjects;
	size_t nsubjects;
	enum mf_bus_retention retention;
	int64_t max_age_ms;          /* 0: no age limit */
};

/* Creates the file-stored stream, or updates it to cfg when it exists.
 * Waits up to timeout_ms for JetStream.  Returns 0, or -1 with error_r
 * (also when the server refuses the change, e.g. of the retention). */
int mf_bus_js_ensure_stream(struct mf_bus *bus, const struct mf_bus_stream_config *cfg,
			    int64_t timeout_ms, const char **error_r);

struct mf_bus_consumer_config {
	const char *stream;
	const char *durable;         /* no '.', '*', '>' or spaces */
	const char *filter_subject;  /* NULL: every subject of the stream */
	int64_t ack_wait_ms;         /* redelivered when not acked in time; 0: 30 s */
	int64_t max_deliver;         /* deliveries per message; 0: unlimited */
};

/* Creates (or updates) the durable pull consumer with explicit acks and
 * binds a pull subscription to it.  Returns 0 and consumer_r (free with
 * mf_bus_js_consumer_free), or -1 with error_r. */
int mf_bus_js_consumer_open(struct mf_bus *bus, const struct mf_bus_consumer_config *cfg,
			    int64_t timeout_ms, struct mf_bus_consumer **consumer_r,
			    const char **error_r);
/* Frees the subscription; the durable consumer stays on the server.  Its
 * messages must have been freed before. */
void mf_bus_js_consumer_free(struct mf_bus_consumer **consumer);

/* Publishes to a stream and waits up to timeout_ms for the stream's ack.
 * msg_id (may be NULL) lets the server drop a re-publish inside its
 * duplicate window.  Returns 0 and the stream sequence in seq_r (may be
 * NULL), or -1 with error_r: the message may or may not be stored. */
int mf_bus_js_publish(struct mf_bus *bus, const char *subject, const void *data,
		      size_t len, const char *msg_id, int64_t timeout_ms,
		      uint64_t *seq_r, const char **error_r);

/* Fetches up to max (<= MF_BUS_FETCH_MAX) messages, waiting up to
 * timeout_ms for the first.  Returns 0 with *count_r messages in msgs_r
 * (0 when none came in time; the caller frees each with mf_bus_jsmsg_free),
 * or -1 with error_r. */
int mf_bus_js_fetch(struct mf_bus_consumer *consumer, struct mf_bus_jsmsg **msgs_r,
		    size_t max, int64_t timeout_ms, size_t *count_r,
		    const char **error_r);

/* Accessors; the returned data is owned by msg. */
const char *mf_bus_jsmsg_subject(const struct mf_bus_jsmsg *msg);
const uint8_t *mf_bus_jsmsg_data(const struct mf_bus_jsmsg *msg, size_t *len_r);
/* Stream sequence, and how many times it has been delivered (1 the first). */
uint64_t mf_bus_jsmsg_seq(const struct mf_bus_jsmsg *msg);
uint64_t mf_bus_jsmsg_delivered(const struct mf_bus_jsmsg *msg);

/* Done: waits up to the consumer's timeout for the server to confirm.  */
int mf_bus_jsmsg_ack(struct mf_bus_jsmsg *msg, const char **error_r);
/* Failed for now: redeliver after delay_ms (0: at once). */
int mf_bus_jsmsg_nak(struct mf_bus_jsmsg *msg, int64_t delay_ms, const char **error_r);
/* Never redeliver. */
int mf_bus_jsmsg_term(struct mf_bus_jsmsg *msg, const char **error_r);
/* Still working: restarts the ack wait. */
int mf_bus_jsmsg_in_progress(struct mf_bus_jsmsg *msg, const char **error_r);
/* Frees msg (not acked: redelivered after the ack wait) and sets it to NULL. */
void mf_bus_jsmsg_free(struct mf_bus_jsmsg **msg);

#endif
