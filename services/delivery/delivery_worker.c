#include "delivery_worker.h"
#include "delivery_conncache.h"
#include "delivery_limit.h"
#include "delivery_local.h"
#include "delivery_mx.h"
#include "delivery_transport.h"
#include "smtp_client.h"
#include "buf.h"
#include "domains.h"
#include "error.h"
#include "log.h"

#include "delivery.pb-c.h"

#include <ctype.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PKG "delivery"
/* How often a running job tells JetStream it is still in progress. */
#define DELIVERY_PROGRESS_EVERY_MS 5000
#define DELIVERY_FETCH_WAIT_MS 1000
/* A destination at its concurrency limit: the job comes back this much later. */
#define DELIVERY_BUSY_RETRY_MS 5000

struct job_run {
	struct delivery_ctx *ctx;
	struct mf_bus_jsmsg *msg;
	int64_t last_progress;
	struct delivery_conncache *cache;  /* the worker thread's idle connections */
};

/* For the idle times of kept connections: never jumps with the clock. */
static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void progress(void *arg)
{
	struct job_run *run = arg;
	int64_t now = now_ms();
	const char *error;

	if (now - run->last_progress < DELIVERY_PROGRESS_EVERY_MS)
		return;
	run->last_progress = now;
	if (mf_bus_jsmsg_in_progress(run->msg, &error) < 0)
		mf_log_debug(PKG, NULL, "in-progress failed", "err=%s", error);
}

static char *domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	char *d = mf_xstrdup(at != NULL ? at + 1 : "");
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Recipients in our own domains go to their account in the store. */
static void deliver_own_domains(struct delivery_ctx *ctx, const Mailfleet__V1__DeliveryJob *job,
				struct smtp_client_rcpt *rcpts, size_t n)
{
	struct mf_domains *d = mf_domains_current();
	size_t *idx = mf_xcalloc(n + 1, sizeof(*idx));
	const char **addrs = mf_xcalloc(n + 1, sizeof(*addrs));
	char **accounts = mf_xcalloc(n + 1, sizeof(*accounts));

	if (d == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct mf_domains_dest dest;
		const char *error;
		char *dom = domain_of(rcpts[i].address);
		bool ours = mf_domains_find_domain(d, dom) != NULL;
		free(dom);
		if (!ours || rcpts[i].done)
			continue;
		if (mf_domains_resolve_address(d, rcpts[i].address, &dest, &error) < 0) {
			smtp_client_rcpt_set(&rcpts[i], false, true, 550, "5.1.3", error);
			continue;
		}
		if (dest.kind == MF_DOMAINS_DEST_NONE) {
			smtp_client_rcpt_set(&rcpts[i], false, true, 550, "5.1.1", "no such user");
			continue;
		}
		if (dest.kind == MF_DOMAINS_DEST_ALIAS) {
			smtp_client_rcpt_set(&rcpts[i], false, false, 451, "4.3.0",
					     "delivering queued mail to an alias is not "
					     "implemented yet");
			continue;
		}
		accounts[i] = mf_xstrdup(dest.account->name);
	}
	/* One store request per account. */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		struct delivery_store_msg m;
		if (accounts[i] == NULL || rcpts[i].done)
			continue;
		for (size_t j = i; j < n; j++) {
			if (accounts[j] != NULL && !rcpts[j].done &&
			    strcmp(accounts[j], accounts[i]) == 0) {
				idx[k] = j;
				addrs[k] = rcpts[j].address;
				k++;
			}
		}
		m = (struct delivery_store_msg){
			.account = accounts[i], .blob_key = job->blob_key,
			.message_id = job->message_id, .mail_from = job->mail_from, .cid = job->cid,
			.requiretls = job->requiretls, .smtputf8 = job->smtputf8,
		};
		delivery_local_store(ctx->bus, &m, rcpts, idx, addrs, k);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(accounts[i]);
	free(accounts);
	free(idx);
	free(addrs);
	mf_domains_unref(&d);
}

/* The embedded default: back to the sender's account, or a simulation. */
static void deliver_local_transport(struct delivery_ctx *ctx,
				    const Mailfleet__V1__DeliveryJob *job,
				    struct smtp_client_rcpt *rcpts, size_t n)
{
	size_t *idx = mf_xcalloc(n + 1, sizeof(*idx));
	const char **addrs = mf_xcalloc(n + 1, sizeof(*addrs));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned code = 0;
		const char *enh = NULL;
		char *t;
		if (rcpts[i].done)
			continue;
		switch (delivery_local_simulation(rcpts[i].address, &code, &enh)) {
		case DELIVERY_SIM_RESULT:
			if (code / 100 == 2)
				break;  /* a success: delivered like any other */
			t = mf_xasprintf("simulated error for %s (embedded default)",
					 rcpts[i].address);
			smtp_client_rcpt_set(&rcpts[i], false, code / 100 == 5, code, enh, t);
			free(t);
			continue;
		case DELIVERY_SIM_TIMEOUT:
			usleep(DELIVERY_SIMULATED_TIMEOUT_MS * 1000);
			smtp_client_rcpt_set(&rcpts[i], false, false, 0, "",
					     "timeout (simulated, embedded default)");
			continue;
		case DELIVERY_SIM_NONE:
			break;
		}
		idx[k] = i;
		addrs[k] = *job->mail_from != '\0' ? job->mail_from : rcpts[i].address;
		k++;
	}
	if (k > 0) {
		struct delivery_store_msg m = {
			.account = job->account, .blob_key = job->blob_key,
			.message_id = job->message_id, .mail_from = job->mail_from, .cid = job->cid,
			.requiretls = job->requiretls, .smtputf8 = job->smtputf8,
		};
		if (*job->account == '\0') {
			for (size_t i = 0; i < k; i++)
				smtp_client_rcpt_set(&rcpts[idx[i]], false, true, 550, "5.0.0",
						     "local delivery needs the sending account");
		} else {
			/* One copy for the sender, whatever the number of
			 * recipients: the first gets the store's answer, the
			 * others share it. */
			delivery_local_store(ctx->bus, &m, rcpts, idx, addrs, 1);
			for (size_t i = 1; i < k; i++)
				smtp_client_rcpt_set(&rcpts[idx[i]], rcpts[idx[0]].delivered,
						     rcpts[idx[0]].permanent, rcpts[idx[0]].code,
						     rcpts[idx[0]].enhanced, rcpts[idx[0]].text);
		}
	}
	free(idx);
	free(addrs);
}

/* One connection to ip (host is the name, for logs, SNI and DSNs); tmpl
 * carries a transport's settings (TLS, AUTH, SOCKS5), NULL for plain
 * direct delivery.  Returns 0 when the server decided something, -1 when
 * it could not be used (error_r), 1 when the host is at its concurrency
 * limit. */
static int deliver_host(struct delivery_ctx *ctx, struct job_run *run,
			const Mailfleet__V1__DeliveryJob *job, const char *host, const char *ip,
			unsigned port, const struct smtp_client_params *tmpl,
			struct smtp_client_rcpt *rcpts, size_t n, struct smtp_client_info *info,
			const char **error_r)
{
	struct smtp_client_params p;
	struct smtp_client_session *session = NULL;
	char dest[DELIVERY_MX_NAME_MAX + 16];
	char *key = NULL;
	bool counted = false;
	int fd = -1, ret = -1;

	snprintf(dest, sizeof(dest), "%s:%u", host, port);
	if (!delivery_limit_take(ctx->redis, dest, DELIVERY_LIMIT_PER_HOST, &counted))
		return 1;
	if (mf_blob_open(ctx->blobs, job->blob_key, &fd, error_r) != 1) {
		char *txt = mf_xasprintf("message blob %s unreadable", job->blob_key);
		for (size_t i = 0; i < n; i++)
			if (!rcpts[i].done)
				smtp_client_rcpt_set(&rcpts[i], false, false, 0, "", txt);
		free(txt);
		ret = 0;
		goto out;
	}
	if (tmpl != NULL)
		p = *tmpl;
	else
		memset(&p, 0, sizeof(p));
	p.host = host;
	p.ip = ip;
	p.port = port;
	p.ehlo_name = ctx->hostname;
	p.mail_from = job->mail_from;
	p.smtputf8 = job->smtputf8;
	p.has_8bit = job->has_8bit;
	p.requiretls = job->requiretls;
	p.size = job->size;
	p.msg_fd = fd;
	if (p.tls == NULL)
		p.tls = ctx->tls;
	p.timeout_ms = ctx->smtp_timeout_ms;
	p.cid = job->cid;
	p.progress = progress;
	p.progress_ctx = run;
	/* A connection kept from an earlier message to the same destination
	 * saves the connect, TLS and EHLO (and AUTH) of a new one. */
	key = delivery_conncache_key(&p);
	session = delivery_conncache_take(run->cache, key, mono_ms());
	ret = smtp_client_deliver_reuse(&p, &session, rcpts, n, info, error_r);
	if (session != NULL)
		delivery_conncache_put(run->cache, key, session, mono_ms());
	delivery_conncache_key_free(&key);
	if (ret < 0)
		mf_log_info(PKG, job->cid, "host not usable", "host=%s ip=%s err=%s", host, ip,
			    *error_r);
out:
	if (fd >= 0)
		close(fd);
	if (counted)
		delivery_limit_release(ctx->redis, dest);
	return ret;
}

static void set_undecided(struct smtp_client_rcpt *rcpts, size_t n, bool perm, unsigned code,
			  const char *enhanced, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (!rcpts[i].done)
			smtp_client_rcpt_set(&rcpts[i], false, perm, code, enhanced, text);
}

/* Relay (smtp, submission, submissions): the configured host, each of its
 * addresses until one answers.  Returns 0, or 1 when it is at its
 * concurrency limit. */
static int deliver_relay(struct delivery_ctx *ctx, struct job_run *run,
			 const Mailfleet__V1__DeliveryJob *job, const struct delivery_transport *t,
			 const struct smtp_client_params *tmpl, struct smtp_client_rcpt *rcpts,
			 size_t n, struct smtp_client_info *info)
{
	char addrs[DELIVERY_MX_ADDRS_MAX][64];
	const char *error = "no answer";
	char *last = NULL;
	size_t na = delivery_transport_addresses(ctx->bus, t->conf->addr.host, job->cid, addrs,
						 DELIVERY_MX_ADDRS_MAX, &error);
	int r = -1;

	if (na == 0)
		last = mf_xasprintf("transport %s: %s", t->name, error);
	for (size_t a = 0; a < na; a++) {
		r = deliver_host(ctx, run, job, t->conf->addr.host, addrs[a], t->conf->addr.port,
				 tmpl, rcpts, n, info, &error);
		if (r == 1) {
			free(last);
			return 1;
		}
		if (r == 0)
			break;
		free(last);
		last = mf_xasprintf("transport %s: %s (%s): %s", t->name, t->conf->addr.host,
				    addrs[a], error);
	}
	set_undecided(rcpts, n, false, 0, "", r < 0 && last != NULL ? last :
		      "no answer for this recipient (connection lost)");
	free(last);
	return 0;
}

/* Direct: MX hosts by preference, each host's addresses IPv6 first, until
 * every recipient has an answer (RFC 5321 5.1).  Returns 0, or 1 when the
 * hosts were all at their concurrency limit. */
static int deliver_direct(struct delivery_ctx *ctx, struct job_run *run,
			  const Mailfleet__V1__DeliveryJob *job,
			  const struct smtp_client_params *tmpl, struct smtp_client_rcpt *rcpts,
			  size_t n, struct smtp_client_info *info, const char **host_r)
{
	static __thread struct delivery_mx mx;
	char addrs[DELIVERY_MX_ADDRS_MAX][64];
	const char *error = NULL;
	char *last = NULL;
	bool tried = false, busy = false;

	*host_r = "";
	switch (delivery_mx_lookup(ctx->bus, job->recipient_domain, job->cid, &mx)) {
	case DELIVERY_MX_PERMANENT:
		set_undecided(rcpts, n, true, mx.code, mx.enhanced, mx.text);
		return 0;
	case DELIVERY_MX_TEMPORARY:
		set_undecided(rcpts, n, false, mx.code, mx.enhanced, mx.text);
		return 0;
	case DELIVERY_MX_OK:
		break;
	}
	for (size_t h = 0; h < mx.nhosts; h++) {
		size_t na = delivery_mx_addresses(ctx->bus, mx.hosts[h], job->cid, addrs,
						  DELIVERY_MX_ADDRS_MAX, &error);
		if (na == 0) {
			free(last);
			last = mf_xstrdup(error != NULL ? error : "no address");
			continue;
		}
		for (size_t a = 0; a < na; a++) {
			int r = deliver_host(ctx, run, job, mx.hosts[h], addrs[a], ctx->smtp_port,
					     tmpl, rcpts, n, info, &error);
			if (r == 1) {
				busy = true;
				break;  /* the host is busy: try the next one */
			}
			tried = true;
			*host_r = mx.hosts[h];
			if (r == 0)
				goto decided;
			free(last);
			last = mf_xasprintf("%s (%s): %s", mx.hosts[h], addrs[a], error);
		}
	}
	if (busy && !tried) {
		free(last);
		return 1;
	}
decided:
	set_undecided(rcpts, n, false, 0, "", last != NULL ? last :
		      "no answer for this recipient (connection lost)");
	free(last);
	return 0;
}

/* Sends the results and waits until the queue committed them.  Returns 0
 * or -1. */
static int report(struct delivery_ctx *ctx, const Mailfleet__V1__DeliveryJob *job,
		  struct smtp_client_rcpt *rcpts, size_t n, const struct smtp_client_info *info,
		  const char *host, uint64_t duration_ms)
{
	Mailfleet__V1__DeliveryResult res = MAILFLEET__V1__DELIVERY_RESULT__INIT;
	Mailfleet__V1__RecipientResult *rr = mf_xcalloc(n + 1, sizeof(*rr));
	Mailfleet__V1__RecipientResult **rrp = mf_xcalloc(n + 1, sizeof(*rrp));
	size_t len;
	uint8_t *buf;
	int ret = -1;

	res.base_id = job->base_id;
	res.lease = job->lease;
	res.worker = ctx->worker_name;
	for (size_t i = 0; i < n; i++) {
		mailfleet__v1__recipient_result__init(&rr[i]);
		rr[i].id = job->recipients[i]->id;
		rr[i].address = job->recipients[i]->address;
		rr[i].delivered = rcpts[i].delivered;
		rr[i].permanent = rcpts[i].permanent;
		rr[i].code = rcpts[i].code;
		rr[i].enhanced_code = rcpts[i].enhanced;
		rr[i].text = rcpts[i].text != NULL ? rcpts[i].text : "";
		rr[i].host = (char *)host;
		rr[i].tls_version = (char *)info->tls_version;
		rr[i].tls_cipher = (char *)info->tls_cipher;
		rr[i].duration_ms = duration_ms;
		rrp[i] = &rr[i];
		if (rcpts[i].delivered)
			ctx->delivered_total++;
		else if (rcpts[i].permanent)
			ctx->failed_total++;
		else
			ctx->deferred_total++;
		mf_log_info(PKG, job->cid, rcpts[i].delivered ? "delivered" : "not delivered",
			    "base=%lld rcpt=%s code=%u enhanced=%s host=%s tls=%s text=%s",
			    (long long)job->base_id, rcpts[i].address, rcpts[i].code,
			    rcpts[i].enhanced, host, info->tls_version,
			    rcpts[i].text != NULL ? rcpts[i].text : "");
	}
	res.results = rrp;
	res.n_results = n;
	len = mailfleet__v1__delivery_result__get_packed_size(&res);
	buf = mf_xmalloc(len > 0 ? len : 1);
	mailfleet__v1__delivery_result__pack(&res, buf);
	for (int tries = 0; tries < DELIVERY_RESULT_TRIES && !ctx->stopping; tries++) {
		struct mf_bus_reply reply;
		int r = mf_bus_request(ctx->bus, "delivery.v1.result", job->cid, buf, len,
				       DELIVERY_RESULT_TIMEOUT_MS, &reply);
		if (r == 0) {
			mf_bus_reply_free(&reply);
			ret = 0;
			break;
		}
		mf_log_warn(PKG, job->cid, "reporting results failed", "status=%s err=%s",
			    mf_bus_status_name(reply.status), reply.message);
		if (reply.status == MF_BUS_PERMANENT) {
			mf_bus_reply_free(&reply);
			break;
		}
		mf_bus_reply_free(&reply);
		sleep(1);
	}
	free(buf);
	free(rr);
	free(rrp);
	return ret;
}

static void run_job(struct delivery_ctx *ctx, struct delivery_conncache *cache,
		    struct mf_bus_jsmsg *msg)
{
	struct job_run run = { .ctx = ctx, .msg = msg, .last_progress = now_ms(),
			       .cache = cache };
	Mailfleet__V1__DeliveryJob *job;
	struct smtp_client_rcpt *rcpts = NULL;
	struct smtp_client_info info;
	struct delivery_transport t;
	struct delivery_transport_setup setup;
	struct smtp_client_params tmpl;
	struct mf_domains *domains = NULL;
	const char *error, *host = "";
	const uint8_t *data;
	size_t len, n, pending = 0;
	int64_t start = now_ms();
	char *from_domain = NULL;

	memset(&info, 0, sizeof(info));
	memset(&setup, 0, sizeof(setup));
	memset(&tmpl, 0, sizeof(tmpl));
	data = mf_bus_jsmsg_data(msg, &len);
	job = mailfleet__v1__delivery_job__unpack(NULL, len, data);
	if (job == NULL || job->n_recipients == 0 || job->n_recipients > DELIVERY_JOB_RCPTS_MAX) {
		mf_log_error(PKG, NULL, "malformed job dropped", "seq=%llu",
			     (unsigned long long)mf_bus_jsmsg_seq(msg));
		(void)mf_bus_jsmsg_term(msg, &error);
		goto out;
	}
	ctx->jobs_total++;
	if (job->lease_until_unix_ms < start) {
		/* The queue has given up on this dispatch and will send (or has
		 * sent) the rows again with a new lease. */
		mf_log_info(PKG, job->cid, "stale job dropped", "base=%lld",
			    (long long)job->base_id);
		(void)mf_bus_jsmsg_term(msg, &error);
		goto out;
	}
	n = job->n_recipients;
	mf_log_info(PKG, job->cid, "delivering", "base=%lld attempt=%u rcpts=%zu rcpt=%s",
		    (long long)job->base_id, job->attempt, n, job->recipients[0]->address);
	rcpts = mf_xcalloc(n, sizeof(*rcpts));
	for (size_t i = 0; i < n; i++)
		rcpts[i].address = job->recipients[i]->address;

	deliver_own_domains(ctx, job, rcpts, n);

	from_domain = domain_of(job->mail_from);
	/* Routes are evaluated for each attempt against the current
	 * domains.conf; the snapshot stays referenced while t points into it. */
	domains = mf_domains_current();
	for (size_t i = 0; i < n; i++)
		pending += !rcpts[i].done;
	if (pending == 0) {
		/* Every recipient was one of ours. */
	} else if (delivery_transport_select(domains, job->transport, job->account, from_domain,
					     job->recipient_domain, job->attempt,
					     ctx->local_delivery, &t, &error) < 0) {
		set_undecided(rcpts, n, false, 0, "", error);
	} else if (t.kind == DELIVERY_TRANSPORT_LOCAL) {
		deliver_local_transport(ctx, job, rcpts, n);
	} else if (t.kind == DELIVERY_TRANSPORT_DIRECT) {
		if (deliver_direct(ctx, &run, job, NULL, rcpts, n, &info, &host) == 1)
			goto busy;
	} else if (delivery_transport_setup(ctx->bus, &t, job->cid, &setup, &tmpl, &error) < 0) {
		char *txt = mf_xasprintf("transport %s: %s", t.name, error);
		set_undecided(rcpts, n, false, 0, "", txt);
		free(txt);
	} else if (t.kind == DELIVERY_TRANSPORT_SOCKS5) {
		mf_log_debug(PKG, job->cid, "direct delivery through a SOCKS5 proxy",
			     "transport=%s proxy=%s", t.name, setup.socks5_ip);
		if (deliver_direct(ctx, &run, job, &tmpl, rcpts, n, &info, &host) == 1)
			goto busy;
	} else {
		host = t.conf->addr.host;
		if (deliver_relay(ctx, &run, job, &t, &tmpl, rcpts, n, &info) == 1)
			goto busy;
	}

	if (report(ctx, job, rcpts, n, &info, host, (uint64_t)(now_ms() - start)) == 0) {
		if (mf_bus_jsmsg_ack(msg, &error) < 0)
			mf_log_warn(PKG, job->cid, "ack failed", "err=%s", error);
	} else {
		/* The queue did not take the results: its lease will send the
		 * rows again; this job is done either way. */
		(void)mf_bus_jsmsg_term(msg, &error);
	}
	goto out;
busy:
	mf_log_info(PKG, job->cid, "destination busy, job postponed", "base=%lld",
		    (long long)job->base_id);
	(void)mf_bus_jsmsg_nak(msg, DELIVERY_BUSY_RETRY_MS, &error);
out:
	delivery_transport_setup_clear(&setup);
	mf_domains_unref(&domains);
	if (rcpts != NULL)
		smtp_client_rcpts_clear(rcpts, job->n_recipients);
	free(rcpts);
	free(from_domain);
	if (job != NULL)
		mailfleet__v1__delivery_job__free_unpacked(job, NULL);
}

static void *worker_thread(void *arg)
{
	struct delivery_ctx *ctx = arg;
	struct mf_bus_consumer *consumer = NULL;
	struct delivery_conncache cache;
	const char *error;
	struct mf_bus_consumer_config cc = {
		.stream = "DELIVERY", .durable = DELIVERY_CONSUMER,
		.filter_subject = "delivery.v1.job", .ack_wait_ms = ctx->ack_wait_ms,
	};

	memset(&cache, 0, sizeof(cache));
	while (!ctx->stopping) {
		struct mf_bus_jsmsg *msgs[1];
		size_t count = 0;

		/* Between jobs (at least once per fetch wait): end connections
		 * idle for too long. */
		delivery_conncache_expire(&cache, mono_ms());

		if (consumer == NULL) {
			if (!mf_bus_connected(ctx->bus) ||
			    mf_bus_js_consumer_open(ctx->bus, &cc, 2000, &consumer, &error) < 0) {
				if (mf_bus_connected(ctx->bus))
					mf_log_debug(PKG, NULL, "job consumer not ready", "err=%s", error);
				sleep(1);
				continue;
			}
		}
		if (mf_bus_js_fetch(consumer, msgs, 1, DELIVERY_FETCH_WAIT_MS, &count, &error) < 0) {
			mf_log_debug(PKG, NULL, "fetch failed", "err=%s", error);
			usleep(200 * 1000);
			continue;
		}
		for (size_t i = 0; i < count; i++) {
			run_job(ctx, &cache, msgs[i]);
			mf_bus_jsmsg_free(&msgs[i]);
		}
	}
	delivery_conncache_clear(&cache);
	mf_bus_js_consumer_free(&consumer);
	return NULL;
}

int delivery_workers_start(struct delivery_ctx *ctx, const char **error_r)
{
	for (unsigned i = 0; i < ctx->nthreads && i < DELIVERY_THREADS_MAX; i++) {
		int r = pthread_create(&ctx->threads[i], NULL, worker_thread, ctx);
		if (r != 0) {
			*error_r = mf_errorf("delivery: starting worker: %s", strerror(r));
			return -1;
		}
		ctx->started++;
	}
	return 0;
}

void delivery_workers_stop(struct delivery_ctx *ctx)
{
	ctx->stopping = true;
	for (unsigned i = 0; i < ctx->started; i++)
		pthread_join(ctx->threads[i], NULL);
	ctx->started = 0;
}
