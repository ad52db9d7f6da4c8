/* queue_add: queue.v1.add, the way mail enters the queue (submission,
 * reports, DSN-less system mail).  The caller's incoming/ blob is linked
 * under queue/ and the rows are committed before the reply says OK: only
 * then may the caller answer 250 and delete its own key. */
#ifndef QUEUE_ADD_H
#define QUEUE_ADD_H

#include "bus.h"

/* Recipients per add (RFC 5321 4.5.3.1.8 asks for at least 100). */
#define QUEUE_ADD_RCPTS_MAX 1000
#define QUEUE_ADD_ADDRESS_MAX 1024
#define QUEUE_ADD_FIELD_MAX 1024
#define QUEUE_ADD_EXTRA_MAX 64
/* FUTURERELEASE may be at most this far ahead (RFC 4865 lets the server
 * choose; 60 days as for submission's HOLDFOR/HOLDUNTIL). */
#define QUEUE_ADD_RELEASE_MAX_MS (60LL * 24 * 3600 * 1000)

/* The queue.v1.add handler (ctx is the queue_ctx). */
void queue_add_handler(void *ctx, const struct mf_bus_request *req,
		       struct mf_bus_response *resp);

#endif
