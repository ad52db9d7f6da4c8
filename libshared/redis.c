#include "redis.h"
#include "buf.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REDIS_PKG "redis"
#define REDIS_UNAVAILABLE "redis unavailable"

struct redis_slot {
	pthread_mutex_t lock;
	redisContext *ctx;
};

struct mf_redis {
	char *host, *user, *password, *url_redacted;
	int port, db;
	struct mf_redis_settings set;

	struct redis_slot *slots;
	unsigned slot_count;
	atomic_uint next_slot;

	/* state_lock guards everything below; it is taken inside a slot lock,
	 * never the other way round, and never held across network I/O. */
	pthread_mutex_t state_lock;
	bool up;                   /* last attempt to reach Redis worked */
	uint64_t next_connect_ms;  /* while down: no connect before this */
	uint64_t backoff_ms;
	uint64_t last_ok_ms;       /* 0: never */
	struct mf_redis_stats stats;

	pthread_t pinger;
	pthread_cond_t stop_cond;
	bool stop;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval msecs_tv(unsigned msecs)
{
	struct timeval tv = { .tv_sec = msecs / 1000, .tv_usec = (msecs % 1000) * 1000 };
	return tv;
}

static int parse_uint(const char *s, size_t len, long max, long *value_r)
{
	long v = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*value_r = v;
	return 0;
}

int mf_redis_url_parse(const char *url, char **host_r, int *port_r, char **user_r,
		       char **password_r, int *db_r, const char **error_r)
{
	const char *p, *end, *at, *hostend, *portstart = NULL;
	char *host = NULL, *user = NULL, *password = NULL;
	long port = 6379, db = 0;
	size_t len = strlen(url);
	int ret = -1;

	if (len > MF_REDIS_URL_MAX) {
		*error_r = "redis url too long";
		goto out;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		*error_r = "redis url must start with redis://";
		goto out;
	}
	p = url + 8;
	end = strchr(p, '/');
	if (end == NULL)
		end = url + len;
	/* The password may contain '@'; the host may not, so split at the last. */
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));

		if (colon == NULL) {
			*error_r = "redis url: credentials must be [user]:password@";
			goto out;
		}
		if ((size_t)(at - colon - 1) > MF_REDIS_PASSWORD_MAX) {
			*error_r = "redis url: password too long";
			goto out;
		}
		if (colon > p)
			user = mf_xstrndup(p, (size_t)(colon - p));
		password = mf_xstrndup(colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	if (*p == '[') {
		hostend = memchr(p, ']', (size_t)(end - p));
		if (hostend == NULL) {
			*error_r = "redis url: unterminated [ipv6] host";
			goto out;
		}
		host = mf_xstrndup(p + 1, (size_t)(hostend - p - 1));
		hostend++;
		if (hostend < end && *hostend != ':') {
			*error_r = "redis url: garbage after ]";
			goto out;
		}
		if (hostend < end)
			portstart = hostend + 1;
	} else {
		hostend = memchr(p, ':', (size_t)(end - p));
		if (hostend == NULL)
			hostend = end;
		else
			portstart = hostend + 1;
		host = mf_xstrndup(p, (size_t)(hostend - p));
	}
	if (host[0] == '\0' || strlen(host) > MF_REDIS_HOST_MAX) {
		*error_r = "redis url: empty or too long host";
		goto out;
	}
	if (portstart != NULL &&
	    (parse_uint(portstart, (size_t)(end - portstart), 65535, &port) < 0 || port == 0)) {
		*error_r = "redis url: bad port";
		goto out;
	}
	if (*end == '/' && end[1] != '\0' &&
	    parse_uint(end + 1, strlen(end + 1), MF_REDIS_DB_MAX, &db) < 0) {
		*error_r = "redis url: bad database number";
		goto out;
	}
	*host_r = host;
	*user_r = user;
	*password_r = password;
	*port_r = (int)port;
	*db_r = (int)db;
	host = user = password = NULL;
	ret = 0;
out:
	free(host);
	free(user);
	free(password);
	return ret;
}

bool mf_redis_error_is(const char *error, const char *kind)
{
	size_t n = strlen(kind);

	return strncmp(error, kind, n) == 0 && (error[n] == ' ' || error[n] == '\0');
}

bool mf_redis_error_is_unavailable(const char *error)
{
	return strncmp(error, REDIS_UNAVAILABLE, strlen(REDIS_UNAVAILABLE)) == 0;
}

/* Marks Redis reachable; logs only the down -> up transition. */
static void note_ok(struct mf_redis *r, bool connected)
{
	bool was_up;

	pthread_mutex_lock(&r->state_lock);
	was_up = r->up;
	r->up = true;
	r->backoff_ms = MF_REDIS_RECONNECT_MIN_MSECS;
	r->next_connect_ms = 0;
	r->last_ok_ms = now_ms();
	if (connected)
		r->stats.connects++;
	pthread_mutex_unlock(&r->state_lock);
	if (!was_up && connected)
		mf_log_info(REDIS_PKG, NULL, "redis connected", "url=%s", r->url_redacted);
}

/* Marks Redis unreachable and schedules the next connect after a backoff;
 * logs only the up -> down transition, so an outage is one line, not one per
 * command. */
static void note_failure(struct mf_redis *r, bool connect_failed, const char *why)
{
	bool was_up;
	uint64_t backoff;

	pthread_mutex_lock(&r->state_lock);
	was_up = r->up;
	r->up = false;
	backoff = r->backoff_ms;
	r->next_connect_ms = now_ms() + backoff;
	if (r->backoff_ms < r->set.reconnect_max_msecs) {
		r->backoff_ms *= 2;
		if (r->backoff_ms > r->set.reconnect_max_msecs)
			r->backoff_ms = r->set.reconnect_max_msecs;
	}
	if (connect_failed)
		r->stats.connect_failures++;
	pthread_mutex_unlock(&r->state_lock);
	if (was_up)
		mf_log_warn(REDIS_PKG, NULL, "redis unavailable",
			    "url=%s error=%s retry_ms=%llu", r->url_redacted, why,
			    (unsigned long long)backoff);
}

/* While Redis is down, the network is touched (connect, or a command on a
 * connection still open) at most once per backoff interval: the caller that
 * gets true claims that attempt; everybody else fails at once. */
static bool network_allowed(struct mf_redis *r, uint64_t *wait_ms_r)
{
	bool ok = true;
	uint64_t now = now_ms();

	pthread_mutex_lock(&r->state_lock);
	if (!r->up && r->next_connect_ms != 0) {
		if (now < r->next_connect_ms) {
			*wait_ms_r = r->next_connect_ms - now;
			ok = false;
		} else {
			r->next_connect_ms = now + r->backoff_ms;
		}
	}
	pthread_mutex_unlock(&r->state_lock);
	return ok;
}

/* Returns a connected, authenticated context with the db selected, or NULL
 * with why (static or mf_errorf text). */
static redisContext *redis_connect(struct mf_redis *r, const char **why_r)
{
	redisContext *ctx;
	redisReply *reply = NULL;

	ctx = redisConnectWithTimeout(r->host, r->port, msecs_tv(r->set.connect_timeout_msecs));
	if (ctx == NULL) {
		*why_r = "out of memory";
		return NULL;
	}
	if (ctx->err != 0) {
		*why_r = mf_errorf("connect: %s", ctx->errstr);
		goto fail;
	}
	if (redisSetTimeout(ctx, msecs_tv(r->set.command_timeout_msecs)) != REDIS_OK) {
		*why_r = mf_errorf("set timeout: %s", ctx->errstr);
		goto fail;
	}
	if (r->password != NULL) {
		if (r->user != NULL)
			reply = redisCommand(ctx, "AUTH %s %s", r->user, r->password);
		else
			reply = redisCommand(ctx, "AUTH %s", r->password);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			*why_r = mf_errorf("AUTH: %s", reply != NULL ? reply->str : ctx->errstr);
			goto fail;
		}
		freeReplyObject(reply);
		reply = NULL;
	}
	if (r->db != 0) {
		reply = redisCommand(ctx, "SELECT %d", r->db);
		if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
			*why_r = mf_errorf("SELECT: %s", reply != NULL ? reply->str : ctx->errstr);
			goto fail;
		}
		freeReplyObject(reply);
	}
	return ctx;
fail:
	if (reply != NULL)
		freeReplyObject(reply);
	redisFree(ctx);
	return NULL;
}

static struct redis_slot *slot_acquire(struct mf_redis *r)
{
	unsigned start = atomic_fetch_add(&r->next_slot, 1);
	struct redis_slot *s;

	for (unsigned i = 0; i < r->slot_count; i++) {
		s = &r->slots[(start + i) % r->slot_count];
		if (pthread_mutex_trylock(&s->lock) == 0)
			return s;
	}
	s = &r->slots[start % r->slot_count];
	pthread_mutex_lock(&s->lock);
	return s;
}

/* Runs a formatted command.  internal: the background PING, which is not
 * counted in the caller-visible stats. */
static int redis_exec(struct mf_redis *r, const char *cmd, size_t len, bool internal,
		      redisReply **reply_r, const char **error_r)
{
	struct redis_slot *slot = slot_acquire(r);
	redisReply *reply = NULL;
	const char *why = NULL;
	int ret = -1;
	bool unavailable = false;

	*reply_r = NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fresh = false, timed_out;
		int err;
		uint64_t wait_ms = 0;

		if (!network_allowed(r, &wait_ms)) {
			*error_r = mf_errorf(REDIS_UNAVAILABLE ": next attempt in %llu ms",
					     (unsigned long long)wait_ms);
			unavailable = true;
			goto out;
		}
		if (slot->ctx == NULL) {
			slot->ctx = redis_connect(r, &why);
			if (slot->ctx == NULL) {
				note_failure(r, true, why);
				*error_r = mf_errorf(REDIS_UNAVAILABLE ": %s", why);
				unavailable = true;
				goto out;
			}
			note_ok(r, true);
			fresh = true;
		}
		errno = 0;
		if (redisAppendFormattedCommand(slot->ctx, cmd, len) == REDIS_OK &&
		    redisGetReply(slot->ctx, (void **)&reply) == REDIS_OK && reply != NULL)
			break;
		err = errno;
		timed_out = slot->ctx->err == REDIS_ERR_IO &&
			    (err == EAGAIN || err == EWOULDBLOCK ||
			     strstr(slot->ctx->errstr, "temporarily unavailable") != NULL);
		why = mf_errorf("%s", timed_out ? "command timed out" : slot->ctx->errstr);
		redisFree(slot->ctx);
		slot->ctx = NULL;
		reply = NULL;
		/* A connection closed under us (Redis restarted, idle timeout) is
		 * retried once at once; a timeout is not, to fail fast. */
		if (!fresh && !timed_out && attempt == 0)
			continue;
		note_failure(r, false, why);
		*error_r = mf_errorf(REDIS_UNAVAILABLE ": %s", why);
		unavailable = true;
		goto out;
	}
	note_ok(r, false);
	if (reply->type == REDIS_REPLY_ERROR) {
		*error_r = mf_errorf("%.*s", (int)(reply->len < 512 ? reply->len : 512), reply->str);
		freeReplyObject(reply);
		pthread_mutex_lock(&r->state_lock);
		if (!internal)
			r->stats.errors++;
		pthread_mutex_unlock(&r->state_lock);
		goto out;
	}
	*reply_r = reply;
	ret = 0;
out:
	pthread_mutex_unlock(&slot->lock);
	if (!internal) {
		pthread_mutex_lock(&r->state_lock);
		r->stats.commands++;
		if (unavailable)
			r->stats.unavailable++;
		pthread_mutex_unlock(&r->state_lock);
	}
	return ret;
}

int mf_redis_command_argv(struct mf_redis *r, int argc, const char *const *argv,
			  const size_t *argvlen, redisReply **reply_r,
			  const char **error_r)
{
	char *cmd = NULL;
	int len, ret;

	len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, argvlen);
	if (len < 0) {
		*reply_r = NULL;
		*error_r = "redis: cannot format command";
		return -1;
	}
	ret = redis_exec(r, cmd, (size_t)len, false, reply_r, error_r);
	redisFreeCommand(cmd);
	return ret;
}

int mf_redis_command(struct mf_redis *r, redisReply **reply_r, const char **error_r,
		     const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int len, ret;

	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0) {
		*reply_r = NULL;
		*error_r = "redis: cannot format command";
		return -1;
	}
	ret = redis_exec(r, cmd, (size_t)len, false, reply_r, error_r);
	redisFreeCommand(cmd);
	return ret;
}

static void *pinger_main(void *arg)
{
	static const char ping[] = "*1\r\n$4\r\nPING\r\n";
	struct mf_redis *r = arg;
	struct timespec deadline;

	pthread_mutex_lock(&r->state_lock);
	while (!r->stop) {
		bool idle = !r->up || now_ms() - r->last_ok_ms >= r->set.ping_interval_msecs;
		redisReply *reply;
		const char *error;
		uint64_t ns;

		if (idle) {
			pthread_mutex_unlock(&r->state_lock);
			if (redis_exec(r, ping, sizeof(ping) - 1, true, &reply, &error) == 0)
				freeReplyObject(reply);
			pthread_mutex_lock(&r->state_lock);
			if (r->stop)
				break;
		}
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		ns = (uint64_t)deadline.tv_nsec + (uint64_t)(r->set.ping_interval_msecs % 1000) * 1000000;
		deadline.tv_sec += r->set.ping_interval_msecs / 1000 + (time_t)(ns / 1000000000);
		deadline.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&r->stop_cond, &r->state_lock, &deadline);
	}
	pthread_mutex_unlock(&r->state_lock);
	return NULL;
}

static char *redact_url(const char *url)
{
	const char *p = url + 8, *slash = strchr(p, '/'), *at = NULL;

	for (const char *q = p; *q != '\0' && (slash == NULL || q < slash); q++)
		if (*q == '@')
			at = q;
	if (at == NULL)
		return mf_xstrdup(url);
	const char *colon = memchr(p, ':', (size_t)(at - p));
	return mf_xasprintf("redis://%.*s:***%s", (int)(colon - p), p, at);
}

int mf_redis_create(const char *url, const struct mf_redis_settings *settings,
		    struct mf_redis **r_r, const char **error_r)
{
	struct mf_redis *r = mf_xcalloc(1, sizeof(*r));
	pthread_condattr_t attr;
	const char *error;

	if (mf_redis_url_parse(url, &r->host, &r->port, &r->user, &r->password, &r->db,
			       &error) < 0) {
		*error_r = mf_errorf("%s", error);
		free(r);
		return -1;
	}
	if (settings != NULL)
		r->set = *settings;
	if (r->set.connect_timeout_msecs == 0)
		r->set.connect_timeout_msecs = 1000;
	if (r->set.command_timeout_msecs == 0)
		r->set.command_timeout_msecs = 1000;
	if (r->set.pool_size == 0)
		r->set.pool_size = 4;
	if (r->set.pool_size > MF_REDIS_POOL_MAX)
		r->set.pool_size = MF_REDIS_POOL_MAX;
	if (r->set.ping_interval_msecs == 0)
		r->set.ping_interval_msecs = 1000;
	if (r->set.ready_window_msecs == 0)
		r->set.ready_window_msecs = 5000;
	if (r->set.reconnect_max_msecs == 0)
		r->set.reconnect_max_msecs = 5000;
	if (r->set.reconnect_max_msecs < MF_REDIS_RECONNECT_MIN_MSECS)
		r->set.reconnect_max_msecs = MF_REDIS_RECONNECT_MIN_MSECS;

	r->url_redacted = redact_url(url);
	r->slot_count = r->set.pool_size;
	r->slots = mf_xcalloc(r->slot_count, sizeof(*r->slots));
	for (unsigned i = 0; i < r->slot_count; i++)
		pthread_mutex_init(&r->slots[i].lock, NULL);
	pthread_mutex_init(&r->state_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->stop_cond, &attr);
	pthread_condattr_destroy(&attr);
	/* Counted as up until the first attempt says otherwise, so that the
	 * first failure is logged. */
	r->up = true;
	r->backoff_ms = MF_REDIS_RECONNECT_MIN_MSECS;
	if (pthread_create(&r->pinger, NULL, pinger_main, r) != 0)
		mf_fatal("redis: cannot start the ping thread");
	*r_r = r;
	return 0;
}

void mf_redis_free(struct mf_redis **rp)
{
	struct mf_redis *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	pthread_mutex_lock(&r->state_lock);
	r->stop = true;
	pthread_cond_signal(&r->stop_cond);
	pthread_mutex_unlock(&r->state_lock);
	pthread_join(r->pinger, NULL);
	for (unsigned i = 0; i < r->slot_count; i++) {
		if (r->slots[i].ctx != NULL)
			redisFree(r->slots[i].ctx);
		pthread_mutex_destroy(&r->slots[i].lock);
	}
	pthread_mutex_destroy(&r->state_lock);
	pthread_cond_destroy(&r->stop_cond);
	free(r->slots);
	free(r->host);
	free(r->user);
	free(r->password);
	free(r->url_redacted);
	free(r);
}

bool mf_redis_ready(struct mf_redis *r)
{
	bool ready;

	pthread_mutex_lock(&r->state_lock);
	ready = r->up && r->last_ok_ms != 0 &&
		now_ms() - r->last_ok_ms <= r->set.ready_window_msecs;
	pthread_mutex_unlock(&r->state_lock);
	return ready;
}

void mf_redis_get_stats(struct mf_redis *r, struct mf_redis_stats *stats_r)
{
	pthread_mutex_lock(&r->state_lock);
	*stats_r = r->stats;
	pthread_mutex_unlock(&r->state_lock);
}

const char *mf_redis_url_redacted(const struct mf_redis *r)
{
	return r->url_redacted;
}
