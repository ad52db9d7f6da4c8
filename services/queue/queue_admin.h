/* queue_admin: the admin API over NATS (queue.v1.admin.*, see
 * proto/queue.proto): list with filters and pagination; hold, release,
 * fail (DSN to the sender), drop, reschedule, transport and requiretls on a
 * filtered selection; hold rules; suppression lists. */
#ifndef QUEUE_ADMIN_H
#define QUEUE_ADMIN_H

#include "queue_ctx.h"

#define QUEUE_ADMIN_LIST_DEFAULT 100
#define QUEUE_ADMIN_LIST_MAX 1000
/* Rows one operation may change at once. */
#define QUEUE_ADMIN_OP_MAX 100000

/* Serves every queue.v1.admin subject.  Returns 0 or -1. */
int queue_admin_serve(struct queue_ctx *ctx, const char **error_r);

#endif
