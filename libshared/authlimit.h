/* authlimit: brute-force throttling of logins (SMTP AUTH, IMAP LOGIN and
 * AUTHENTICATE, web logins), shared by every replica through Redis
 * (ratelimit.h, GCRA).
 *
 * Only failures are counted.  Per IP address (and its wider networks,
 * IPv4 /32 /26 /21, IPv6 /64 /48 /32) two limits apply: past the "slow"
 * limit each attempt from there is delayed; past the "block" limit attempts
 * from there are refused until enough time has passed.  Per account (the
 * login name the client gave) failures only slow attempts down, never
 * refuse them: refusing by account would let anyone lock a user out, and a
 * correct login from an address that did not fail must always work.
 *
 * Use from a protocol session:
 *   before the exchange: mf_authlimit_check(al, ip, NULL, &res)
 *     REFUSE   -> answer a temporary error without reading credentials
 *                 (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE]); counted in metrics
 *     SLOW     -> sleep res.delay_msecs, then go on
 *     TEMPFAIL -> Redis is down and the policy is deny: temporary error
 *   when the login name is known (PLAIN/LOGIN message, SCRAM client-first),
 *     optionally mf_authlimit_check(al, ip, login, &res) again for the
 *     per-account slowdown
 *   after the exchange: mf_authlimit_record(al, ip, login, success)
 *
 * Redis down: checks follow the ratelimit policy (allow: no limits, deny:
 * TEMPFAIL); records are dropped (logged by ratelimit.c). */
#ifndef MF_AUTHLIMIT_H
#define MF_AUTHLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ratelimit.h"

struct mf_metrics;

struct mf_authlimit_settings {
	struct mf_ratelimit_ip_limits ip_slow;    /* failures before slowing */
	struct mf_ratelimit_ip_limits ip_block;   /* failures before refusing */
	struct mf_ratelimit_limit account_slow;   /* count 0: no per-account limit */
	uint32_t delay_msecs;                     /* delay when slowed */
};

/* Defaults: per /32 (/64) slow after 5 failures (then 5/min), refuse after
 * 20 (then 10/hour); the wider networks 5 and 20 times as much; per
 * account slow after 20 (then 20/min); delay 2 s. */
void mf_authlimit_defaults(struct mf_authlimit_settings *set_r);
struct mf_config;
/* The defaults with mailfleet.conf's ratelimit { auth-failures-slow,
 * auth-failures-block, auth-failures-account } applied (config.h). */
void mf_authlimit_settings_from_config(const struct mf_config *c,
				       struct mf_authlimit_settings *set_r);

enum mf_authlimit_verdict {
	MF_AUTHLIMIT_OK,
	MF_AUTHLIMIT_SLOW,      /* wait delay_msecs, then go on */
	MF_AUTHLIMIT_REFUSE,    /* too many failures: refuse for retry_after_secs */
	MF_AUTHLIMIT_TEMPFAIL,  /* Redis down, policy deny */
};

struct mf_authlimit_result {
	enum mf_authlimit_verdict verdict;
	uint32_t delay_msecs;
	unsigned retry_after_secs;
	/* Which limit: "ip" or "account", and the key (network or name). */
	const char *what;
	char key[MF_RATELIMIT_KEY_MAX + 1];
};

struct mf_authlimit_stats {
	uint64_t checks;
	uint64_t slowed;
	uint64_t refused;
	uint64_t failures;     /* failed logins recorded */
	uint64_t successes;    /* successful logins recorded */
};

struct mf_authlimit;

/* Creates a limiter on rl (not owned; must outlive it) with set (copied;
 * NULL: defaults).  Limit names are prefixed with "auth-".  Returns 0 with
 * *al_r (free with mf_authlimit_free) or -1 with error_r for bad limits. */
int mf_authlimit_create(struct mf_ratelimit *rl, const struct mf_authlimit_settings *set,
			struct mf_authlimit **al_r, const char **error_r);
void mf_authlimit_free(struct mf_authlimit **al);

/* Registers mailfleet_<service>_auth_throttled_total{action="slowed"|
 * "refused"} and mailfleet_<service>_auth_attempts_total{result=
 * "success"|"failure"} in reg; service is a metric-name part ("imap",
 * "submission").  Call once. */
void mf_authlimit_register_metrics(struct mf_authlimit *al, struct mf_metrics *reg,
				   const char *service);

/* Decides about an attempt from ip (text address), for login (NULL or ""
 * when not known yet).  Returns 0 with res_r, or -1 with error_r for a bad
 * ip or login (the caller refuses the attempt). */
int mf_authlimit_check(struct mf_authlimit *al, const char *ip, const char *login,
		       struct mf_authlimit_result *res_r, const char **error_r);

/* Records the result of an attempt.  Failures are charged to ip's
 * networks and to login (when given).  Returns 0, or -1 with error_r for
 * bad arguments (Redis being down is not an error here). */
int mf_authlimit_record(struct mf_authlimit *al, const char *ip, const char *login,
			bool success, const char **error_r);

void mf_authlimit_get_stats(struct mf_authlimit *al, struct mf_authlimit_stats *stats_r);

#endif
