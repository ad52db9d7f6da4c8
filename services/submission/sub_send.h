/* sub_send: the calls submission makes to hand a message on: DKIM signing
 * (auth.v1.sign, dnsauth) and queueing (queue.v1.add, the queue service).
 *
 * Both return 0 when the service answered OK, or -1 with the status in
 * *status_r (TEMPORARY: no answer or the service failed for now; PERMANENT:
 * it refused) and the service's or the bus's message in error_r.  The
 * session answers 4xx for TEMPORARY: never a 250 unless sub_queue_add
 * returned 0 (the queue has linked the blob and committed). */
#ifndef SUB_SEND_H
#define SUB_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "smtp_command.h"
#include "sub_header.h"

#define SUB_SIGN_TIMEOUT_MS 15000
#define SUB_QUEUE_TIMEOUT_MS 30000
/* DKIM-Signature headers we take from dnsauth. */
#define SUB_SIGNATURES_MAX (64 * 1024)

struct sub_rcpt {
	char *address;       /* canonical (mf_address_format) */
	unsigned notify;     /* SMTP_NOTIFY_* bits, 0 = not given */
	char *orcpt;         /* "type;address", NULL = not given */
	bool first_time;     /* the account never sent to it (sub_limits) */
};

struct sub_queue_msg {
	const char *cid;
	const char *account;
	const char *mail_from;      /* canonical; "" for the null sender */
	const char *blob_key;       /* our incoming/ key */
	uint64_t size;
	const char *message_id;
	int64_t release_unix_ms;    /* 0: at once */
	bool requiretls, smtputf8, has_8bit;
	const char *envid;          /* NULL: not given */
	enum smtp_ret ret;
	const struct sub_rcpt *rcpts;
	size_t rcpts_count;
	const struct sub_extra *extras;
	size_t extras_count;
};

/* Asks dnsauth for the DKIM-Signature fields of the message at blob_key,
 * signed for domain.  Returns 0 with *headers_r (caller frees; "" when the
 * reply had none), each field ending in CRLF. */
int sub_sign(struct mf_bus *bus, const char *cid, const char *domain, const char *blob_key,
	     char **headers_r, enum mf_bus_status *status_r, const char **error_r);

/* Queues the message (queue.v1.add).  Returns 0 once the queue committed. */
int sub_queue_add(struct mf_bus *bus, const struct sub_queue_msg *m,
		  enum mf_bus_status *status_r, const char **error_r);

#endif
