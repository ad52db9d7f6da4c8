/* redis: a shared, thread-safe synchronous Redis client (hiredis) for the
 * ephemeral state of DESIGN.md: rate-limit counters, web sessions, delivery
 * concurrency.  Losing Redis must never lose mail, so every call fails fast
 * with an error when Redis is down instead of blocking the caller.
 *
 * Threads: the handle keeps a small pool of connections (settings.pool_size),
 * each guarded by its own mutex; a command takes a free connection, or waits
 * for one when all are busy.  Any thread may call any function.
 *
 * Reconnection: a connection that breaks is dropped.  When the connection was
 * closed under us (Redis restarted) the command is retried once on a fresh
 * connection, so a command may in rare cases run twice: send only commands
 * for which that is harmless (rate-limit updates are).  When Redis cannot be
 * reached (connect refused, timeout), the next attempt waits for a backoff
 * (1 s doubling up to reconnect_max_msecs) and only one caller makes it; until
 * then every call fails at once without touching the network.  A background thread PINGs Redis while it is idle and reconnects
 * while it is down, so mf_redis_ready() recovers without traffic. */
#ifndef MF_REDIS_H
#define MF_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define MF_REDIS_URL_MAX 1024
#define MF_REDIS_HOST_MAX 255
#define MF_REDIS_PASSWORD_MAX 512
#define MF_REDIS_DB_MAX 65535
#define MF_REDIS_POOL_MAX 64
/* Connects are never tried more often than this while Redis is down. */
#define MF_REDIS_RECONNECT_MIN_MSECS 1000

/* Zero fields take the default shown. */
struct mf_redis_settings {
	unsigned connect_timeout_msecs;  /* 1000 */
	unsigned command_timeout_msecs;  /* 1000 */
	unsigned pool_size;              /* 4, at most MF_REDIS_POOL_MAX */
	unsigned ping_interval_msecs;    /* 1000: background PING/reconnect */
	unsigned ready_window_msecs;     /* 5000: how recent a success must be */
	unsigned reconnect_max_msecs;    /* 5000: longest backoff between connects */
};

/* Counters since creation, for metrics (mailfleet_<service>_redis_*_total). */
struct mf_redis_stats {
	uint64_t commands;     /* commands asked for by callers */
	uint64_t errors;       /* commands Redis answered with an error reply */
	uint64_t unavailable;  /* commands failed because Redis could not be reached */
	uint64_t connects;     /* successful connects (the first one included) */
	uint64_t connect_failures;
};

struct mf_redis;

/* Parses "redis://[[user]:password@]host[:port][/db]" (host may be an IPv6
 * literal in brackets; port defaults to 6379, db to 0).  Returns 0 and fills
 * the out parameters (newly allocated strings the caller frees; user_r and
 * password_r are NULL when absent), or -1 with error_r. */
int mf_redis_url_parse(const char *url, char **host_r, int *port_r, char **user_r,
		       char **password_r, int *db_r, const char **error_r);

/* Creates a client for url and starts its background thread.  Redis does not
 * have to be up yet.  settings may be NULL for the defaults.  Returns 0 with
 * *r_r (free with mf_redis_free), or -1 with error_r for a bad url. */
int mf_redis_create(const char *url, const struct mf_redis_settings *settings,
		    struct mf_redis **r_r, const char **error_r);
/* Stops the background thread and closes every connection; sets *r to NULL. */
void mf_redis_free(struct mf_redis **r);

/* Runs one command given as argv (binary-safe, argvlen[i] bytes each).
 * Returns 0 with *reply_r, a reply that is never REDIS_REPLY_ERROR (the
 * caller frees it with freeReplyObject), or -1 with *reply_r NULL and
 * error_r: either Redis's own error text, whose first word is the error kind
 * (RESP: "NOSCRIPT ...", "WRONGTYPE ..."; test with mf_redis_error_is), or a
 * text starting with "redis unavailable" when Redis could not be reached,
 * timed out or is in reconnect backoff. */
int mf_redis_command_argv(struct mf_redis *r, int argc, const char *const *argv,
			  const size_t *argvlen, redisReply **reply_r,
			  const char **error_r);
/* Like mf_redis_command_argv with a hiredis format ("SET %s %b", ...). */
int mf_redis_command(struct mf_redis *r, redisReply **reply_r, const char **error_r,
		     const char *fmt, ...);

/* Returns true when error (from error_r above) is a Redis error reply of the
 * given kind, e.g. mf_redis_error_is(error, "NOSCRIPT"). */
bool mf_redis_error_is(const char *error, const char *kind);
/* Returns true when error says that Redis could not be reached. */
bool mf_redis_error_is_unavailable(const char *error);

/* For /readyz: true when a command or the background PING succeeded within
 * ready_window_msecs and nothing has failed to reach Redis since. */
bool mf_redis_ready(struct mf_redis *r);
void mf_redis_get_stats(struct mf_redis *r, struct mf_redis_stats *stats_r);
/* The url with any password replaced by "***", for logs; owned by r. */
const char *mf_redis_url_redacted(const struct mf_redis *r);

#endif
