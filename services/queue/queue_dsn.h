/* queue_dsn: composes delivery status notifications (RFC 3464
 * multipart/report) for the sender of a queued message.
 *
 * The full SMTP reply, every line of it, goes into each recipient's
 * Diagnostic-Code field (RFC 3464 2.3.6, folded) and into the
 * human-readable first part, so a sender sees exactly what the receiving
 * server said. */
#ifndef QUEUE_DSN_H
#define QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The original message is returned whole (RET=FULL) only up to this size;
 * above it, or without RET=FULL, only its header is returned. */
#define QUEUE_DSN_ORIGINAL_MAX (1024 * 1024)
/* Cap on a composed DSN. */
#define QUEUE_DSN_MAX (QUEUE_DSN_ORIGINAL_MAX + 256 * 1024)
/* Recipients listed in one DSN. */
#define QUEUE_DSN_RCPTS_MAX 1000

enum queue_dsn_action {
	QUEUE_DSN_FAILED,
	QUEUE_DSN_DELAYED,
	QUEUE_DSN_RELAYED,    /* handed on to a server that sends no DSN */
	QUEUE_DSN_DELIVERED,  /* into a local mailbox */
};

struct queue_dsn_rcpt {
	const char *address;      /* final recipient */
	const char *orcpt;        /* "rfc822;addr" or NULL */
	enum queue_dsn_action action;
	unsigned code;            /* SMTP code of the last reply, 0 when none */
	const char *enhanced;     /* "5.1.1", or NULL/"" */
	const char *text;         /* the full reply text or error; lines split by "\n" */
	const char *remote_mta;   /* host that answered, or NULL */
	int64_t last_attempt_ms;
	int64_t will_retry_until_ms;  /* delayed: when we give up; 0 unknown */
};

struct queue_dsn {
	const char *hostname;     /* our host: Reporting-MTA, From postmaster@ */
	const char *to;           /* the original envelope sender */
	const char *envid;        /* ENVID or NULL */
	const char *message_id;   /* original Message-ID or NULL */
	const char *boundary;     /* unique MIME boundary (letters, digits, '.', '=') */
	const char *new_message_id;  /* Message-ID of the DSN itself, without <> */
	bool ret_full;            /* RET=FULL */
	const char *original;     /* the original message, may be NULL */
	size_t original_len;
	int64_t arrival_ms;
	int64_t now_ms;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
};

/* Appends the DSN message (CRLF line endings) to out.  Returns 0, or -1
 * with error_r (no recipients, too many, out's cap reached). */
int queue_dsn_compose(const struct queue_dsn *dsn, struct mf_buf *out,
		      const char **error_r);

/* The status code to report for an enhanced code that may be missing:
 * the enhanced code when it is well-formed, else one derived from the
 * SMTP code's class ("5.0.0", "4.0.0"). */
const char *queue_dsn_status(unsigned code, const char *enhanced, bool failed);

#endif
