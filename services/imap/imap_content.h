/* imap_content: a message's content (header prefix + blob) in memory for
 * FETCH and SEARCH, parsed by libshared/mime.
 *
 * Why not always mf_mime_map_open: mapping costs four address-space changes
 * (mmap, mprotect, mmap, munmap) per message, and in this multithreaded
 * process each munmap interrupts every other CPU running one of its threads
 * to flush their TLBs.  Under a SEARCH over a mailbox that was most of the
 * server's time.  Messages up to IMAP_CONTENT_READ_MAX are therefore read
 * into the heap with plain read(); larger ones are still mapped, so memory
 * stays bounded by that limit per session. */
#ifndef IMAP_CONTENT_H
#define IMAP_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"
#include "store.h"

/* Bytes (prefix + blob) up to which a message is read rather than mapped. */
#define IMAP_CONTENT_READ_MAX (256 * 1024)

struct imap_content {
	const char *data;          /* prefix followed by the blob */
	size_t len;
	char *heap;                /* owned when read; NULL when mapped */
	struct mf_mime_map map;    /* when mapped */
	bool mapped;
};

/* Opens msg's content.  Returns 1 with *c_r (close with
 * imap_content_close), 0 when the message or its blob is gone, -1 with
 * error_r. */
int imap_content_open(struct store_account *acc, const struct store_message *msg,
		      struct imap_content *c_r, const char **error_r);
/* Frees what c holds; c may be zeroed or already closed. */
void imap_content_close(struct imap_content *c);

#endif
