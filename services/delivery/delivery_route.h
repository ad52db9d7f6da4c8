/* delivery_route: transports and the routes that choose them.
 *
 * A transport spec names how a job goes out:
 *   "" or "direct"      MX lookup through dnsauth, then the MX hosts
 *   "smtp:HOST:PORT"    a relay (smarthost) at an IP literal, e.g.
 *                       "smtp:127.0.0.1:2525", "smtp:[::1]:25";
 *                       opportunistic STARTTLS, no authentication
 *   "local"             the embedded default: back to the sender's account
 *                       (special localparts simulate failures)
 * A route: "[from-domain=D] [to-domain=D] [min-attempt=N] transport=SPEC";
 * the first route whose conditions all hold wins.  The message's own
 * transport (queue.v1.admin.transport) comes before any route.  Until
 * domains.conf has route lines, routes come from the environment variable
 * MAILFLEET_DELIVERY_ROUTES, routes separated by ';'. */
#ifndef DELIVERY_ROUTE_H
#define DELIVERY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define DELIVERY_ROUTES_MAX 256
#define DELIVERY_TRANSPORT_HOST_MAX 255

enum delivery_transport_kind {
	DELIVERY_TRANSPORT_DIRECT,
	DELIVERY_TRANSPORT_SMTP,
	DELIVERY_TRANSPORT_LOCAL,
};

struct delivery_transport {
	enum delivery_transport_kind kind;
	char host[DELIVERY_TRANSPORT_HOST_MAX + 1];  /* SMTP: IP literal, no brackets */
	unsigned port;
};

struct delivery_route {
	char *from_domain;   /* NULL: any */
	char *to_domain;
	unsigned min_attempt;
	char *transport;
};

/* Returns 0 with *t_r, or -1 with error_r. */
int delivery_transport_parse(const char *spec, struct delivery_transport *t_r,
			     const char **error_r);

/* Parses ';'-separated routes; every transport is checked.  Returns 0 with
 * a new array (free with delivery_routes_free), or -1 with error_r naming
 * the route. */
int delivery_routes_parse(const char *text, struct delivery_route **routes_r, size_t *count_r,
			  const char **error_r);
void delivery_routes_free(struct delivery_route **routes, size_t count);

/* The first route that matches (domains compared without case), or NULL. */
const struct delivery_route *delivery_route_match(const struct delivery_route *routes,
						  size_t count, const char *from_domain,
						  const char *to_domain, unsigned attempt);

#endif
