/* delivery_route: which transport carries one delivery attempt.
 *
 * The message's own transport (set with queue.v1.admin.transport) comes
 * first; otherwise the routes of domains.conf (mf_domains_route: the
 * sending account's, then the sender domain's, then the top-level ones),
 * evaluated again for every attempt, so "from the 4th attempt through a
 * third party" works.  No match: direct delivery, or "local" in the
 * embedded default.  Transport names: "direct", "local" (the embedded
 * default's loop-back to the sender's account) and the transport blocks of
 * domains.conf (smtp, submission, submissions, socks5). */
#ifndef DELIVERY_ROUTE_H
#define DELIVERY_ROUTE_H

#include <stdbool.h>

#include "domains.h"

enum delivery_transport_kind {
	DELIVERY_TRANSPORT_DIRECT,
	DELIVERY_TRANSPORT_LOCAL,
	DELIVERY_TRANSPORT_SMTP,         /* smarthost */
	DELIVERY_TRANSPORT_SUBMISSION,   /* STARTTLS + AUTH */
	DELIVERY_TRANSPORT_SUBMISSIONS,  /* implicit TLS + AUTH */
	DELIVERY_TRANSPORT_SOCKS5,       /* direct, through a proxy */
};

struct delivery_transport {
	enum delivery_transport_kind kind;
	const char *name;                 /* for logs and results */
	const struct mf_transport *conf;  /* NULL for direct and local; points into the
					   * snapshot given to delivery_transport_select */
};

/* Chooses the transport for attempt (1 for the first) of a message from
 * account (may be "") with sender domain from_domain to to_domain (lower
 * case A-labels).  job_transport: the message's own, "" for none.  d may
 * be NULL (no domains.conf loaded yet).  Returns 0 with *t_r (valid while
 * d is), or -1 with error_r when a name is not a configured transport
 * (the admin may have removed it since). */
int delivery_transport_select(const struct mf_domains *d, const char *job_transport,
			      const char *account, const char *from_domain, const char *to_domain,
			      unsigned attempt, bool local_default, struct delivery_transport *t_r,
			      const char **error_r);

#endif
