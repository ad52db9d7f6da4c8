/* delivery_local: recipients that do not leave this installation.
 *
 * - Our own domains (domains.conf): through the store API
 *   (store.v1.deliver.<account>), which links the queue's blob.
 * - The embedded default (local-delivery yes, transport "local"): mail to
 *   other domains goes back into the sender's own account, and localparts
 *   ending in "temperror", "permerror", "x" + a 3-digit code (x451, x550)
 *   or "timeout" simulate those results, so retries, DSNs and holds can be
 *   tried without a network. */
#ifndef DELIVERY_LOCAL_H
#define DELIVERY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "smtp_client.h"

#define DELIVERY_STORE_TIMEOUT_MS 30000
/* How long a simulated "timeout" recipient takes. */
#define DELIVERY_SIMULATED_TIMEOUT_MS 5000

enum delivery_sim {
	DELIVERY_SIM_NONE,       /* deliver normally */
	DELIVERY_SIM_RESULT,     /* use code/enhanced/text */
	DELIVERY_SIM_TIMEOUT,
};

/* Looks at address's localpart for a simulation suffix.  For
 * DELIVERY_SIM_RESULT sets *code_r and enhanced_r (a static string). */
enum delivery_sim delivery_local_simulation(const char *address, unsigned *code_r,
					    const char **enhanced_r);

struct delivery_store_msg {
	const char *account;      /* store.v1.deliver.<account> */
	const char *blob_key;
	const char *message_id;
	const char *mail_from;
	const char *cid;
	bool requiretls;
	bool smtputf8;
};

/* Delivers to the recipients rcpts[idx[0..n-1]] in account through the
 * store; store_addresses[i] is the address given to the store for each
 * (the recipient itself, or the sender for the embedded default).  Sets
 * each recipient's result (a bus failure becomes a temporary error). */
void delivery_local_store(struct mf_bus *bus, const struct delivery_store_msg *m,
			  struct smtp_client_rcpt *rcpts, const size_t *idx,
			  const char *const *store_addresses, size_t n);

#endif
