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

#endif
