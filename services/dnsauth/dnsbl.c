#include "dnsbl.h"

#include "buf.h"
#include "error.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *dnsbl_status_name(enum dnsbl_status status)
{
	switch (status) {
	case DNSBL_NOT_LISTED: return "not-listed";
	case DNSBL_LISTED: return "listed";
	case DNSBL_TEMPERROR: return "temperror";
	}
	return "unknown";
}

void dnsbl_check(struct dns_resolver *r, const struct dns_ip *ip, const char *zone,
		 struct dnsbl_outcome *o)
{
	char rev[80], addr[64];
	char *name;
	struct dns_answer *a, *txt;

	memset(o, 0, sizeof(*o));
	dns_ip_reverse(ip, rev, sizeof(rev));
	dns_ip_format(ip, addr, sizeof(addr));
	/* RFC 5782 2.1 (IPv4) and 2.4 (IPv6: 32 nibbles). */
	name = mf_xasprintf("%s.%s", rev, zone);
	a = dns_lookup(r, name, DNS_TYPE_A);
	o->authentic = a->authentic;
	switch (a->status) {
	case DNS_STATUS_TEMPFAIL:
		o->status = DNSBL_TEMPERROR;
		o->problem = mf_xasprintf("%s: %s", zone, a->error);
		goto out;
	case DNS_STATUS_NXDOMAIN:
	case DNS_STATUS_NODATA:
		o->status = DNSBL_NOT_LISTED;
		goto out;
	case DNS_STATUS_OK:
		break;
	}
	for (size_t i = 0; i < a->count; i++) {
		const struct dns_ip *v = &a->records[i].ip;
		if (v->family != AF_INET || v->addr[0] != 127) {
			char buf[64];
			o->status = DNSBL_TEMPERROR;
			o->problem = mf_xasprintf("%s answered %s for %s, outside 127.0.0.0/8", zone,
						  dns_ip_format(v, buf, sizeof(buf)), addr);
			o->address_count = 0;
			goto out;
		}
		if (o->address_count < DNSBL_ADDRESSES_MAX)
			o->addresses[o->address_count++] = *v;
	}
	o->status = DNSBL_LISTED;
	txt = dns_lookup(r, name, DNS_TYPE_TXT);
	if (txt->status == DNS_STATUS_OK && txt->count > 0) {
		size_t len = txt->records[0].data_len;
		o->text = mf_xstrndup((const char *)txt->records[0].data,
				      len > DNSBL_TEXT_MAX ? DNSBL_TEXT_MAX : len);
	}
	dns_answer_free(&txt);
out:
	dns_answer_free(&a);
	free(name);
}

void dnsbl_outcome_clear(struct dnsbl_outcome *o)
{
	free(o->text);
	free(o->problem);
	memset(o, 0, sizeof(*o));
}

/* --- the monitor --- */

struct dnsbl_monitor {
	struct dns_resolver *r;
	char **zones;
	size_t nzones;
	char **ips;
	struct dns_ip *addrs;
	size_t nips;
	uint64_t interval_ms;
	struct mf_metric *listed;
	struct mf_metric *errors;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool started;
};

static void monitor_round(struct dnsbl_monitor *m)
{
	for (size_t z = 0; z < m->nzones; z++) {
		for (size_t i = 0; i < m->nips; i++) {
			struct dnsbl_outcome o;

			dnsbl_check(m->r, &m->addrs[i], m->zones[z], &o);
			if (o.status == DNSBL_TEMPERROR) {
				mf_metric_inc(m->errors, m->zones[z]);
				mf_log(MF_LOG_WARN, "dnsbl", NULL, "dnsbl monitor check failed",
				       "zone=%s ip=%s error=%s", m->zones[z], m->ips[i], o.problem);
			} else {
				mf_series_set(mf_metric_series(m->listed, m->zones[z], m->ips[i]),
					      o.status == DNSBL_LISTED ? 1 : 0);
				if (o.status == DNSBL_LISTED)
					mf_log(MF_LOG_WARN, "dnsbl", NULL, "our address is listed",
					       "zone=%s ip=%s text=%s", m->zones[z], m->ips[i],
					       o.text != NULL ? o.text : "");
			}
			dnsbl_outcome_clear(&o);
		}
	}
}

static void *monitor_main(void *arg)
{
	struct dnsbl_monitor *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&m->lock);
		monitor_round(m);
		pthread_mutex_lock(&m->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(m->interval_ms / 1000);
		ts.tv_nsec += (long)(m->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!m->stop && pthread_cond_timedwait(&m->cond, &m->lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static char **copy_list(char *const *list, size_t n)
{
	char **c = mf_xcalloc(n + 1, sizeof(*c));

	for (size_t i = 0; i < n; i++)
		c[i] = mf_xstrdup(list[i]);
	return c;
}

struct dnsbl_monitor *dnsbl_monitor_start(struct dns_resolver *r, struct mf_metrics *metrics,
					  char *const *zones, size_t nzones,
					  char *const *ips, size_t nips, uint64_t interval_ms,
					  const char **error_r)
{
	struct dnsbl_monitor *m = mf_xcalloc(1, sizeof(*m));

	m->r = r;
	m->zones = copy_list(zones, nzones);
	m->nzones = nzones;
	m->ips = copy_list(ips, nips);
	m->nips = nips;
	m->interval_ms = interval_ms < 1000 ? 1000 : interval_ms;
	m->addrs = mf_xcalloc(nips + 1, sizeof(*m->addrs));
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	for (size_t i = 0; i < nips; i++) {
		if (dns_ip_parse(ips[i], &m->addrs[i]) < 0) {
			*error_r = mf_errorf("bad IP address %s", ips[i]);
			dnsbl_monitor_stop(&m);
			return NULL;
		}
	}
	const struct mf_metric_label labels[] = {
		{ "zone", (const char *const *)m->zones },
		{ "ip", (const char *const *)m->ips },
		{ NULL, NULL },
	};
	const struct mf_metric_label zone_label[] = {
		{ "zone", (const char *const *)m->zones },
		{ NULL, NULL },
	};
	/* Metrics only for a monitor with something to watch: label value
	 * lists must not be empty. */
	if (nzones == 0 || nips == 0)
		return m;
	m->listed = mf_metrics_gauge(metrics, "mailfleet_dnsauth_dnsbl_listed",
				     "Whether our address ip is listed in DNSBL zone (1) or not (0).",
				     labels);
	m->errors = mf_metrics_counter(metrics, "mailfleet_dnsauth_dnsbl_monitor_errors_total",
				       "DNSBL monitor checks that ended in a DNS error.", zone_label);
	if (pthread_create(&m->thread, NULL, monitor_main, m) != 0) {
		*error_r = "cannot start the DNSBL monitor thread";
		dnsbl_monitor_stop(&m);
		return NULL;
	}
	m->started = true;
	return m;
}

void dnsbl_monitor_run_once(struct dnsbl_monitor *m)
{
	if (m->listed != NULL)
		monitor_round(m);
}

void dnsbl_monitor_stop(struct dnsbl_monitor **monitor)
{
	struct dnsbl_monitor *m = *monitor;

	if (m == NULL)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		pthread_cond_signal(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	for (size_t i = 0; i < m->nzones; i++)
		free(m->zones[i]);
	for (size_t i = 0; i < m->nips; i++)
		free(m->ips[i]);
	free(m->zones);
	free(m->ips);
	free(m->addrs);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
	*monitor = NULL;
}
