/* imap_cmd: helpers shared between the imap_cmd_*.c command files. */
#ifndef IMAP_CMD_H
#define IMAP_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "imap_parser.h"
#include "imap_session.h"
#include "store.h"

/* Returns the STORE_SPECIAL_* bit for "\Sent" etc., 0 when unknown. */
uint32_t imap_special_use_parse(const char *name);
/* Writes the special-use attributes of bits, space-separated. */
void imap_out_special_use(struct imap_session *s, uint32_t bits, bool *first);
/* Checks a STATUS item list.  Returns 0 or -1 with error_r (BAD text). */
int imap_status_items(struct imap_session *s, const struct imap_arg *items, const char **error_r);
/* Writes "* STATUS name (...)" for the checked items. */
void imap_out_status(struct imap_session *s, const struct store_mailbox *mb,
		     const struct imap_arg *items);
/* Sends EXPUNGE responses for the known UIDs among uids and forgets them. */
void imap_report_expunged(struct imap_session *s, const uint32_t *uids, size_t count);

/* Messages' metadata read a page at a time (FETCH and SEARCH over many
 * messages), for UIDs asked in ascending order. */
#define IMAP_META_PAGE 256

struct imap_meta_cursor {
	/* How many more UIDs the caller will ask for (0: unknown).  A page
	 * holds no more rows than that: FETCH of one message read 256 rows,
	 * envelopes and body structures included, to use one. */
	size_t want;
	struct store_message *page;
	size_t count;
	struct store_message fallback;   /* one message read on its own */
	bool have_fallback;
};

/* Returns 1 with *msg_r (owned by the cursor, valid until the next call),
 * 0 when the message is gone (also from the expunged history), -1 with
 * error_r.  A message expunged by another session but not yet reported to
 * this one is read with store_message_get, which still finds it. */
int imap_meta_get(struct imap_session *s, struct imap_meta_cursor *c, uint32_t uid,
		  const struct store_message **msg_r, const char **error_r);
void imap_meta_cursor_free(struct imap_meta_cursor *c);

#endif
