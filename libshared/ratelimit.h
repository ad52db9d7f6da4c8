/* ratelimit: rate limits shared by all replicas, kept in Redis (GCRA).
 *
 * A limit is "count per period" with a burst: up to burst requests may come
 * at once, after which they are let through at count/period.  Each (limit
 * name, key) pair has one Redis key holding its theoretical arrival time
 * (GCRA); one atomic Lua script (EVALSHA, EVAL on NOSCRIPT) checks and updates
 * several keys in one round trip, with Redis's clock so that replicas agree.
 *
 * Keys: an IP address is limited at three network levels at once, each with
 * its own limit (IPv4 /32 /26 /21, IPv6 /64 /48 /32), so that a spammer
 * rotating through the addresses of one network is still caught; an account
 * is limited by its name.
 *
 * Operations:
 *   MF_RATELIMIT_CONSUME  allowed only if every key has room; then all are
 *                         charged, otherwise none (connections, messages).
 *   MF_RATELIMIT_PEEK     says whether there is room, charges nothing
 *                         (before AUTH: is this address already blocked?).
 *   MF_RATELIMIT_RECORD   charges every key even past its limit (the charge
 *                         is capped at one burst) and says whether this event
 *                         was over the limit (count only AUTH failures, then
 *                         PEEK before the next AUTH).
 *
 * Redis down: the verdict is MF_RATELIMIT_UNAVAILABLE and result.allowed
 * follows the configured policy (`ratelimit { redis-down allow|deny }`):
 * allow lets the request through unlimited, deny refuses it and the caller
 * answers with a temporary error (SMTP 4xx), never a permanent one.  Either
 * way the event is counted (stats.unavailable) and logged, at most one line
 * per MF_RATELIMIT_LOG_INTERVAL_SECS with the number of events since. */
#ifndef MF_RATELIMIT_H
#define MF_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"

#define MF_RATELIMIT_NAME_MAX 64        /* limit names: [a-z0-9_.-] */
#define MF_RATELIMIT_KEY_MAX 320        /* key given to a check (not NUL) */
#define MF_RATELIMIT_ACCOUNT_MAX 255    /* account names as keys */
#define MF_RATELIMIT_ITEMS_MAX 8        /* keys checked in one round trip */
#define MF_RATELIMIT_COUNT_MAX 100000000u
#define MF_RATELIMIT_PERIOD_MAX_MSECS (366ull * 24 * 3600 * 1000)
#define MF_RATELIMIT_NETKEY_SIZE 64     /* "ffff:...:ffff/128" fits */
#define MF_RATELIMIT_LOG_INTERVAL_SECS 10
#define MF_RATELIMIT_IP_LEVELS 3

enum mf_ratelimit_redis_down {
	MF_RATELIMIT_REDIS_DOWN_ALLOW,
	MF_RATELIMIT_REDIS_DOWN_DENY,
};

enum mf_ratelimit_op {
	MF_RATELIMIT_CONSUME,
	MF_RATELIMIT_PEEK,
	MF_RATELIMIT_RECORD,
};

enum mf_ratelimit_verdict {
	MF_RATELIMIT_ALLOWED,
	MF_RATELIMIT_LIMITED,
	MF_RATELIMIT_UNAVAILABLE,
};

struct mf_ratelimit_limit {
	const char *name;      /* part of the Redis key, e.g. "smtp-conn-ip" */
	uint32_t count;        /* count per period_msecs, >= 1 */
	uint64_t period_msecs; /* >= 1 */
	uint32_t burst;        /* 0: count */
};

/* One key to check against one limit. */
struct mf_ratelimit_item {
	const struct mf_ratelimit_limit *limit;
	const char *key;       /* e.g. "192.0.2.0/26" or an account name */
};

struct mf_ratelimit_result {
	enum mf_ratelimit_verdict verdict;
	/* What the caller should do: ALLOWED -> true, LIMITED -> false,
	 * UNAVAILABLE -> the redis-down policy. */
	bool allowed;
	/* LIMITED: when a retry may succeed (rounded up to whole seconds, at
	 * least 1), and which item refused (the one that must wait longest). */
	uint64_t retry_after_msecs;
	unsigned retry_after_secs;
	int item;              /* index into the items, -1 when none */
	const char *limit_name;/* the refusing limit's name (points into it) */
	char key[MF_RATELIMIT_KEY_MAX + 1]; /* the refusing key, "" when none */
};

/* The three network levels of one IP address, widest last. */
struct mf_ratelimit_ip_keys {
	bool ipv6;
	char key[MF_RATELIMIT_IP_LEVELS][MF_RATELIMIT_NETKEY_SIZE];
};

/* Limits for the levels of struct mf_ratelimit_ip_keys; a level whose limit
 * has count 0 is not checked. */
struct mf_ratelimit_ip_limits {
	struct mf_ratelimit_limit v4[MF_RATELIMIT_IP_LEVELS]; /* /32 /26 /21 */
	struct mf_ratelimit_limit v6[MF_RATELIMIT_IP_LEVELS]; /* /64 /48 /32 */
};

struct mf_ratelimit_stats {
	uint64_t checks;       /* calls that reached a verdict */
	uint64_t limited;
	uint64_t unavailable;
};

struct mf_ratelimit;

/* Creates a limiter on r (not owned; must outlive the limiter).
 * Always succeeds; free with mf_ratelimit_free. */
struct mf_ratelimit *mf_ratelimit_create(struct mf_redis *r,
					 enum mf_ratelimit_redis_down policy);
void mf_ratelimit_free(struct mf_ratelimit **rl);
void mf_ratelimit_set_policy(struct mf_ratelimit *rl, enum mf_ratelimit_redis_down policy);
void mf_ratelimit_get_stats(struct mf_ratelimit *rl, struct mf_ratelimit_stats *stats_r);

/* Parses the redis-down policy word "allow" or "deny".  Returns 0 or -1. */
int mf_ratelimit_policy_parse(const char *word, enum mf_ratelimit_redis_down *policy_r,
			      const char **error_r);
/* Parses a rate "N/period" where period is a duration with unit ms, s, m,
 * h or d and an optional number ("100/h", "5/10s", "20/1m").  Returns 0 or
 * -1 with error_r. */
int mf_ratelimit_rate_parse(const char *s, uint32_t *count_r, uint64_t *period_msecs_r,
			    const char **error_r);
/* Returns 0 when limit is usable, or -1 with error_r. */
int mf_ratelimit_limit_validate(const struct mf_ratelimit_limit *limit, const char **error_r);

/* Canonical network of ip (text IPv4 or IPv6; IPv4-mapped IPv6 counts as
 * IPv4) with prefix_len bits, e.g. ("192.0.2.77", 26) -> "192.0.2.64/26".
 * Writes into buf (MF_RATELIMIT_NETKEY_SIZE bytes).  Returns 0 or -1. */
int mf_ratelimit_network_key(const char *ip, unsigned prefix_len,
			     char buf[MF_RATELIMIT_NETKEY_SIZE], const char **error_r);
/* Fills the three levels for ip.  Returns 0 or -1 with error_r. */
int mf_ratelimit_ip_keys(const char *ip, struct mf_ratelimit_ip_keys *keys_r,
			 const char **error_r);
/* Validates an account name as a key (1..MF_RATELIMIT_ACCOUNT_MAX bytes, no
 * control characters or spaces) and returns "account:<name>" in buf of size
 * bytes.  Returns 0 or -1 with error_r. */
int mf_ratelimit_account_key(const char *account, char *buf, size_t size,
			     const char **error_r);

/* Applies op with cost (>= 1, <= every burst) to all n items in one round
 * trip.  Returns 0 with result_r filled (the verdict may be UNAVAILABLE), or
 * -1 with error_r for bad arguments (never for Redis being down). */
int mf_ratelimit_apply(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
		       const struct mf_ratelimit_item *items, size_t n, uint32_t cost,
		       struct mf_ratelimit_result *result_r, const char **error_r);
/* mf_ratelimit_apply for one key with cost 1. */
int mf_ratelimit_check(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
		       const struct mf_ratelimit_limit *limit, const char *key,
		       struct mf_ratelimit_result *result_r, const char **error_r);
/* mf_ratelimit_apply with cost 1 for every network level of ip that has a
 * limit in limits; result_r->key names the refusing network. */
int mf_ratelimit_check_ip(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
			  const struct mf_ratelimit_ip_limits *limits, const char *ip,
			  struct mf_ratelimit_result *result_r, const char **error_r);
/* Forgets the state of one key (e.g. the failure count after a successful
 * login).  Returns 0, or -1 with error_r (also when Redis is down). */
int mf_ratelimit_reset(struct mf_ratelimit *rl, const struct mf_ratelimit_limit *limit,
		       const char *key, const char **error_r);

#endif
