/* delivery_conncache: idle SMTP connections a delivery worker thread keeps
 * for a short time, so that the next message to the same destination goes
 * over the same session (RSET, then a new transaction) instead of a new
 * TCP connection, TLS handshake, EHLO and AUTH.  One cache per worker
 * thread; not thread-safe.
 *
 * A destination is everything that makes a session usable for another
 * message: the address and port, the name used for SNI and logs, the EHLO
 * name, the TLS context and requirements, the AUTH credentials and the
 * SOCKS5 proxy (delivery_conncache_key).  Idle connections do not hold a
 * per-destination concurrency slot (delivery_limit): each delivery over
 * one still takes a slot, as on a fresh connection. */
#ifndef DELIVERY_CONNCACHE_H
#define DELIVERY_CONNCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "smtp_client.h"

/* Idle connections kept per worker thread. */
#define DELIVERY_CONNCACHE_MAX 4
/* How long one is kept idle before it is ended with QUIT. */
#define DELIVERY_CONNCACHE_IDLE_MS 5000

struct delivery_conncache_entry {
	char *key;
	struct smtp_client_session *session;
	int64_t idle_since_ms;
};

struct delivery_conncache {
	struct delivery_conncache_entry entries[DELIVERY_CONNCACHE_MAX];
	size_t count;
};

/* The destination key for p (allocated; free with
 * delivery_conncache_key_free, which wipes the credentials in it). */
char *delivery_conncache_key(const struct smtp_client_params *p);
void delivery_conncache_key_free(char **key);

/* Removes and returns the idle connection for key, or NULL.  Connections
 * idle longer than DELIVERY_CONNCACHE_IDLE_MS are ended first. */
struct smtp_client_session *delivery_conncache_take(struct delivery_conncache *cache,
						    const char *key, int64_t now_ms);

/* Keeps session (taken over) under key; when the cache is full, the
 * longest idle one is ended. */
void delivery_conncache_put(struct delivery_conncache *cache, const char *key,
			    struct smtp_client_session *session, int64_t now_ms);

/* Ends connections idle longer than DELIVERY_CONNCACHE_IDLE_MS. */
void delivery_conncache_expire(struct delivery_conncache *cache, int64_t now_ms);

/* Ends every connection (QUIT). */
void delivery_conncache_clear(struct delivery_conncache *cache);

#endif
