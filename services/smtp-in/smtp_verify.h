/* smtp_verify: sender verification of an inbound message through dnsauth
 * (auth.v1.verify: SPF, iprev, DNSBL, DKIM per signature, DMARC), after the
 * message is in its fsynced incoming/ blob and before the store gets it.
 *
 * Rules (the dnsauth contract, proto/auth.proto):
 *   - no reply, a reply that is not OK, or a malformed reply: 451 4.4.3;
 *     a message is never accepted without the check (unless the operator
 *     switched it off with "smtp-in { verify no }": NOT_CONFIGURED, no
 *     Authentication-Results header);
 *   - DMARC permerror (several author domains in From; dnsauth gives
 *     permerror for nothing else): 550 5.7.1, RFC 9989 11.5 allows this
 *     negative disposition and it closes the "several From domains"
 *     bypass;
 *   - DMARC disposition reject: 550 5.7.26 (RFC 7372: multiple
 *     authentication checks failed), unless smtp_verify_ruleset_allows
 *     says a recipient accepts the list or forwarder the message came from;
 *   - DMARC disposition quarantine: JUNK (delivered to the Junk mailbox);
 *   - anything else: ACCEPT.
 * On ACCEPT and JUNK the result carries dnsauth's Authentication-Results
 * field (RFC 8601), checked to be one well-formed header field, which
 * smtp_deliver puts into every recipient's header prefix. */
#ifndef SMTP_VERIFY_H
#define SMTP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.pb-c.h"
#include "blob.h"
#include "bus.h"
#include "smtp_command.h"
#include "smtp_data.h"
#include "smtp_recipients.h"

#define SMTP_VERIFY_SUBJECT "auth.v1.verify"
/* SPF, DKIM and the DMARC tree walk chain DNS lookups of up to 5 s each. */
#define SMTP_VERIFY_TIMEOUT_MS 30000
/* Limits on what dnsauth sends back (another service: checked, never
 * trusted).  A folded Authentication-Results with a dozen DKIM signatures
 * stays far below this. */
#define SMTP_VERIFY_AR_MAX (16 * 1024)
#define SMTP_VERIFY_REPLY_MAX (256 * 1024)
/* Where DMARC quarantine puts a message: the account's mailbox with the
 * RFC 6154 \Junk attribute, found by the store whatever its name (INBOX
 * when the account has none). */
#define SMTP_VERIFY_JUNK_SPECIAL_USE "\\Junk"

struct smtp_verify_input {
	const char *cid;
	const char *message_id;
	const char *blob_key;
	const char *remote_ip;
	const char *helo;
	const struct smtp_mail *mail;
	const struct smtp_targets *targets;
	struct mf_bus *bus;          /* NULL: verification switched off */
	int64_t timeout_ms;          /* 0: SMTP_VERIFY_TIMEOUT_MS */
};

enum smtp_verify_verdict {
	SMTP_VERIFY_NOT_CONFIGURED,  /* "verify no": nothing was checked */
	SMTP_VERIFY_ACCEPT,
	SMTP_VERIFY_JUNK,            /* deliver to SMTP_VERIFY_JUNK_SPECIAL_USE */
	SMTP_VERIFY_REJECT,          /* reply with reply (5xx) */
	SMTP_VERIFY_TEMPFAIL,        /* reply with reply (4xx) */
};

struct smtp_verify_result {
	enum smtp_verify_verdict verdict;
	const char *reply;           /* REJECT/TEMPFAIL: a static reply line */
	char *why;                   /* for the log; owned, never NULL after a call */
	char *authentication_results;  /* ACCEPT/JUNK: the whole field with CRLF;
					* owned; NULL otherwise */
};

/* Verifies the message: asks dnsauth (in->bus) and decides.  Always fills
 * result_r (free its strings with smtp_verify_result_clear). */
void smtp_verify_message(const struct smtp_verify_input *in, struct smtp_verify_result *result_r);

/* The decision alone, on dnsauth's answer: status and the reply body as
 * mf_bus_request gave them (message: its status text).  For tests. */
void smtp_verify_decide(const struct smtp_verify_input *in, enum mf_bus_status status,
			const char *message, const uint8_t *body, size_t len,
			struct smtp_verify_result *result_r);

/* The hook for recipient rulesets (not there yet): whether some recipient
 * accepts a message that fails DMARC with p=reject because it comes from a
 * mailing list or forwarder the recipient trusts.  Today no ruleset exists,
 * so it allows nothing and returns false. */
bool smtp_verify_ruleset_allows(const struct smtp_targets *targets,
				const Mailfleet__V1__VerifyReply *reply);

/* Whether s (len bytes) is one header field: "Authentication-Results:",
 * lines ending in CRLF, continuation lines starting with SP or HTAB, no
 * NUL, bare CR or LF, at most SMTP_VERIFY_AR_MAX bytes. */
bool smtp_verify_field_ok(const char *s, size_t len);

void smtp_verify_result_clear(struct smtp_verify_result *r);

/* RFC 8601 5: Authentication-Results fields that claim our authserv-id
 * (the hostname) but arrive from outside were not added by us and MUST be
 * deleted or obscured before we add ours.  They are obscured: renamed to
 * SMTP_VERIFY_FORGED_NAME, so nothing trusts them and they stay for
 * forensics.  (We have no internal MTAs whose fields could be genuine.
 * A-labels only: authserv-ids in U-labels are not compared.) */
#define SMTP_VERIFY_FORGED_NAME "X-Forged-Authentication-Results"
/* Bytes of a blob searched for the header section: the reader's header
 * limit, plus room for our Received field. */
#define SMTP_VERIFY_HEADER_SCAN (SMTP_DATA_HEADER_MAX + 64 * 1024)

/* On the header section hdr (len bytes): returns a newly allocated copy
 * with every Authentication-Results field whose authserv-id is authserv_id
 * (case-insensitive) renamed, its length in len_r; or NULL when there is
 * none. */
char *smtp_verify_obscure_header(const char *hdr, size_t len, const char *authserv_id,
				 size_t *len_r);

/* The same on the blob key: when it holds such fields, writes the message
 * with them renamed to new_key (fsynced) and returns 1; returns 0 when it
 * holds none (nothing written), -1 with error_r on an I/O error. */
int smtp_verify_obscure_blob(struct mf_blob_store *blobs, const char *key, const char *new_key,
			     const char *authserv_id, const char **error_r);

#endif
