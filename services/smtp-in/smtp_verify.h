/* smtp_verify: the place where sender verification (SPF, DKIM, DMARC,
 * iprev, DNSBL through the dnsauth service) plugs into the inbound flow:
 * after the message is in its incoming/ blob and before the store gets it.
 *
 * Today no verification is configured: smtp_verify_message says so, adds
 * no header (in particular no Authentication-Results, which must only be
 * written by a real verifier) and does not change the delivery. */
#ifndef SMTP_VERIFY_H
#define SMTP_VERIFY_H

#include <stdbool.h>

#include "smtp_command.h"

struct smtp_verify_input {
	const char *cid;
	const char *message_id;
	const char *blob_key;
	const char *remote_ip;
	const char *helo;
	const struct smtp_mail *mail;
};

enum smtp_verify_verdict {
	SMTP_VERIFY_NOT_CONFIGURED,  /* nothing was checked */
	SMTP_VERIFY_ACCEPT,
	SMTP_VERIFY_JUNK,            /* deliver to Junk */
	SMTP_VERIFY_REJECT,          /* reply with reply */
	SMTP_VERIFY_TEMPFAIL,        /* reply with reply (4xx) */
};

struct smtp_verify_result {
	enum smtp_verify_verdict verdict;
	const char *reply;           /* for REJECT/TEMPFAIL */
	const char *why;             /* for the log */
};

/* Verifies the message.  Returns 0 with result_r; never fails today. */
int smtp_verify_message(const struct smtp_verify_input *in, struct smtp_verify_result *result_r,
			const char **error_r);

#endif
