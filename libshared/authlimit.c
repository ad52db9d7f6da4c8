/* authlimit: login failure throttling on top of ratelimit.c; see
 * authlimit.h. */
#include "authlimit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "config.h"
#include "metrics.h"

struct mf_authlimit {
	struct mf_ratelimit *rl;
	struct mf_authlimit_settings set;
	_Atomic uint64_t checks, slowed, refused, failures, successes;
	struct mf_metric *throttled;
	struct mf_metric *attempts;
};

#define MIN_MS (60ull * 1000)
#define HOUR_MS (60ull * MIN_MS)

void mf_authlimit_defaults(struct mf_authlimit_settings *set_r)
{
	static const unsigned mult[MF_RATELIMIT_IP_LEVELS] = { 1, 5, 20 };
	static const char *const slow4[] = { "auth-slow-ip4-32", "auth-slow-ip4-26",
					     "auth-slow-ip4-21" };
	static const char *const slow6[] = { "auth-slow-ip6-64", "auth-slow-ip6-48",
					     "auth-slow-ip6-32" };
	static const char *const block4[] = { "auth-block-ip4-32", "auth-block-ip4-26",
					      "auth-block-ip4-21" };
	static const char *const block6[] = { "auth-block-ip6-64", "auth-block-ip6-48",
					      "auth-block-ip6-32" };

	memset(set_r, 0, sizeof(*set_r));
	for (int i = 0; i < MF_RATELIMIT_IP_LEVELS; i++) {
		set_r->ip_slow.v4[i] = (struct mf_ratelimit_limit){ slow4[i], 5 * mult[i], MIN_MS,
								    5 * mult[i] };
		set_r->ip_slow.v6[i] = (struct mf_ratelimit_limit){ slow6[i], 5 * mult[i], MIN_MS,
								    5 * mult[i] };
		set_r->ip_block.v4[i] = (struct mf_ratelimit_limit){ block4[i], 20 * mult[i],
								     2 * HOUR_MS, 20 * mult[i] };
		set_r->ip_block.v6[i] = (struct mf_ratelimit_limit){ block6[i], 20 * mult[i],
								     2 * HOUR_MS, 20 * mult[i] };
	}
	set_r->account_slow = (struct mf_ratelimit_limit){ "auth-slow-account", 20, MIN_MS, 20 };
	set_r->delay_msecs = 2000;
}

static int validate_ip_limits(const struct mf_ratelimit_ip_limits *l, const char **error_r)
{
	for (int i = 0; i < MF_RATELIMIT_IP_LEVELS; i++) {
		if ((l->v4[i].count > 0 && mf_ratelimit_limit_validate(&l->v4[i], error_r) < 0) ||
		    (l->v6[i].count > 0 && mf_ratelimit_limit_validate(&l->v6[i], error_r) < 0))
			return -1;
	}
	return 0;
}

int mf_authlimit_create(struct mf_ratelimit *rl, const struct mf_authlimit_settings *set,
			struct mf_authlimit **al_r, const char **error_r)
{
	struct mf_authlimit *al;

	*al_r = NULL;
	al = mf_xcalloc(1, sizeof(*al));
	if (set != NULL)
		al->set = *set;
	else
		mf_authlimit_defaults(&al->set);
	if (validate_ip_limits(&al->set.ip_slow, error_r) < 0 ||
	    validate_ip_limits(&al->set.ip_block, error_r) < 0 ||
	    (al->set.account_slow.count > 0 &&
	     mf_ratelimit_limit_validate(&al->set.account_slow, error_r) < 0)) {
		free(al);
		return -1;
	}
	al->rl = rl;
	*al_r = al;
	return 0;
}

void mf_authlimit_free(struct mf_authlimit **al)
{
	free(*al);
	*al = NULL;
}

void mf_authlimit_register_metrics(struct mf_authlimit *al, struct mf_metrics *reg,
				   const char *service)
{
	static const char *const actions[] = { "slowed", "refused", NULL };
	static const char *const results[] = { "success", "failure", NULL };
	const struct mf_metric_label la[] = { { "action", actions }, { NULL, NULL } };
	const struct mf_metric_label lr[] = { { "result", results }, { NULL, NULL } };
	char *n1 = mf_xasprintf("mailfleet_%s_auth_throttled_total", service);
	char *n2 = mf_xasprintf("mailfleet_%s_auth_attempts_total", service);

	al->throttled = mf_metrics_counter(reg, n1, "Login attempts slowed down or refused "
					   "after too many failures.", la);
	al->attempts = mf_metrics_counter(reg, n2, "Login attempts by result.", lr);
	free(n1);
	free(n2);
}

static bool has_login(const char *login)
{
	return login != NULL && *login != '\0';
}

int mf_authlimit_check(struct mf_authlimit *al, const char *ip, const char *login,
		       struct mf_authlimit_result *res_r, const char **error_r)
{
	struct mf_ratelimit_result rr;
	char akey[MF_RATELIMIT_KEY_MAX + 1];

	memset(res_r, 0, sizeof(*res_r));
	res_r->verdict = MF_AUTHLIMIT_OK;
	res_r->what = "";
	if (has_login(login) &&
	    mf_ratelimit_account_key(login, akey, sizeof(akey), error_r) < 0)
		return -1;
	atomic_fetch_add(&al->checks, 1);
	if (mf_ratelimit_check_ip(al->rl, MF_RATELIMIT_PEEK, &al->set.ip_block, ip, &rr,
				  error_r) < 0)
		return -1;
	if (rr.verdict == MF_RATELIMIT_UNAVAILABLE && !rr.allowed) {
		res_r->verdict = MF_AUTHLIMIT_TEMPFAIL;
		return 0;
	}
	if (rr.verdict == MF_RATELIMIT_LIMITED) {
		res_r->verdict = MF_AUTHLIMIT_REFUSE;
		res_r->retry_after_secs = rr.retry_after_secs;
		res_r->what = "ip";
		snprintf(res_r->key, sizeof(res_r->key), "%s", rr.key);
		atomic_fetch_add(&al->refused, 1);
		if (al->throttled != NULL)
			mf_metric_inc(al->throttled, "refused");
		return 0;
	}
	if (rr.verdict == MF_RATELIMIT_UNAVAILABLE)
		return 0;   /* policy allow: no limits while Redis is down */
	if (mf_ratelimit_check_ip(al->rl, MF_RATELIMIT_PEEK, &al->set.ip_slow, ip, &rr,
				  error_r) < 0)
		return -1;
	if (rr.verdict == MF_RATELIMIT_LIMITED) {
		res_r->what = "ip";
		snprintf(res_r->key, sizeof(res_r->key), "%s", rr.key);
	} else if (has_login(login) && al->set.account_slow.count > 0) {
		if (mf_ratelimit_check(al->rl, MF_RATELIMIT_PEEK, &al->set.account_slow, akey,
				       &rr, error_r) < 0)
			return -1;
		if (rr.verdict == MF_RATELIMIT_LIMITED) {
			res_r->what = "account";
			snprintf(res_r->key, sizeof(res_r->key), "%s", login);
		}
	}
	if (rr.verdict == MF_RATELIMIT_LIMITED) {
		res_r->verdict = MF_AUTHLIMIT_SLOW;
		res_r->delay_msecs = al->set.delay_msecs;
		atomic_fetch_add(&al->slowed, 1);
		if (al->throttled != NULL)
			mf_metric_inc(al->throttled, "slowed");
	}
	return 0;
}

int mf_authlimit_record(struct mf_authlimit *al, const char *ip, const char *login,
			bool success, const char **error_r)
{
	struct mf_ratelimit_result rr;
	char akey[MF_RATELIMIT_KEY_MAX + 1];

	if (has_login(login) &&
	    mf_ratelimit_account_key(login, akey, sizeof(akey), error_r) < 0)
		return -1;
	if (success) {
		/* Successes are not limited: a shared address (NAT) with one
		 * misconfigured client must not lock out the others. */
		atomic_fetch_add(&al->successes, 1);
		if (al->attempts != NULL)
			mf_metric_inc(al->attempts, "success");
		return 0;
	}
	atomic_fetch_add(&al->failures, 1);
	if (al->attempts != NULL)
		mf_metric_inc(al->attempts, "failure");
	if (mf_ratelimit_check_ip(al->rl, MF_RATELIMIT_RECORD, &al->set.ip_slow, ip, &rr,
				  error_r) < 0 ||
	    mf_ratelimit_check_ip(al->rl, MF_RATELIMIT_RECORD, &al->set.ip_block, ip, &rr,
				  error_r) < 0)
		return -1;
	if (has_login(login) && al->set.account_slow.count > 0 &&
	    mf_ratelimit_check(al->rl, MF_RATELIMIT_RECORD, &al->set.account_slow, akey, &rr,
			       error_r) < 0)
		return -1;
	return 0;
}

void mf_authlimit_get_stats(struct mf_authlimit *al, struct mf_authlimit_stats *stats_r)
{
	stats_r->checks = atomic_load(&al->checks);
	stats_r->slowed = atomic_load(&al->slowed);
	stats_r->refused = atomic_load(&al->refused);
	stats_r->failures = atomic_load(&al->failures);
	stats_r->successes = atomic_load(&al->successes);
}

/* Sets every level of l to count/period (burst count) times the level's
 * multiplier; count 0 switches the levels off. */
static void ip_levels(struct mf_ratelimit_ip_limits *l, const struct mf_config_rate *r)
{
	static const unsigned mult[MF_RATELIMIT_IP_LEVELS] = { 1, 5, 20 };

	for (int i = 0; i < MF_RATELIMIT_IP_LEVELS; i++) {
		uint64_t n = (uint64_t)r->count * mult[i];

		if (n > MF_RATELIMIT_COUNT_MAX)
			n = MF_RATELIMIT_COUNT_MAX;
		l->v4[i].count = l->v6[i].count = (uint32_t)n;
		l->v4[i].burst = l->v6[i].burst = (uint32_t)n;
		l->v4[i].period_msecs = l->v6[i].period_msecs = r->period_ms;
	}
}

void mf_authlimit_settings_from_config(const struct mf_config *c,
				       struct mf_authlimit_settings *set_r)
{
	mf_authlimit_defaults(set_r);
	if (c->auth_slow_set)
		ip_levels(&set_r->ip_slow, &c->auth_slow);
	if (c->auth_block_set)
		ip_levels(&set_r->ip_block, &c->auth_block);
	if (c->auth_account_set) {
		set_r->account_slow.count = c->auth_account.count;
		set_r->account_slow.burst = c->auth_account.count;
		set_r->account_slow.period_msecs = c->auth_account.period_ms;
	}
}
