/* smtp_limits: per-connection and per-message admission for smtp-in:
 * concurrent connections per IP (in this process), connection and message
 * rates per IP network (shared by all replicas through Redis, ratelimit.h),
 * and the tarpit for clients that keep failing.
 *
 * Redis down: the configured policy (ratelimit { redis-down allow|deny })
 * decides; deny gives temporary errors.  ratelimit.c logs it (rate-limited
 * to one line per 10 s) and we count it in
 * mailfleet_smtp_in_ratelimited_total{what="redis_down"}. */
#ifndef SMTP_LIMITS_H
#define SMTP_LIMITS_H

#include <stdbool.h>

#include "smtp_server.h"

/* Takes a connection slot for ip.  Returns true when under
 * limits.max-connections-per-ip; then smtp_limits_ip_release must follow. */
bool smtp_limits_ip_acquire(struct smtp_server *srv, const char *ip);
void smtp_limits_ip_release(struct smtp_server *srv, const char *ip);

/* Checks and charges the connection (what "connection") or message
 * (what "message") rate of ip.  Returns NULL when allowed, else the reply
 * line to send (421 for connections, 451 for messages), valid until the
 * next call on this thread. */
const char *smtp_limits_rate(struct smtp_server *srv, const char *cid, const char *ip,
			     bool message);

/* How long to wait before replying to the errors-th failed command. */
unsigned smtp_limits_tarpit_ms(unsigned errors);

#endif
