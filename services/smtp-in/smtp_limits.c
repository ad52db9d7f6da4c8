/* smtp_limits: connection slots, Redis rate limits, tarpit. */
#include "smtp_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

struct smtp_ip_count {
	char ip[MF_NET_ADDR_STR_MAX];
	unsigned n;
};

bool smtp_limits_ip_acquire(struct smtp_server *srv, const char *ip)
{
	uint64_t max = srv->config->limits.max_connections_per_ip;
	bool ok = true;
	size_t i;

	pthread_mutex_lock(&srv->ip_lock);
	for (i = 0; i < srv->ips_count; i++) {
		if (strcmp(srv->ips[i].ip, ip) == 0)
			break;
	}
	if (i == srv->ips_count) {
		if (srv->ips_count == srv->ips_alloc) {
			srv->ips_alloc = srv->ips_alloc == 0 ? 64 : srv->ips_alloc * 2;
			srv->ips = mf_xrealloc(srv->ips, srv->ips_alloc * sizeof(*srv->ips));
		}
		snprintf(srv->ips[i].ip, sizeof(srv->ips[i].ip), "%s", ip);
		srv->ips[i].n = 0;
		srv->ips_count++;
	}
	if (max != 0 && srv->ips[i].n >= max)
		ok = false;
	else
		srv->ips[i].n++;
	pthread_mutex_unlock(&srv->ip_lock);
	return ok;
}

void smtp_limits_ip_release(struct smtp_server *srv, const char *ip)
{
	pthread_mutex_lock(&srv->ip_lock);
	for (size_t i = 0; i < srv->ips_count; i++) {
		if (strcmp(srv->ips[i].ip, ip) != 0)
			continue;
		if (--srv->ips[i].n == 0)
			srv->ips[i] = srv->ips[--srv->ips_count];
		break;
	}
	pthread_mutex_unlock(&srv->ip_lock);
}

const char *smtp_limits_rate(struct smtp_server *srv, const char *cid, const char *ip,
			     bool message)
{
	static _Thread_local char reply[512];
	const struct mf_ratelimit_ip_limits *lim = message ? srv->msg_limits : srv->conn_limits;
	struct mf_ratelimit_ip_keys keys;
	struct mf_ratelimit_item items[2 * MF_RATELIMIT_IP_LEVELS];
	struct mf_ratelimit_result res;
	const char *err, *what = message ? "message" : "connection";
	size_t n = 0;

	if (srv->rl == NULL)
		return NULL;
	if (mf_ratelimit_ip_keys(ip, &keys, &err) < 0) {
		/* Not an IP we can key (should not happen for TCP peers). */
		mf_log_warn("smtp-in", cid, "no rate limit key", "ip=%s error=%s", ip, err);
		return NULL;
	}
	for (size_t p = 0; p < (message ? srv->msg_limits_count : srv->conn_limits_count); p++) {
		for (int l = 0; l < MF_RATELIMIT_IP_LEVELS; l++) {
			const struct mf_ratelimit_limit *x = keys.ipv6 ? &lim[p].v6[l] : &lim[p].v4[l];
			if (x->count == 0)
				continue;
			items[n].limit = x;
			items[n].key = keys.key[l];
			n++;
		}
	}
	if (n == 0)
		return NULL;
	if (mf_ratelimit_apply(srv->rl, MF_RATELIMIT_CONSUME, items, n, 1, &res, &err) < 0) {
		mf_log_error("smtp-in", cid, "rate limit check failed", "error=%s", err);
		return NULL;
	}
	if (res.verdict == MF_RATELIMIT_UNAVAILABLE) {
		mf_metric_inc(srv->m_ratelimited, "redis_down");
		if (res.allowed)
			return NULL;
		snprintf(reply, sizeof(reply), "%s 4.3.0 rate limit state unavailable, try again later",
			 message ? "451" : "421");
		return reply;
	}
	if (res.allowed)
		return NULL;
	mf_metric_inc(srv->m_ratelimited, what);
	mf_log_info("smtp-in", cid, "rate limited", "what=%s limit=%s key=%s retry_after=%u",
		    what, res.limit_name != NULL ? res.limit_name : "", res.key,
		    res.retry_after_secs);
	if (message)
		snprintf(reply, sizeof(reply),
			 "451 4.7.1 too many messages from your network (%s), try again in %u s",
			 res.key, res.retry_after_secs);
	else
		snprintf(reply, sizeof(reply),
			 "421 4.7.0 too many connections from your network (%s), try again in %u s",
			 res.key, res.retry_after_secs);
	return reply;
}

unsigned smtp_limits_tarpit_ms(unsigned errors)
{
	unsigned ms;

	if (errors <= SMTP_IN_TARPIT_AFTER)
		return 0;
	ms = (errors - SMTP_IN_TARPIT_AFTER) * SMTP_IN_TARPIT_STEP_MS;
	return ms > SMTP_IN_TARPIT_MAX_MS ? SMTP_IN_TARPIT_MAX_MS : ms;
}
