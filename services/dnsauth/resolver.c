#include "resolver.h"

#include "buf.h"
#include "error.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unbound.h>

/* One record of the memory backend. */
struct mem_rr {
	char *name;       /* lower-case, no trailing dot */
	uint16_t type;    /* 0 with timeout: the whole name */
	bool timeout;
	struct dns_record rec;
};

/* A lookup waiting for libunbound's callback.  Owned by the waiter until it
 * gives up; then the callback frees it (abandoned). */
struct ub_query {
	pthread_cond_t cond;
	bool done;
	bool abandoned;
	int err;
	struct ub_result *result;
};

struct dns_resolver {
	bool memory;
	bool none;        /* DNS_RESOLVER_NONE: no libunbound context */
	_Atomic uint64_t lookups;

	/* memory */
	struct mem_rr *rrs;
	size_t rr_count, rr_cap;
	bool authentic;

	/* unbound */
	struct ub_ctx *ctx;
	unsigned timeout_ms;
	pthread_t pump;
	bool pump_started;
	_Atomic bool stopping;
	pthread_mutex_t lock;  /* guards every struct ub_query */
};

/* --- names and addresses --- */

const char *dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_STATUS_OK: return "ok";
	case DNS_STATUS_NODATA: return "nodata";
	case DNS_STATUS_NXDOMAIN: return "nxdomain";
	case DNS_STATUS_TEMPFAIL: return "tempfail";
	}
	return "unknown";
}

static const struct {
	uint16_t type;
	const char *name;
} type_names[] = {
	{ DNS_TYPE_A, "A" }, { DNS_TYPE_NS, "NS" }, { DNS_TYPE_CNAME, "CNAME" },
	{ DNS_TYPE_PTR, "PTR" }, { DNS_TYPE_MX, "MX" }, { DNS_TYPE_TXT, "TXT" },
	{ DNS_TYPE_AAAA, "AAAA" }, { DNS_TYPE_TLSA, "TLSA" },
};

const char *dns_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return NULL;
}

uint16_t dns_type_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcasecmp(type_names[i].name, name) == 0)
			return type_names[i].type;
	return 0;
}

int dns_ip_parse(const char *s, struct dns_ip *ip_r)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(ip_r, 0, sizeof(*ip_r));
	if (inet_pton(AF_INET, s, ip_r->addr) == 1) {
		ip_r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip_r->addr) != 1)
		return -1;
	ip_r->family = AF_INET6;
	if (memcmp(ip_r->addr, mapped, sizeof(mapped)) == 0) {
		memmove(ip_r->addr, ip_r->addr + 12, 4);
		memset(ip_r->addr + 4, 0, 12);
		ip_r->family = AF_INET;
	}
	return 0;
}

const char *dns_ip_format(const struct dns_ip *ip, char *buf, size_t size)
{
	if (inet_ntop(ip->family, ip->addr, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

bool dns_ip_equal(const struct dns_ip *a, const struct dns_ip *b)
{
	return a->family == b->family &&
	       memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

bool dns_ip_prefix_match(const struct dns_ip *a, const struct dns_ip *b, unsigned bits)
{
	unsigned max = a->family == AF_INET ? 32 : 128;

	if (a->family != b->family)
		return false;
	if (bits > max)
		bits = max;
	if (memcmp(a->addr, b->addr, bits / 8) != 0)
		return false;
	if (bits % 8 != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));
		if ((a->addr[bits / 8] & mask) != (b->addr[bits / 8] & mask))
			return false;
	}
	return true;
}

const char *dns_ip_reverse(const struct dns_ip *ip, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (ip->family == AF_INET) {
		snprintf(buf, size, "%u.%u.%u.%u", ip->addr[3], ip->addr[2], ip->addr[1],
			 ip->addr[0]);
		return buf;
	}
	for (int i = 15; i >= 0 && n + 4 < size; i--) {
		buf[n++] = hex[ip->addr[i] & 0xf];
		buf[n++] = '.';
		buf[n++] = hex[ip->addr[i] >> 4];
		buf[n++] = i == 0 ? '\0' : '.';
	}
	if (size > 0)
		buf[n < size ? n : size - 1] = '\0';
	return buf;
}

int dns_name_check(const char *name, const char **error_r)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX) {
		*error_r = "name must be 1-253 octets";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0) {
				*error_r = "empty label";
				return -1;
			}
			if (label > DNS_LABEL_MAX) {
				*error_r = "label longer than 63 octets";
				return -1;
			}
			label = 0;
		} else {
			label++;
		}
	}
	return 0;
}

/* Lower-case copy without the trailing dot. */
static char *name_key(const char *name)
{
	size_t len = strlen(name);
	char *k;

	if (len > 0 && name[len - 1] == '.')
		len--;
	k = mf_xstrndup(name, len);
	for (char *p = k; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return k;
}

/* --- answers --- */

static struct dns_answer *answer_new(enum dns_status status)
{
	struct dns_answer *a = mf_xcalloc(1, sizeof(*a));

	a->status = status;
	return a;
}

static struct dns_answer *answer_tempfail(const char *why)
{
	struct dns_answer *a = answer_new(DNS_STATUS_TEMPFAIL);

	a->error = mf_xstrdup(why);
	return a;
}

static void record_copy(struct dns_record *dst, const struct dns_record *src)
{
	*dst = *src;
	dst->name = src->name != NULL ? mf_xstrdup(src->name) : NULL;
	if (src->data != NULL) {
		dst->data = mf_xmalloc(src->data_len + 1);
		memcpy(dst->data, src->data, src->data_len);
		dst->data[src->data_len] = '\0';
	}
}

void dns_record_clear(struct dns_record *rec)
{
	free(rec->name);
	free(rec->data);
	rec->name = NULL;
	rec->data = NULL;
}

static void answer_add(struct dns_answer *a, const struct dns_record *rec)
{
	if (a->count == DNS_RECORDS_MAX)
		return;
	a->records = mf_xrealloc(a->records, (a->count + 1) * sizeof(*a->records));
	record_copy(&a->records[a->count++], rec);
}

void dns_answer_free(struct dns_answer **answer)
{
	struct dns_answer *a = *answer;

	if (a == NULL)
		return;
	for (size_t i = 0; i < a->count; i++)
		dns_record_clear(&a->records[i]);
	free(a->records);
	free(a->canonname);
	free(a->error);
	free(a);
	*answer = NULL;
}

/* --- memory backend --- */

struct dns_resolver *dns_resolver_create_memory(void)
{
	struct dns_resolver *r = mf_xcalloc(1, sizeof(*r));

	r->memory = true;
	return r;
}

static struct mem_rr *mem_push(struct dns_resolver *r, const char *name, uint16_t type)
{
	struct mem_rr *rr;

	if (r->rr_count == r->rr_cap) {
		r->rr_cap = r->rr_cap == 0 ? 16 : r->rr_cap * 2;
		r->rrs = mf_xrealloc(r->rrs, r->rr_cap * sizeof(*r->rrs));
	}
	rr = &r->rrs[r->rr_count++];
	memset(rr, 0, sizeof(*rr));
	rr->name = name_key(name);
	rr->type = type;
	rr->rec.type = type;
	rr->rec.ttl = 300;
	return rr;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dns_memory_add(struct dns_resolver *r, const char *name, uint16_t type,
		   const char *value, const char **error_r)
{
	struct dns_record rec;
	unsigned a, b, c;
	int consumed = 0;

	memset(&rec, 0, sizeof(rec));
	switch (type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (dns_ip_parse(value, &rec.ip) < 0 ||
		    (rec.ip.family == AF_INET) != (type == DNS_TYPE_A)) {
			*error_r = mf_errorf("bad %s value %s", dns_type_name(type), value);
			return -1;
		}
		break;
	case DNS_TYPE_MX:
		if (sscanf(value, "%u %n", &a, &consumed) != 1 || a > 65535 || consumed == 0) {
			*error_r = mf_errorf("bad MX value %s", value);
			return -1;
		}
		rec.preference = (uint16_t)a;
		rec.name = name_key(value + consumed);
		if (rec.name[0] == '\0') {
			free(rec.name);
			rec.name = mf_xstrdup(".");
		}
		break;
	case DNS_TYPE_PTR:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_NS:
		rec.name = name_key(value);
		break;
	case DNS_TYPE_TXT: {
		size_t len = strlen(value);
		dns_memory_add_txt(r, name, &value, &len, 1);
		return 0;
	}
	case DNS_TYPE_TLSA: {
		const char *hex;
		size_t n;

		if (sscanf(value, "%u %u %u %n", &a, &b, &c, &consumed) != 3 || a > 255 ||
		    b > 255 || c > 255 || consumed == 0) {
			*error_r = mf_errorf("bad TLSA value %s", value);
			return -1;
		}
		hex = value + consumed;
		n = strlen(hex);
		if (n % 2 != 0) {
			*error_r = "bad TLSA data";
			return -1;
		}
		rec.data = mf_xmalloc(n / 2 + 1);
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				free(rec.data);
				*error_r = "bad TLSA data";
				return -1;
			}
			rec.data[i] = (uint8_t)(hi << 4 | lo);
		}
		rec.data_len = n / 2;
		rec.tlsa_usage = (uint8_t)a;
		rec.tlsa_selector = (uint8_t)b;
		rec.tlsa_mtype = (uint8_t)c;
		break;
	}
	default:
		*error_r = mf_errorf("record type %u not supported", type);
		return -1;
	}
	struct mem_rr *rr = mem_push(r, name, type);
	rec.type = type;
	rec.ttl = 300;
	rr->rec = rec;
	return 0;
}

void dns_memory_add_txt(struct dns_resolver *r, const char *name,
			const char *const *strings, const size_t *lens, size_t n)
{
	struct mem_rr *rr = mem_push(r, name, DNS_TYPE_TXT);
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += lens[i];
	rr->rec.data = mf_xmalloc(total + 1);
	for (size_t i = 0; i < n; i++) {
		memcpy(rr->rec.data + rr->rec.data_len, strings[i], lens[i]);
		rr->rec.data_len += lens[i];
	}
	rr->rec.data[total] = '\0';
}

void dns_memory_add_timeout(struct dns_resolver *r, const char *name, uint16_t type)
{
	mem_push(r, name, type)->timeout = true;
}

void dns_memory_add_name(struct dns_resolver *r, const char *name)
{
	/* A record of type 0 that no lookup returns: the name exists. */
	mem_push(r, name, 0);
}

void dns_memory_set_authentic(struct dns_resolver *r, bool authentic)
{
	r->authentic = authentic;
}

static struct dns_answer *memory_lookup(struct dns_resolver *r, const char *name, uint16_t type)
{
	char *key = name_key(name);
	struct dns_answer *a = NULL;

	for (unsigned depth = 0; depth <= DNS_CNAME_DEPTH_MAX; depth++) {
		bool exists = false, timeout_any = false, timeout_type = false;
		const struct mem_rr *cname = NULL;
		size_t found = 0;

		for (size_t i = 0; i < r->rr_count; i++) {
			const struct mem_rr *rr = &r->rrs[i];
			if (strcmp(rr->name, key) != 0)
				continue;
			exists = true;
			if (rr->timeout) {
				if (rr->type == 0)
					timeout_any = true;
				else if (rr->type == type)
					timeout_type = true;
				continue;
			}
			if (rr->type == type && type != 0)
				found++;
			else if (rr->type == DNS_TYPE_CNAME && cname == NULL)
				cname = rr;
		}
		if (timeout_type || (timeout_any && found == 0)) {
			a = answer_tempfail("timeout");
			break;
		}
		if (found > 0) {
			a = answer_new(DNS_STATUS_OK);
			for (size_t i = 0; i < r->rr_count; i++) {
				const struct mem_rr *rr = &r->rrs[i];
				if (!rr->timeout && rr->type == type && strcmp(rr->name, key) == 0)
					answer_add(a, &rr->rec);
			}
			if (depth > 0)
				a->canonname = mf_xstrdup(key);
			break;
		}
		if (cname != NULL) {
			free(key);
			key = mf_xstrdup(cname->rec.name);
			continue;
		}
		a = answer_new(exists ? DNS_STATUS_NODATA : DNS_STATUS_NXDOMAIN);
		if (depth > 0)
			a->canonname = mf_xstrdup(key);
		break;
	}
	if (a == NULL)
		a = answer_tempfail("CNAME chain too long");
	if (a->status != DNS_STATUS_TEMPFAIL)
		a->authentic = r->authentic;
	free(key);
	return a;
}

/* --- libunbound backend --- */

/* Reads a wire-format name at data[*pos] (uncompressed, as libunbound gives
 * rdata) into presentation form.  Returns NULL when malformed. */
static char *wire_name(const uint8_t *data, size_t len, size_t *pos)
{
	struct mf_buf b;
	size_t p = *pos;

	mf_buf_init(&b, 4 * (DNS_NAME_MAX + 1));
	for (;;) {
		if (p >= len)
			goto bad;
		uint8_t l = data[p++];
		if (l == 0)
			break;
		if (l > DNS_LABEL_MAX || p + l > len)
			goto bad;
		if (b.len > 0 && mf_buf_append(&b, ".", 1) < 0)
			goto bad;
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = data[p + i];
			int ret;
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_')
				ret = mf_buf_append(&b, &c, 1);
			else
				ret = mf_buf_appendf(&b, "\\%03u", c);
			if (ret < 0)
				goto bad;
		}
		p += l;
	}
	*pos = p;
	if (b.len == 0)
		mf_buf_append(&b, ".", 1);  /* the root, e.g. a null MX */
	return mf_buf_steal(&b);
bad:
	mf_buf_free(&b);
	return NULL;
}

int dns_record_decode(uint16_t type, const uint8_t *d, size_t len, struct dns_record *rec)
{
	size_t pos = 0;

	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	switch (type) {
	case DNS_TYPE_A:
		if (len != 4)
			return -1;
		rec->ip.family = AF_INET;
		memcpy(rec->ip.addr, d, 4);
		return 0;
	case DNS_TYPE_AAAA:
		if (len != 16)
			return -1;
		rec->ip.family = AF_INET6;
		memcpy(rec->ip.addr, d, 16);
		return 0;
	case DNS_TYPE_MX:
		if (len < 3)
			return -1;
		rec->preference = (uint16_t)(d[0] << 8 | d[1]);
		pos = 2;
		/* fall through */
	case DNS_TYPE_PTR:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_NS:
		rec->name = wire_name(d, len, &pos);
		return rec->name == NULL || pos != len ? -1 : 0;
	case DNS_TYPE_TXT:
		rec->data = mf_xmalloc(len + 1);
		while (pos < len) {
			uint8_t l = d[pos++];
			if (pos + l > len)
				return -1;
			memcpy(rec->data + rec->data_len, d + pos, l);
			rec->data_len += l;
			pos += l;
		}
		rec->data[rec->data_len] = '\0';
		return 0;
	case DNS_TYPE_TLSA:
		if (len < 3)
			return -1;
		rec->tlsa_usage = d[0];
		rec->tlsa_selector = d[1];
		rec->tlsa_mtype = d[2];
		rec->data_len = len - 3;
		rec->data = mf_xmalloc(len - 3 + 1);
		memcpy(rec->data, d + 3, len - 3);
		rec->data[len - 3] = '\0';
		return 0;
	default:
		rec->data_len = len;
		rec->data = mf_xmalloc(len + 1);
		memcpy(rec->data, d, len);
		rec->data[len] = '\0';
		return 0;
	}
}

/* The callback needs the resolver's lock; it gets it through this pair. */
struct ub_cb_arg {
	struct dns_resolver *r;
	struct ub_query *q;
};

static void ub_done(void *arg, int err, struct ub_result *result)
{
	struct ub_cb_arg *cb = arg;
	struct dns_resolver *r = cb->r;
	struct ub_query *q = cb->q;

	pthread_mutex_lock(&r->lock);
	if (q->abandoned) {
		pthread_mutex_unlock(&r->lock);
		ub_resolve_free(result);
		pthread_cond_destroy(&q->cond);
		free(q);
		free(cb);
		return;
	}
	q->err = err;
	q->result = result;
	q->done = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&r->lock);
	free(cb);
}

/* Runs libunbound's callbacks as answers arrive. */
static void *pump_main(void *arg)
{
	struct dns_resolver *r = arg;
	struct pollfd pfd = { .fd = ub_fd(r->ctx), .events = POLLIN };

	while (!r->stopping) {
		int n = poll(&pfd, 1, 200);
		if (n > 0 || ub_poll(r->ctx))
			ub_process(r->ctx);
	}
	return NULL;
}

int dns_resolver_create(const struct dns_resolver_settings *s,
			struct dns_resolver **resolver_r, const char **error_r)
{
	struct dns_resolver *r = mf_xcalloc(1, sizeof(*r));
	int err;

	pthread_mutex_init(&r->lock, NULL);
	r->timeout_ms = s->timeout_ms == 0 ? DNS_TIMEOUT_DEFAULT_MS : s->timeout_ms;
	if (r->timeout_ms > DNS_TIMEOUT_MAX_MS)
		r->timeout_ms = DNS_TIMEOUT_MAX_MS;
	if (s->mode == DNS_RESOLVER_NONE) {
		/* Without network, waiting for timeouts only delays the
		 * temporary error every lookup would end in anyway. */
		r->none = true;
		*resolver_r = r;
		return 0;
	}
	r->ctx = ub_ctx_create();
	if (r->ctx == NULL) {
		*error_r = "cannot create the libunbound context";
		goto fail;
	}
	/* Lab and forwarding setups use loopback servers; unbound refuses to
	 * query them unless told.  No logging to the terminal by libunbound. */
	if ((err = ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no")) != 0 ||
	    (err = ub_ctx_set_option(r->ctx, "verbosity:", "0")) != 0 ||
	    (err = ub_ctx_async(r->ctx, 1)) != 0) {
		*error_r = mf_errorf("libunbound: %s", ub_strerror(err));
		goto fail;
	}
	switch (s->mode) {
	case DNS_RESOLVER_RECURSIVE:
	case DNS_RESOLVER_NONE:
		break;
	case DNS_RESOLVER_FORWARD:
		if (s->forward_count == 0) {
			*error_r = "forwarding needs at least one server";
			goto fail;
		}
		for (size_t i = 0; i < s->forward_count && i < DNS_FORWARD_MAX; i++) {
			if ((err = ub_ctx_set_fwd(r->ctx, s->forward[i])) != 0) {
				*error_r = mf_errorf("forwarder %s: %s", s->forward[i],
						     ub_strerror(err));
				goto fail;
			}
		}
		break;
	case DNS_RESOLVER_RESOLVCONF:
		if (s->resolvconf == NULL ||
		    (err = ub_ctx_resolvconf(r->ctx, s->resolvconf)) != 0) {
			*error_r = mf_errorf("resolv.conf %s: %s",
					     s->resolvconf != NULL ? s->resolvconf : "(none)",
					     s->resolvconf != NULL ? ub_strerror(err) : "no file named");
			goto fail;
		}
		break;
	}
	/* libunbound reads the file only at the first lookup: check it now so
	 * that a wrong path shows at start-up. */
	if (s->trust_anchor != NULL) {
		FILE *f = fopen(s->trust_anchor, "r");
		if (f == NULL) {
			*error_r = mf_errorf("trust anchor %s: %s", s->trust_anchor, strerror(errno));
			goto fail;
		}
		fclose(f);
	}
	if (s->trust_anchor != NULL && (err = ub_ctx_add_ta_file(r->ctx, s->trust_anchor)) != 0) {
		*error_r = mf_errorf("trust anchor %s: %s", s->trust_anchor, ub_strerror(err));
		goto fail;
	}
	/* libunbound answers some special-use names itself (RFC 6761 test.,
	 * the loopback reverse zone).  With a forwarder, that server is the
	 * authority: a lab or a split-horizon resolver may serve them.  (This
	 * applies the settings above, so it comes last.) */
	if (s->mode != DNS_RESOLVER_RECURSIVE &&
	    ((err = ub_ctx_zone_remove(r->ctx, "test.")) != 0 ||
	     (err = ub_ctx_zone_remove(r->ctx, "127.in-addr.arpa.")) != 0)) {
		*error_r = mf_errorf("libunbound: %s", ub_strerror(err));
		goto fail;
	}
	if (ub_fd(r->ctx) < 0) {
		*error_r = "libunbound: cannot start";
		goto fail;
	}
	if (pthread_create(&r->pump, NULL, pump_main, r) != 0) {
		*error_r = "cannot start the resolver thread";
		goto fail;
	}
	r->pump_started = true;
	*resolver_r = r;
	return 0;
fail:
	dns_resolver_free(&r);
	return -1;
}

void dns_resolver_free(struct dns_resolver **resolver)
{
	struct dns_resolver *r = *resolver;

	if (r == NULL)
		return;
	if (r->memory) {
		for (size_t i = 0; i < r->rr_count; i++) {
			free(r->rrs[i].name);
			dns_record_clear(&r->rrs[i].rec);
		}
		free(r->rrs);
	} else {
		if (r->pump_started) {
			r->stopping = true;
			pthread_join(r->pump, NULL);
			/* Answers that arrived for abandoned (timed-out) lookups:
			 * their callbacks free them. */
			ub_process(r->ctx);
		}
		if (r->ctx != NULL)
			ub_ctx_delete(r->ctx);
		pthread_mutex_destroy(&r->lock);
	}
	free(r);
	*resolver = NULL;
}

static struct dns_answer *answer_from_ub(struct ub_result *res, uint16_t type)
{
	struct dns_answer *a;

	if (res->bogus) {
		a = answer_tempfail("DNSSEC bogus");
		if (res->why_bogus != NULL) {
			free(a->error);
			a->error = mf_xasprintf("DNSSEC bogus: %s", res->why_bogus);
		}
		return a;
	}
	if (res->rcode == 3 || res->nxdomain)
		a = answer_new(DNS_STATUS_NXDOMAIN);
	else if (res->rcode != 0)
		return answer_tempfail(res->rcode == 2 ? "SERVFAIL" :
				       mf_errorf("DNS error (rcode %d)", res->rcode));
	else if (!res->havedata)
		a = answer_new(DNS_STATUS_NODATA);
	else
		a = answer_new(DNS_STATUS_OK);
	a->authentic = res->secure != 0;
	if (res->canonname != NULL && res->qname != NULL && strcasecmp(res->canonname, res->qname) != 0) {
		a->canonname = name_key(res->canonname);
	}
	for (size_t i = 0; res->havedata && res->data[i] != NULL; i++) {
		struct dns_record rec;
		if (dns_record_decode(type, (const uint8_t *)res->data[i], (size_t)res->len[i], &rec) == 0) {
			rec.ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
			answer_add(a, &rec);
		}
		dns_record_clear(&rec);
	}
	if (a->status == DNS_STATUS_OK && a->count == 0) {
		dns_answer_free(&a);
		return answer_tempfail("malformed answer");
	}
	return a;
}

static struct dns_answer *unbound_lookup(struct dns_resolver *r, const char *name, uint16_t type)
{
	struct ub_query *q = mf_xcalloc(1, sizeof(*q));
	struct ub_cb_arg *cb = mf_xcalloc(1, sizeof(*cb));
	struct dns_answer *a;
	struct timespec deadline;
	int id = 0, err;

	pthread_cond_init(&q->cond, NULL);
	cb->r = r;
	cb->q = q;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += r->timeout_ms / 1000;
	deadline.tv_nsec += (long)(r->timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	err = ub_resolve_async(r->ctx, name, type, 1 /* IN */, cb, ub_done, &id);
	if (err != 0) {
		pthread_mutex_unlock(&r->lock);
		pthread_cond_destroy(&q->cond);
		free(q);
		free(cb);
		return answer_tempfail(mf_errorf("libunbound: %s", ub_strerror(err)));
	}
	while (!q->done) {
		if (pthread_cond_timedwait(&q->cond, &r->lock, &deadline) == ETIMEDOUT && !q->done)
			break;
	}
	if (!q->done) {
		/* Cancelled: libunbound never calls back.  Otherwise the answer
		 * is on its way to ub_done, which frees what we abandon. */
		if (ub_cancel(r->ctx, id) == 0) {
			pthread_mutex_unlock(&r->lock);
			pthread_cond_destroy(&q->cond);
			free(q);
			free(cb);
		} else {
			q->abandoned = true;
			pthread_mutex_unlock(&r->lock);
		}
		return answer_tempfail("timeout");
	}
	pthread_mutex_unlock(&r->lock);
	if (q->err != 0 || q->result == NULL)
		a = answer_tempfail(mf_errorf("libunbound: %s", ub_strerror(q->err)));
	else
		a = answer_from_ub(q->result, type);
	if (q->result != NULL)
		ub_resolve_free(q->result);
	pthread_cond_destroy(&q->cond);
	free(q);
	return a;
}

struct dns_answer *dns_lookup(struct dns_resolver *r, const char *name, uint16_t type)
{
	const char *err;

	if (dns_name_check(name, &err) < 0)
		return answer_tempfail(mf_errorf("bad name: %s", err));
	r->lookups++;
	if (r->memory)
		return memory_lookup(r, name, type);
	if (r->none)
		return answer_tempfail("no DNS resolver configured (resolver none)");
	return unbound_lookup(r, name, type);
}

uint64_t dns_resolver_lookups(struct dns_resolver *r)
{
	return r->lookups;
}
