#include "ratelimit.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RL_PKG "ratelimit"
#define RL_KEY_PREFIX "mf:rl:"

/* GCRA over n keys, atomically.  Per key: the stored value is the
 * theoretical arrival time (TAT) in microseconds of Redis's clock; T is the
 * emission interval (period/count) and cap = burst*T.  A request of cost c
 * fits when TAT + c*T - cap <= now.  Returns {index of the key that must
 * wait longest (0: none), that wait in microseconds}.
 * ARGV: op (c consume, p peek, r record), cost, then T and cap per key.
 * Numbers are formatted with %.0f: tostring() would use exponent notation. */
static const char gcra_script[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local op = ARGV[1]\n"
	"local cost = tonumber(ARGV[2])\n"
	"local tats = {}\n"
	"local worst, worst_i = 0, 0\n"
	"for i = 1, #KEYS do\n"
	"  local T = tonumber(ARGV[2 * i + 1])\n"
	"  local cap = tonumber(ARGV[2 * i + 2])\n"
	"  local tat = tonumber(redis.call('GET', KEYS[i])) or now\n"
	"  if tat < now then tat = now end\n"
	"  tats[i] = tat\n"
	"  local wait = tat + cost * T - cap - now\n"
	"  if wait > worst then worst = wait; worst_i = i end\n"
	"end\n"
	"if op == 'p' or (op == 'c' and worst_i > 0) then\n"
	"  return {worst_i, worst}\n"
	"end\n"
	"for i = 1, #KEYS do\n"
	"  local T = tonumber(ARGV[2 * i + 1])\n"
	"  local cap = tonumber(ARGV[2 * i + 2])\n"
	"  local new = tats[i] + cost * T\n"
	"  if new > now + cap then new = now + cap end\n"
	"  redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX',\n"
	"             math.ceil((new - now) / 1000) + 1)\n"
	"end\n"
	"return {worst_i, worst}\n";

struct mf_ratelimit {
	struct mf_redis *redis;
	char sha[41];

	pthread_mutex_t lock;  /* guards what follows */
	enum mf_ratelimit_redis_down policy;
	struct mf_ratelimit_stats stats;
	time_t last_log;
	uint64_t unlogged;     /* unavailable events since the last log line */
	uint64_t outage;       /* unavailable events since Redis last answered */
};

struct mf_ratelimit *mf_ratelimit_create(struct mf_redis *r,
					 enum mf_ratelimit_redis_down policy)
{
	struct mf_ratelimit *rl = mf_xcalloc(1, sizeof(*rl));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	rl->redis = r;
	rl->policy = policy;
	pthread_mutex_init(&rl->lock, NULL);
	if (EVP_Digest(gcra_script, sizeof(gcra_script) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		mf_fatal("ratelimit: SHA-1 unavailable");
	for (unsigned i = 0; i < 20; i++)
		snprintf(rl->sha + 2 * i, 3, "%02x", md[i]);
	return rl;
}

void mf_ratelimit_free(struct mf_ratelimit **rlp)
{
	struct mf_ratelimit *rl = *rlp;

	if (rl == NULL)
		return;
	*rlp = NULL;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

void mf_ratelimit_set_policy(struct mf_ratelimit *rl, enum mf_ratelimit_redis_down policy)
{
	pthread_mutex_lock(&rl->lock);
	rl->policy = policy;
	pthread_mutex_unlock(&rl->lock);
}

void mf_ratelimit_get_stats(struct mf_ratelimit *rl, struct mf_ratelimit_stats *stats_r)
{
	pthread_mutex_lock(&rl->lock);
	*stats_r = rl->stats;
	pthread_mutex_unlock(&rl->lock);
}

int mf_ratelimit_policy_parse(const char *word, enum mf_ratelimit_redis_down *policy_r,
			      const char **error_r)
{
	if (strcmp(word, "allow") == 0)
		*policy_r = MF_RATELIMIT_REDIS_DOWN_ALLOW;
	else if (strcmp(word, "deny") == 0)
		*policy_r = MF_RATELIMIT_REDIS_DOWN_DENY;
	else {
		*error_r = "redis-down must be allow or deny";
		return -1;
	}
	return 0;
}

/* Parses up to 9 decimal digits at *p.  Returns the number of digits. */
static unsigned parse_digits(const char **p, uint64_t *value_r)
{
	unsigned n = 0;
	uint64_t v = 0;

	while (**p >= '0' && **p <= '9' && n < 10) {
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
		n++;
	}
	*value_r = v;
	return n;
}

int mf_ratelimit_rate_parse(const char *s, uint32_t *count_r, uint64_t *period_msecs_r,
			    const char **error_r)
{
	static const struct { const char *unit; uint64_t msecs; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	const char *p = s;
	uint64_t count, mult = 1, unit = 0;
	unsigned n;

	n = parse_digits(&p, &count);
	if (n == 0 || n > 9 || count == 0 || count > MF_RATELIMIT_COUNT_MAX || *p != '/') {
		*error_r = mf_errorf("rate %s: want N/period, e.g. 100/h or 5/10s (N from 1 to %u)",
				     s, MF_RATELIMIT_COUNT_MAX);
		return -1;
	}
	p++;
	if (*p >= '0' && *p <= '9') {
		n = parse_digits(&p, &mult);
		if (n > 9 || mult == 0) {
			*error_r = mf_errorf("rate %s: bad period", s);
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].unit) == 0)
			unit = units[i].msecs;
	if (unit == 0 || mult * unit > MF_RATELIMIT_PERIOD_MAX_MSECS) {
		*error_r = mf_errorf("rate %s: period unit must be ms, s, m, h or d, "
				     "and the period at most 366d", s);
		return -1;
	}
	*count_r = (uint32_t)count;
	*period_msecs_r = mult * unit;
	return 0;
}

int mf_ratelimit_limit_validate(const struct mf_ratelimit_limit *limit, const char **error_r)
{
	size_t len = limit->name != NULL ? strlen(limit->name) : 0;

	if (len == 0 || len > MF_RATELIMIT_NAME_MAX ||
	    strspn(limit->name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != len) {
		*error_r = "rate limit name must be 1-64 characters of a-z 0-9 _ . -";
		return -1;
	}
	if (limit->count == 0 || limit->count > MF_RATELIMIT_COUNT_MAX ||
	    limit->period_msecs == 0 || limit->period_msecs > MF_RATELIMIT_PERIOD_MAX_MSECS ||
	    limit->burst > MF_RATELIMIT_COUNT_MAX) {
		*error_r = mf_errorf("rate limit %s: count, period or burst out of range",
				     limit->name);
		return -1;
	}
	return 0;
}

static int key_validate(const char *key, const char **error_r)
{
	size_t len = key != NULL ? strlen(key) : 0;

	if (len == 0 || len > MF_RATELIMIT_KEY_MAX) {
		*error_r = "rate limit key empty or too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c <= 0x20 || c == 0x7f) {
			*error_r = "rate limit key contains a control character or space";
			return -1;
		}
	}
	return 0;
}

int mf_ratelimit_network_key(const char *ip, unsigned prefix_len,
			     char buf[MF_RATELIMIT_NETKEY_SIZE], const char **error_r)
{
	unsigned char addr[16];
	char text[INET6_ADDRSTRLEN];
	int family = AF_INET;
	unsigned bits = 32;

	if (strlen(ip) >= INET6_ADDRSTRLEN) {
		*error_r = "not an IP address";
		return -1;
	}
	if (inet_pton(AF_INET, ip, addr) != 1) {
		if (inet_pton(AF_INET6, ip, addr) != 1) {
			*error_r = mf_errorf("not an IP address: %s", ip);
			return -1;
		}
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr)) {
			/* ::ffff:192.0.2.1 is the IPv4 client of a dual-stack socket */
			memmove(addr, addr + 12, 4);
		} else {
			family = AF_INET6;
			bits = 128;
		}
	}
	if (prefix_len > bits) {
		*error_r = mf_errorf("prefix /%u too long for %s", prefix_len, ip);
		return -1;
	}
	for (unsigned i = 0; i < bits / 8; i++) {
		if (i * 8 >= prefix_len)
			addr[i] = 0;
		else if (i * 8 + 8 > prefix_len)
			addr[i] &= (unsigned char)(0xff << (8 - (prefix_len - i * 8)));
	}
	if (inet_ntop(family, addr, text, sizeof(text)) == NULL) {
		*error_r = "inet_ntop failed";
		return -1;
	}
	snprintf(buf, MF_RATELIMIT_NETKEY_SIZE, "%s/%u", text, prefix_len);
	return 0;
}

int mf_ratelimit_ip_keys(const char *ip, struct mf_ratelimit_ip_keys *keys_r,
			 const char **error_r)
{
	static const unsigned v4[MF_RATELIMIT_IP_LEVELS] = { 32, 26, 21 };
	static const unsigned v6[MF_RATELIMIT_IP_LEVELS] = { 64, 48, 32 };
	unsigned char addr[16];

	memset(keys_r, 0, sizeof(*keys_r));
	keys_r->ipv6 = strlen(ip) < INET6_ADDRSTRLEN && inet_pton(AF_INET6, ip, addr) == 1 &&
		       !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr);
	for (unsigned i = 0; i < MF_RATELIMIT_IP_LEVELS; i++)
		if (mf_ratelimit_network_key(ip, keys_r->ipv6 ? v6[i] : v4[i],
					     keys_r->key[i], error_r) < 0)
			return -1;
	return 0;
}

int mf_ratelimit_account_key(const char *account, char *buf, size_t size,
			     const char **error_r)
{
	size_t len = strlen(account);

	if (len == 0 || len > MF_RATELIMIT_ACCOUNT_MAX) {
		*error_r = "account name empty or too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)account[i];

		if (c <= 0x20 || c == 0x7f) {
			*error_r = "account name contains a control character or space";
			return -1;
		}
	}
	if ((size_t)snprintf(buf, size, "account:%s", account) >= size) {
		*error_r = "account key buffer too small";
		return -1;
	}
	return 0;
}

/* Counts and logs an unavailable verdict; one log line per interval. */
static bool note_unavailable(struct mf_ratelimit *rl, const char *error)
{
	time_t now = time(NULL);
	bool allowed, log_now = false;
	uint64_t events = 0;

	pthread_mutex_lock(&rl->lock);
	allowed = rl->policy == MF_RATELIMIT_REDIS_DOWN_ALLOW;
	rl->stats.checks++;
	rl->stats.unavailable++;
	rl->outage++;
	rl->unlogged++;
	if (rl->last_log == 0 || now - rl->last_log >= MF_RATELIMIT_LOG_INTERVAL_SECS) {
		log_now = true;
		events = rl->unlogged;
		rl->unlogged = 0;
		rl->last_log = now;
	}
	pthread_mutex_unlock(&rl->lock);
	if (log_now)
		mf_log_warn(RL_PKG, NULL, "rate limits cannot be checked",
			    "error=%s redis_down=%s events=%llu", error,
			    allowed ? "allow" : "deny", (unsigned long long)events);
	return allowed;
}

static void note_verdict(struct mf_ratelimit *rl, bool limited)
{
	uint64_t outage;

	pthread_mutex_lock(&rl->lock);
	rl->stats.checks++;
	if (limited)
		rl->stats.limited++;
	outage = rl->outage;
	rl->outage = 0;
	if (outage != 0) {
		rl->unlogged = 0;
		rl->last_log = 0;
	}
	pthread_mutex_unlock(&rl->lock);
	if (outage != 0)
		mf_log_info(RL_PKG, NULL, "rate limits work again",
			    "unavailable_events=%llu", (unsigned long long)outage);
}

/* Runs the script: EVALSHA, then EVAL when Redis does not have it cached
 * (after a restart or SCRIPT FLUSH); EVAL also caches it for next time. */
static int run_script(struct mf_ratelimit *rl, int argc, const char **argv, size_t *argvlen,
		      redisReply **reply_r, const char **error_r)
{
	const char *error;

	argv[0] = "EVALSHA";
	argvlen[0] = 7;
	argv[1] = rl->sha;
	argvlen[1] = 40;
	if (mf_redis_command_argv(rl->redis, argc, argv, argvlen, reply_r, &error) == 0)
		return 0;
	if (!mf_redis_error_is(error, "NOSCRIPT")) {
		*error_r = error;
		return -1;
	}
	argv[0] = "EVAL";
	argvlen[0] = 4;
	argv[1] = gcra_script;
	argvlen[1] = sizeof(gcra_script) - 1;
	return mf_redis_command_argv(rl->redis, argc, argv, argvlen, reply_r, error_r);
}

int mf_ratelimit_apply(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
		       const struct mf_ratelimit_item *items, size_t n, uint32_t cost,
		       struct mf_ratelimit_result *result_r, const char **error_r)
{
	/* EVALSHA sha numkeys keys... op cost (T cap)... */
	enum { FIXED = 3, PER_ITEM = 3, ARGS_MAX = FIXED + 2 + PER_ITEM * MF_RATELIMIT_ITEMS_MAX };
	const char *argv[ARGS_MAX];
	size_t argvlen[ARGS_MAX];
	char *owned[2 * MF_RATELIMIT_ITEMS_MAX + 3];
	unsigned nowned = 0;
	redisReply *reply = NULL;
	const char *error;
	int argc = 0, ret = -1;
	long long idx, wait_us;

	memset(result_r, 0, sizeof(*result_r));
	result_r->item = -1;
	if (n == 0 || n > MF_RATELIMIT_ITEMS_MAX || cost == 0) {
		*error_r = "rate limit: need 1 to 8 keys and a cost of at least 1";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t burst = items[i].limit->burst != 0 ? items[i].limit->burst
							    : items[i].limit->count;
		if (mf_ratelimit_limit_validate(items[i].limit, error_r) < 0 ||
		    key_validate(items[i].key, error_r) < 0)
			goto out;
		if (cost > burst) {
			*error_r = mf_errorf("rate limit %s: cost %u exceeds burst %u",
					     items[i].limit->name, cost, burst);
			goto out;
		}
	}

	argc = FIXED;   /* argv[0], argv[1] are set by run_script */
	owned[nowned++] = mf_xasprintf("%zu", n);
	argv[2] = owned[nowned - 1];
	for (size_t i = 0; i < n; i++) {
		owned[nowned++] = mf_xasprintf(RL_KEY_PREFIX "%s:%s", items[i].limit->name,
					       items[i].key);
		argv[argc++] = owned[nowned - 1];
	}
	argv[argc++] = op == MF_RATELIMIT_CONSUME ? "c" : op == MF_RATELIMIT_PEEK ? "p" : "r";
	owned[nowned++] = mf_xasprintf("%" PRIu32, cost);
	argv[argc++] = owned[nowned - 1];
	for (size_t i = 0; i < n; i++) {
		const struct mf_ratelimit_limit *l = items[i].limit;
		uint64_t burst = l->burst != 0 ? l->burst : l->count;
		/* microseconds; at least 1 so that a limit always limits */
		uint64_t t = l->period_msecs * 1000 / l->count;

		if (t == 0)
			t = 1;
		owned[nowned++] = mf_xasprintf("%" PRIu64 " %" PRIu64, t, t * burst);
		/* one allocation holds both numbers: split it at the space */
		char *sp = strchr(owned[nowned - 1], ' ');
		*sp = '\0';
		argv[argc++] = owned[nowned - 1];
		argv[argc++] = sp + 1;
	}
	for (int i = 2; i < argc; i++)
		argvlen[i] = strlen(argv[i]);

	if (run_script(rl, argc, argv, argvlen, &reply, &error) < 0) {
		result_r->verdict = MF_RATELIMIT_UNAVAILABLE;
		result_r->allowed = note_unavailable(rl, error);
		ret = 0;
		goto out;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER) {
		result_r->verdict = MF_RATELIMIT_UNAVAILABLE;
		result_r->allowed = note_unavailable(rl, "unexpected reply from the rate limit script");
		ret = 0;
		goto out;
	}
	idx = reply->element[0]->integer;
	wait_us = reply->element[1]->integer;
	if (idx < 0 || (size_t)idx > n) {
		result_r->verdict = MF_RATELIMIT_UNAVAILABLE;
		result_r->allowed = note_unavailable(rl, "bad key index from the rate limit script");
		ret = 0;
		goto out;
	}
	if (idx == 0) {
		result_r->verdict = MF_RATELIMIT_ALLOWED;
		result_r->allowed = true;
	} else {
		result_r->verdict = MF_RATELIMIT_LIMITED;
		result_r->allowed = false;
		result_r->item = (int)idx - 1;
		result_r->limit_name = items[idx - 1].limit->name;
		snprintf(result_r->key, sizeof(result_r->key), "%s", items[idx - 1].key);
		result_r->retry_after_msecs = ((uint64_t)(wait_us > 0 ? wait_us : 0) + 999) / 1000;
		result_r->retry_after_secs = (unsigned)((result_r->retry_after_msecs + 999) / 1000);
		if (result_r->retry_after_secs == 0)
			result_r->retry_after_secs = 1;
	}
	note_verdict(rl, result_r->verdict == MF_RATELIMIT_LIMITED);
	ret = 0;
out:
	if (reply != NULL)
		freeReplyObject(reply);
	for (unsigned i = 0; i < nowned; i++)
		free(owned[i]);
	return ret;
}

int mf_ratelimit_check(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
		       const struct mf_ratelimit_limit *limit, const char *key,
		       struct mf_ratelimit_result *result_r, const char **error_r)
{
	struct mf_ratelimit_item item = { .limit = limit, .key = key };

	return mf_ratelimit_apply(rl, op, &item, 1, 1, result_r, error_r);
}

int mf_ratelimit_check_ip(struct mf_ratelimit *rl, enum mf_ratelimit_op op,
			  const struct mf_ratelimit_ip_limits *limits, const char *ip,
			  struct mf_ratelimit_result *result_r, const char **error_r)
{
	struct mf_ratelimit_ip_keys keys;
	struct mf_ratelimit_item items[MF_RATELIMIT_IP_LEVELS];
	const struct mf_ratelimit_limit *levels;
	size_t n = 0;

	memset(result_r, 0, sizeof(*result_r));
	result_r->item = -1;
	if (mf_ratelimit_ip_keys(ip, &keys, error_r) < 0)
		return -1;
	levels = keys.ipv6 ? limits->v6 : limits->v4;
	for (unsigned i = 0; i < MF_RATELIMIT_IP_LEVELS; i++) {
		if (levels[i].count == 0)
			continue;
		items[n].limit = &levels[i];
		items[n].key = keys.key[i];
		n++;
	}
	if (n == 0) {
		result_r->verdict = MF_RATELIMIT_ALLOWED;
		result_r->allowed = true;
		return 0;
	}
	/* result_r->key is a copy, so it outlives keys */
	return mf_ratelimit_apply(rl, op, items, n, 1, result_r, error_r);
}

int mf_ratelimit_reset(struct mf_ratelimit *rl, const struct mf_ratelimit_limit *limit,
		       const char *key, const char **error_r)
{
	redisReply *reply = NULL;
	char *rkey;
	int ret;

	if (mf_ratelimit_limit_validate(limit, error_r) < 0 || key_validate(key, error_r) < 0)
		return -1;
	rkey = mf_xasprintf(RL_KEY_PREFIX "%s:%s", limit->name, key);
	ret = mf_redis_command(rl->redis, &reply, error_r, "DEL %s", rkey);
	if (reply != NULL)
		freeReplyObject(reply);
	free(rkey);
	return ret;
}
