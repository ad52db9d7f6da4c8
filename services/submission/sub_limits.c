/* sub_limits: per-account daily limits in Redis (see header). */
#include "sub_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"

#define DAY_SECS 86400

const char *sub_limits_messages_decide(uint64_t sent, uint64_t max)
{
	if (max == 0 || sent < max)
		return NULL;
	return mf_errorf("451 4.7.0 this account has sent its maximum of %llu messages "
			 "today (max-outgoing-messages-per-day); try again tomorrow or ask "
			 "the admin to raise the limit", (unsigned long long)max);
}

const char *sub_limits_first_decide(uint64_t first_today, uint64_t new_in_tx, uint64_t max)
{
	if (max == 0 || first_today + new_in_tx <= max)
		return NULL;
	if (new_in_tx > max)
		/* This message alone has more: it can never pass as it is. */
		return mf_errorf("550 5.7.0 this message has more first-time recipients than "
				 "the account may have in a day (%llu, "
				 "max-first-time-recipients-per-day)", (unsigned long long)max);
	return mf_errorf("451 4.7.0 this account has reached its maximum of %llu first-time "
			 "recipients today (max-first-time-recipients-per-day); try again "
			 "tomorrow or ask the admin to raise the limit",
			 (unsigned long long)max);
}

static long long day_of(time_t now)
{
	return (long long)(now / DAY_SECS);
}

static const char *unavailable(const char **reply_r)
{
	*reply_r = "451 4.3.0 sending limits cannot be checked now, try again later";
	return *reply_r;
}

/* GET key as a number (missing = 0).  Returns 0 or -1 with error_r. */
static int get_count(struct mf_redis *r, const char *key, uint64_t *v_r, const char **error_r)
{
	redisReply *rep;

	if (mf_redis_command(r, &rep, error_r, "GET %s", key) < 0)
		return -1;
	*v_r = rep->type == REDIS_REPLY_STRING ? strtoull(rep->str, NULL, 10) : 0;
	freeReplyObject(rep);
	return 0;
}

enum sub_limits_result sub_limits_check_messages(struct mf_redis *r, const char *account,
						 uint64_t max, time_t now, const char **reply_r)
{
	char key[SUB_LIMITS_KEY_MAX];
	uint64_t sent;
	const char *err;

	*reply_r = NULL;
	if (r == NULL || max == 0)
		return SUB_LIMITS_OK;
	snprintf(key, sizeof(key), "mf:sub:msgs:%s:%lld", account, day_of(now));
	if (get_count(r, key, &sent, &err) < 0) {
		unavailable(reply_r);
		return SUB_LIMITS_UNAVAILABLE;
	}
	*reply_r = sub_limits_messages_decide(sent, max);
	return *reply_r == NULL ? SUB_LIMITS_OK : SUB_LIMITS_REFUSED;
}

enum sub_limits_result sub_limits_check_rcpt(struct mf_redis *r, const char *account,
					     const char *rcpt, uint64_t new_before, uint64_t max,
					     time_t now, bool *first_r, const char **reply_r)
{
	char key[SUB_LIMITS_KEY_MAX];
	redisReply *rep;
	uint64_t first_today;
	const char *err;

	*reply_r = NULL;
	*first_r = false;
	if (r == NULL)
		return SUB_LIMITS_OK;
	snprintf(key, sizeof(key), "mf:sub:known:%s", account);
	if (mf_redis_command(r, &rep, &err, "SISMEMBER %s %s", key, rcpt) < 0) {
		unavailable(reply_r);
		return SUB_LIMITS_UNAVAILABLE;
	}
	*first_r = rep->type == REDIS_REPLY_INTEGER && rep->integer == 0;
	freeReplyObject(rep);
	if (!*first_r || max == 0)
		return SUB_LIMITS_OK;
	snprintf(key, sizeof(key), "mf:sub:first:%s:%lld", account, day_of(now));
	if (get_count(r, key, &first_today, &err) < 0) {
		unavailable(reply_r);
		return SUB_LIMITS_UNAVAILABLE;
	}
	*reply_r = sub_limits_first_decide(first_today, new_before + 1, max);
	return *reply_r == NULL ? SUB_LIMITS_OK : SUB_LIMITS_REFUSED;
}

/* Runs one command and drops its reply. */
static int run(struct mf_redis *r, int argc, const char *const *argv, const char **error_r)
{
	redisReply *rep;

	if (mf_redis_command_argv(r, argc, argv, NULL, &rep, error_r) < 0)
		return -1;
	freeReplyObject(rep);
	return 0;
}

int sub_limits_commit(struct mf_redis *r, const char *account, const char *const *rcpts,
		      const bool *first, size_t count, time_t now, const char **error_r)
{
	char mkey[SUB_LIMITS_KEY_MAX], fkey[SUB_LIMITS_KEY_MAX], kkey[SUB_LIMITS_KEY_MAX];
	char nfirst[32], ttl_day[32], ttl_known[32];
	size_t n = 0;

	if (r == NULL)
		return 0;
	snprintf(mkey, sizeof(mkey), "mf:sub:msgs:%s:%lld", account, day_of(now));
	snprintf(fkey, sizeof(fkey), "mf:sub:first:%s:%lld", account, day_of(now));
	snprintf(kkey, sizeof(kkey), "mf:sub:known:%s", account);
	snprintf(ttl_day, sizeof(ttl_day), "%d", 2 * DAY_SECS);
	snprintf(ttl_known, sizeof(ttl_known), "%d", SUB_LIMITS_KNOWN_DAYS * DAY_SECS);
	for (size_t i = 0; i < count; i++)
		n += first[i] ? 1 : 0;
	snprintf(nfirst, sizeof(nfirst), "%zu", n);

	const char *incr[] = { "INCR", mkey };
	const char *exp1[] = { "EXPIRE", mkey, ttl_day };
	if (run(r, 2, incr, error_r) < 0 || run(r, 3, exp1, error_r) < 0)
		return -1;
	if (n > 0) {
		const char *incrby[] = { "INCRBY", fkey, nfirst };
		const char *exp2[] = { "EXPIRE", fkey, ttl_day };
		if (run(r, 3, incrby, error_r) < 0 || run(r, 3, exp2, error_r) < 0)
			return -1;
	}
	if (count > 0) {
		const char **sadd = mf_xcalloc(count + 2, sizeof(*sadd));
		int ret;
		sadd[0] = "SADD";
		sadd[1] = kkey;
		for (size_t i = 0; i < count; i++)
			sadd[i + 2] = rcpts[i];
		ret = run(r, (int)count + 2, sadd, error_r);
		free(sadd);
		const char *exp3[] = { "EXPIRE", kkey, ttl_known };
		if (ret < 0 || run(r, 3, exp3, error_r) < 0)
			return -1;
	}
	return 0;
}
