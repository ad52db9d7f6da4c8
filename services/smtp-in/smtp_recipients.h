/* smtp_recipients: which accounts a RCPT TO address reaches, from
 * domains.conf (libshared/domains.h).
 *
 * Rules:
 * - Only configured domains; any other domain is refused as relaying
 *   (550 5.7.1): smtp-in never relays.
 * - A disabled domain gives a temporary error (450 4.2.1): during a
 *   migration the sender retries, perhaps at the new server.
 * - Addresses resolve as mf_domains_resolve does: exact, then without the
 *   domain's catch-all separator suffix, then the domain catch-all; no
 *   match is 550 5.1.1.
 * - An alias expands to its members (addresses of accounts).  Without
 *   PostPublic only a member may send to it: the envelope sender must be a
 *   member's address (550 5.7.1 otherwise).  The sender is never a target
 *   of the expansion: they sent the message (they still get a copy when
 *   they are also a direct recipient).  ListMembers and AllowMsgFrom do not
 *   concern receiving.
 * - "RCPT TO:<postmaster>" (no domain, RFC 5321 4.5.1) is
 *   postmaster@<hostname> if configured, else postmaster@ the first domain.
 *
 * Copies: the session keeps one target per account (smtp_targets_add), so
 * an account reached directly and through an alias, or through several
 * aliases, gets one copy. */
#ifndef SMTP_RECIPIENTS_H
#define SMTP_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "domains.h"

/* Targets of one transaction. */
struct smtp_target {
	char *account;
	char *address;    /* the address that reached the account (Delivered-To) */
	char *rcpt;       /* the RCPT TO address as given (canonical form) */
	unsigned notify;  /* DSN NOTIFY of that RCPT */
	char *orcpt;      /* DSN ORCPT "type;address" of that RCPT, or NULL */
};

struct smtp_targets {
	struct smtp_target *items;
	size_t count, alloc;
};

/* Resolves to (localpart@domain as parsed by mf_address_parse; postmaster
 * for a bare <postmaster>) for a message from sender (NULL: null sender).
 * hostname is the server's name for <postmaster>.  On success returns 0
 * and adds the reached accounts to targets (an alias whose only member is
 * the sender adds none); *added_r says how many were new.  On refusal
 * returns -1 with reply_r a reply line ("550 5.1.1 ..."). */
int smtp_recipients_resolve(const struct mf_domains *d, const char *hostname,
			    const struct mf_address *to, bool postmaster,
			    const struct mf_address *sender, unsigned notify, const char *orcpt,
			    struct smtp_targets *targets, size_t *added_r, const char **reply_r);

/* Adds a target unless its account is there already.  Returns true when
 * added.  Strings are copied. */
bool smtp_targets_add(struct smtp_targets *t, const char *account, const char *address,
		      const char *rcpt, unsigned notify, const char *orcpt);
/* Removes the targets from index 'from' on (undoing one RCPT). */
void smtp_targets_truncate(struct smtp_targets *t, size_t from);
void smtp_targets_clear(struct smtp_targets *t);

#endif
