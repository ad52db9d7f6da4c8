/* smtp_received: the Received header field smtp-in writes first into every
 * message (RFC 5321 4.4, RFC 8314 4.3 TLS details, RFC 6531 4.3 UTF8SMTP).
 *
 *   Received: from helo.example ([192.0.2.1])
 *   	by mx.example.org (mailfleet) with ESMTPS (TLSv1.3 TLS_AES_128_GCM_SHA256)
 *   	id 1f2e3d...; for <a@example.org>; Sun, 22 Nov 2026 16:00:00 +0000
 *
 * The id is the message id that the logs carry as msgid=.  "for" is only
 * written with a single recipient, so that a copy does not disclose the
 * other recipients. */
#ifndef SMTP_RECEIVED_H
#define SMTP_RECEIVED_H

#include <stdbool.h>
#include <time.h>

struct smtp_received_info {
	const char *helo;         /* as given by the client (sanitised here) */
	const char *remote_ip;
	const char *hostname;     /* ours */
	bool esmtp;               /* EHLO rather than HELO */
	bool smtputf8;
	const char *tls_version;  /* NULL: no TLS */
	const char *tls_cipher;
	const char *message_id;
	const char *for_rcpt;     /* NULL: no for clause */
	time_t when;
};

/* Returns the header field, CRLF-terminated, folded; caller frees. */
char *smtp_received_header(const struct smtp_received_info *info);
/* "ESMTP", "ESMTPS", "UTF8SMTPS", "SMTP", ... (RFC 3848, RFC 6531). */
const char *smtp_received_protocol(bool esmtp, bool tls, bool smtputf8);

#endif
