/* delivery_limit: connections per destination host across every delivery
 * worker, counted in Redis, so that adding workers never floods one
 * receiving server.  Redis holds only the counter: while it is down the
 * limit is not enforced (losing Redis loses counters, never mail). */
#ifndef DELIVERY_LIMIT_H
#define DELIVERY_LIMIT_H

#include <stdbool.h>

#include "redis.h"

/* Concurrent connections to one destination from all workers. */
#define DELIVERY_LIMIT_PER_HOST 10
/* A counter left by a crashed worker expires after this. */
#define DELIVERY_LIMIT_TTL_MS (15 * 60 * 1000)
#define DELIVERY_LIMIT_KEY_MAX 300

/* Takes a slot for dest.  Returns true when taken (or Redis is down),
 * false when dest is at its limit. *counted_r says whether a release is
 * due. */
bool delivery_limit_take(struct mf_redis *redis, const char *dest, unsigned max,
			 bool *counted_r);
void delivery_limit_release(struct mf_redis *redis, const char *dest);

#endif
