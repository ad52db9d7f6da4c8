#include "delivery_limit.h"
#include "log.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

#define PKG "delivery"

static void key_for(const char *dest, char *key, size_t size)
{
	snprintf(key, size, "mailfleet:delivery:conns:%.250s", dest);
}

bool delivery_limit_take(struct mf_redis *redis, const char *dest, unsigned max, bool *counted_r)
{
	char key[DELIVERY_LIMIT_KEY_MAX];
	redisReply *reply = NULL;
	const char *error;
	long long n;

	*counted_r = false;
	if (redis == NULL)
		return true;
	key_for(dest, key, sizeof(key));
	if (mf_redis_command(redis, &reply, &error, "INCR %s", key) < 0) {
		mf_log_debug(PKG, NULL, "concurrency limit not enforced", "err=%s", error);
		return true;
	}
	n = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
	freeReplyObject(reply);
	if (mf_redis_command(redis, &reply, &error, "PEXPIRE %s %d", key,
			     DELIVERY_LIMIT_TTL_MS) == 0)
		freeReplyObject(reply);
	if (n > (long long)max) {
		delivery_limit_release(redis, dest);
		return false;
	}
	*counted_r = true;
	return true;
}

void delivery_limit_release(struct mf_redis *redis, const char *dest)
{
	char key[DELIVERY_LIMIT_KEY_MAX];
	redisReply *reply = NULL;
	const char *error;

	if (redis == NULL)
		return;
	key_for(dest, key, sizeof(key));
	if (mf_redis_command(redis, &reply, &error, "DECR %s", key) == 0)
		freeReplyObject(reply);
}
