/* smtp_deliver: hands a received message (an incoming/ blob) to the account
 * store, one store.v1.deliver.<account> request per account, in parallel,
 * and turns the outcomes into the one SMTP reply the message gets.
 *
 * Reply rule (RFC 5321 allows one reply per message after DATA; LMTP-style
 * per-recipient replies do not exist in SMTP):
 *   - every account stored it: 250 2.0.0;
 *   - otherwise the worst outcome decides and a temporary failure counts
 *     as worse than a permanent one: any temporary failure gives a 4xx (the
 *     sender retries; accounts that already stored it may get a second
 *     copy: a duplicate rather than a loss), else the first permanent
 *     failure's 5xx (the sender gets a bounce; it may overstate the failure
 *     for accounts that stored it, but is never silent).
 * Temporary: no reply, bus TEMPORARY, malformed reply, a result with a 4xx
 * code.  The caller deletes the incoming blob afterwards in every case. */
#ifndef SMTP_DELIVER_H
#define SMTP_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "smtp_command.h"
#include "smtp_recipients.h"

/* Accounts delivered to at the same time. */
#define SMTP_DELIVER_PARALLEL 8

struct smtp_deliver_message {
	const char *cid;
	const char *message_id;
	const char *blob_key;
	const struct smtp_mail *mail;   /* envelope: sender, DSN, flags */
	int64_t received_unix_ms;
	int64_t timeout_ms;
	/* From smtp_verify: the Authentication-Results field (with CRLF) for
	 * every target's header prefix, or NULL; and the RFC 6154 special-use
	 * attribute of the mailbox every target gets it in ("\\Junk" for DMARC
	 * quarantine; the store falls back to INBOX), or NULL for INBOX. */
	const char *authentication_results;
	const char *special_use;
};

/* The outcome for one account. */
struct smtp_deliver_outcome {
	bool temporary;      /* false and code < 300: stored */
	unsigned code;       /* SMTP code: 250, 451, 452, 552, ... */
	char enhanced[16];
	char text[256];
};

/* Delivers to every target; outcomes_r gets one outcome per target (caller
 * frees).  Returns the reply line for the message (mf_xasprintf, caller
 * frees). */
char *smtp_deliver(struct mf_bus *bus, const struct smtp_deliver_message *msg,
		   const struct smtp_targets *targets, struct smtp_deliver_outcome **outcomes_r);

/* The reply rule above, on n outcomes (n > 0).  Returns a newly allocated
 * reply line. */
char *smtp_deliver_combine(const struct smtp_deliver_outcome *outcomes, size_t n);

/* The bytes the store prepends for one target, newly allocated:
 *   Return-Path: <sender>            RFC 5321 4.4, added at final delivery
 *   Delivered-To: address
 *   Authentication-Results: ...      when auth_results is not NULL
 * followed in the stored message by the blob, which starts with our
 * Received field.  Authentication-Results is a trace field prepended after
 * Received (RFC 8601 2.1, 4: above the trace fields this MTA adds, so
 * readers can tell it was added here); Return-Path and Delivered-To are
 * the final-delivery fields and go on top, as local delivery agents put
 * them. */
char *smtp_deliver_header_prefix(const struct smtp_mail *mail, const char *address,
				 const char *auth_results);

#endif
