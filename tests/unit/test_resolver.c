/* resolver: the memory backend's semantics, the address helpers, the
 * libunbound backend against a tiny DNS server of ours on loopback (record
 * decoding, NXDOMAIN, SERVFAIL, no data) and against a server that never
 * answers (the deadline), and the dns.v1.lookup handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "dns.pb-c.h"
#include "services/dnsauth/dns_api.h"
#include "services/dnsauth/resolver.h"

/* --- memory backend --- */

static void test_memory_statuses(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	struct dns_answer *a;
	const char *err;

	assert_int_equal(dns_memory_add(r, "Example.COM.", DNS_TYPE_A, "192.0.2.1", &err), 0);
	assert_int_equal(dns_memory_add(r, "example.com", DNS_TYPE_MX, "10 mx.example.com.", &err), 0);
	assert_int_equal(dns_memory_add(r, "www.example.com", DNS_TYPE_CNAME, "example.com", &err), 0);
	assert_int_equal(dns_memory_add(r, "_25._tcp.example.com", DNS_TYPE_TLSA, "3 1 1 00ff", &err), 0);
	assert_int_equal(dns_memory_add(r, "x.example.com", DNS_TYPE_A, "2001:db8::1", &err), -1);
	assert_int_equal(dns_memory_add(r, "x.example.com", DNS_TYPE_TLSA, "3 1 1 0", &err), -1);
	const char *parts[] = { "v=spf1 ", "-all" };
	size_t lens[] = { 7, 4 };
	dns_memory_add_txt(r, "example.com", parts, lens, 2);
	dns_memory_add_timeout(r, "slow.example.com", DNS_TYPE_TXT);

	a = dns_lookup(r, "EXAMPLE.com", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->records[0].ip.family, AF_INET);
	assert_false(a->authentic);
	dns_answer_free(&a);
	assert_null(a);

	a = dns_lookup(r, "example.com.", DNS_TYPE_TXT);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_string_equal((const char *)a->records[0].data, "v=spf1 -all");  /* RFC 7208 3.3 */
	assert_int_equal(a->records[0].data_len, 11);
	dns_answer_free(&a);

	a = dns_lookup(r, "example.com", DNS_TYPE_MX);
	assert_int_equal(a->records[0].preference, 10);
	assert_string_equal(a->records[0].name, "mx.example.com");
	dns_answer_free(&a);

	a = dns_lookup(r, "_25._tcp.example.com", DNS_TYPE_TLSA);
	assert_int_equal(a->records[0].tlsa_usage, 3);
	assert_int_equal(a->records[0].data_len, 2);
	assert_int_equal(a->records[0].data[1], 0xff);
	dns_answer_free(&a);

	/* The name exists: no data, not NXDOMAIN. */
	a = dns_lookup(r, "example.com", DNS_TYPE_AAAA);
	assert_int_equal(a->status, DNS_STATUS_NODATA);
	dns_answer_free(&a);
	a = dns_lookup(r, "nothing.example.com", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_NXDOMAIN);
	dns_answer_free(&a);

	/* CNAMEs are followed and reported. */
	a = dns_lookup(r, "www.example.com", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_string_equal(a->canonname, "example.com");
	dns_answer_free(&a);

	a = dns_lookup(r, "slow.example.com", DNS_TYPE_TXT);
	assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(a->error, "timeout");
	dns_answer_free(&a);
	a = dns_lookup(r, "slow.example.com", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_NODATA);
	dns_answer_free(&a);

	/* Malformed names never reach DNS. */
	uint64_t before = dns_resolver_lookups(r);
	a = dns_lookup(r, "a..example.com", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
	dns_answer_free(&a);
	assert_int_equal(dns_resolver_lookups(r), before);

	dns_memory_set_authentic(r, true);
	a = dns_lookup(r, "example.com", DNS_TYPE_A);
	assert_true(a->authentic);
	dns_answer_free(&a);
	dns_resolver_free(&r);
	assert_null(r);
}

static void test_cname_loop(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	struct dns_answer *a;
	const char *err;

	assert_int_equal(dns_memory_add(r, "a.example", DNS_TYPE_CNAME, "b.example", &err), 0);
	assert_int_equal(dns_memory_add(r, "b.example", DNS_TYPE_CNAME, "a.example", &err), 0);
	a = dns_lookup(r, "a.example", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
	dns_answer_free(&a);
	dns_resolver_free(&r);
}

static void test_names_and_addresses(void **state)
{
	struct dns_ip ip, net;
	char buf[80];
	const char *err;
	char label64[80];

	assert_int_equal(dns_ip_parse("192.0.2.1", &ip), 0);
	assert_string_equal(dns_ip_reverse(&ip, buf, sizeof(buf)), "1.2.0.192");
	assert_int_equal(dns_ip_parse("::ffff:192.0.2.1", &net), 0);
	assert_int_equal(net.family, AF_INET);  /* mapped addresses become IPv4 */
	assert_true(dns_ip_equal(&ip, &net));
	assert_int_equal(dns_ip_parse("2001:db8::1", &ip), 0);
	assert_string_equal(dns_ip_reverse(&ip, buf, sizeof(buf)),
			    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
	assert_string_equal(dns_ip_format(&ip, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(dns_ip_parse("2001:db8:ffff::", &net), 0);
	assert_true(dns_ip_prefix_match(&ip, &net, 32));
	assert_false(dns_ip_prefix_match(&ip, &net, 33));
	assert_true(dns_ip_prefix_match(&ip, &net, 0));
	assert_int_equal(dns_ip_parse("192.0.2.130", &ip), 0);
	assert_int_equal(dns_ip_parse("192.0.2.129", &net), 0);
	assert_true(dns_ip_prefix_match(&ip, &net, 30));
	assert_false(dns_ip_prefix_match(&ip, &net, 31));
	assert_int_equal(dns_ip_parse("192.0.2", &ip), -1);
	assert_int_equal(dns_ip_parse("[::1]", &ip), -1);

	assert_int_equal(dns_name_check("example.com.", &err), 0);
	assert_int_equal(dns_name_check("", &err), -1);
	assert_int_equal(dns_name_check(".", &err), -1);
	assert_int_equal(dns_name_check("a..b", &err), -1);
	memset(label64, 'a', 64);
	memcpy(label64 + 64, ".com", 5);
	assert_int_equal(dns_name_check(label64, &err), -1);
	memcpy(label64 + 63, ".com", 5);  /* 63 octets: the longest label */
	assert_int_equal(dns_name_check(label64, &err), 0);

	assert_int_equal(dns_type_by_name("mx"), DNS_TYPE_MX);
	assert_int_equal(dns_type_by_name("SPF"), 0);
	assert_string_equal(dns_type_name(DNS_TYPE_TLSA), "TLSA");
	assert_string_equal(dns_status_name(DNS_STATUS_NXDOMAIN), "nxdomain");
}

/* --- a tiny authoritative server on loopback for libunbound --- */

struct fake_dns {
	int fd;
	int port;
	bool silent;           /* never answer */
	_Atomic bool stop;
	_Atomic int queries;
	pthread_t thread;
};

static size_t put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

/* Appends an answer RR with a compressed owner name (the question's). */
static size_t put_rr(uint8_t *p, unsigned type, const uint8_t *rdata, size_t rdlen)
{
	size_t n = 0;

	n += put16(p + n, 0xc00c);
	n += put16(p + n, type);
	n += put16(p + n, 1);
	n += put16(p + n, 0);
	n += put16(p + n, 300);
	n += put16(p + n, (unsigned)rdlen);
	memcpy(p + n, rdata, rdlen);
	return n + rdlen;
}

static void answer(struct fake_dns *f, const uint8_t *q, size_t qlen, struct sockaddr_in *from,
		   socklen_t fromlen)
{
	uint8_t out[1024];
	char name[256];
	size_t pos = 12, n = 0, qend;
	unsigned qtype, rcode = 0, ancount = 0;

	if (qlen < 17)
		return;
	while (pos < qlen && q[pos] != 0 && n + q[pos] + 1 < sizeof(name)) {
		if (n > 0)
			name[n++] = '.';
		memcpy(name + n, q + pos + 1, q[pos]);
		n += q[pos];
		pos += q[pos] + 1;
	}
	name[n] = '\0';
	qend = pos + 5;
	if (qend > qlen)
		return;
	qtype = (unsigned)(q[pos + 1] << 8 | q[pos + 2]);
	memcpy(out, q, qend);
	out[2] = 0x85;  /* QR, AA, RD */
	out[3] = 0x80;  /* RA */
	put16(out + 6, 0);
	put16(out + 8, 0);
	put16(out + 10, 0);  /* no additional (drops the query's OPT) */
	n = qend;
	for (char *c = name; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (strcmp(name, "host.test") == 0 && qtype == DNS_TYPE_A) {
		static const uint8_t a1[] = { 192, 0, 2, 1 }, a2[] = { 192, 0, 2, 2 };
		n += put_rr(out + n, qtype, a1, 4);
		n += put_rr(out + n, qtype, a2, 4);
		ancount = 2;
	} else if (strcmp(name, "host.test") == 0 && qtype == DNS_TYPE_MX) {
		static const uint8_t mx[] = { 0, 5, 2, 'm', 'x', 4, 't', 'e', 's', 't', 0 };
		n += put_rr(out + n, qtype, mx, sizeof(mx));
		ancount = 1;
	} else if (strcmp(name, "host.test") == 0 && qtype == DNS_TYPE_TXT) {
		static const uint8_t txt[] = { 3, 'a', 'b', 'c', 0, 2, 'd', 0 };
		n += put_rr(out + n, qtype, txt, sizeof(txt));
		ancount = 1;
	} else if (strcmp(name, "fail.test") == 0) {
		rcode = 2;
	} else if (strcmp(name, "host.test") != 0) {
		rcode = 3;
	}
	out[3] |= (uint8_t)rcode;
	put16(out + 6, ancount);
	sendto(f->fd, out, n, 0, (struct sockaddr *)from, fromlen);
}

static void *fake_main(void *arg)
{
	struct fake_dns *f = arg;
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };

	while (!f->stop) {
		uint8_t buf[1500];
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		ssize_t len = recvfrom(f->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		if (len <= 0)
			continue;
		f->queries++;
		if (!f->silent)
			answer(f, buf, (size_t)len, &from, fromlen);
	}
	return NULL;
}

static void fake_start(struct fake_dns *f, bool silent)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->silent = silent;
	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f->fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake_dns *f)
{
	f->stop = true;
	pthread_join(f->thread, NULL);
	close(f->fd);
}

static struct dns_resolver *forwarding_to(const struct fake_dns *f, unsigned timeout_ms)
{
	char fwd[64];
	const char *fwds[] = { fwd }, *err = NULL;
	struct dns_resolver *r = NULL;
	struct dns_resolver_settings s = {
		.mode = DNS_RESOLVER_FORWARD, .forward = fwds, .forward_count = 1,
		.timeout_ms = timeout_ms,
	};

	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", f->port);
	if (dns_resolver_create(&s, &r, &err) < 0)
		fail_msg("%s", err);
	return r;
}

static void test_unbound_answers(void **state)
{
	struct fake_dns f;
	struct dns_resolver *r;
	struct dns_answer *a;
	char buf[64];

	fake_start(&f, false);
	r = forwarding_to(&f, 3000);
	a = dns_lookup(r, "host.test", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_int_equal(a->count, 2);
	/* In either order (libunbound may rotate RRsets). */
	dns_ip_format(&a->records[0].ip, buf, sizeof(buf));
	assert_true(strcmp(buf, "192.0.2.1") == 0 || strcmp(buf, "192.0.2.2") == 0);
	assert_false(dns_ip_equal(&a->records[0].ip, &a->records[1].ip));
	assert_false(a->authentic);  /* no trust anchor: never authentic */
	dns_answer_free(&a);
	a = dns_lookup(r, "host.test", DNS_TYPE_MX);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_int_equal(a->records[0].preference, 5);
	assert_string_equal(a->records[0].name, "mx.test");
	dns_answer_free(&a);
	a = dns_lookup(r, "host.test", DNS_TYPE_TXT);
	assert_int_equal(a->status, DNS_STATUS_OK);
	assert_int_equal(a->records[0].data_len, 5);
	assert_memory_equal(a->records[0].data, "abcd", 5);  /* "abc" "" "d" */
	dns_answer_free(&a);
	a = dns_lookup(r, "host.test", DNS_TYPE_AAAA);
	assert_int_equal(a->status, DNS_STATUS_NODATA);
	dns_answer_free(&a);
	a = dns_lookup(r, "nothing.test", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_NXDOMAIN);
	dns_answer_free(&a);
	a = dns_lookup(r, "fail.test", DNS_TYPE_A);
	assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
	assert_non_null(a->error);
	dns_answer_free(&a);
	dns_resolver_free(&r);
	fake_stop(&f);
}

static void test_unbound_deadline(void **state)
{
	struct fake_dns f;
	struct dns_resolver *r;
	struct dns_answer *a;
	struct timespec t0, t1;

	fake_start(&f, true);
	r = forwarding_to(&f, 700);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a = dns_lookup(r, "host.test", DNS_TYPE_A);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(a->status, DNS_STATUS_TEMPFAIL);
	assert_string_equal(a->error, "timeout");
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 600 && ms < 3000);
	assert_true(f.queries >= 1);
	dns_answer_free(&a);
	/* Freeing with the abandoned query still in flight is clean. */
	dns_resolver_free(&r);
	fake_stop(&f);
}

struct worker {
	struct dns_resolver *r;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const struct {
		const char *name;
		uint16_t type;
		enum dns_status want;
	} q[] = {
		{ "host.test", DNS_TYPE_A, DNS_STATUS_OK },
		{ "host.test", DNS_TYPE_MX, DNS_STATUS_OK },
		{ "nothing.test", DNS_TYPE_A, DNS_STATUS_NXDOMAIN },
		{ "fail.test", DNS_TYPE_TXT, DNS_STATUS_TEMPFAIL },
		{ "host.test", DNS_TYPE_AAAA, DNS_STATUS_NODATA },
	};

	for (int i = 0; i < 40; i++) {
		struct dns_answer *a = dns_lookup(w->r, q[i % 5].name, q[i % 5].type);
		if (a->status != q[i % 5].want)
			w->failures++;
		dns_answer_free(&a);
	}
	return NULL;
}

/* Many threads share one resolver (as the bus workers do). */
static void test_unbound_threads(void **state)
{
	struct fake_dns f;
	struct worker w[6];
	pthread_t t[6];

	fake_start(&f, false);
	struct dns_resolver *r = forwarding_to(&f, 3000);
	for (int i = 0; i < 6; i++) {
		w[i].r = r;
		w[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(dns_resolver_lookups(r), 240);
	dns_resolver_free(&r);
	fake_stop(&f);
}

static void test_create_errors(void **state)
{
	struct dns_resolver *r = NULL;
	const char *err = NULL;
	const char *bad[] = { "not an address" };
	struct dns_resolver_settings s = { .mode = DNS_RESOLVER_FORWARD };

	assert_int_equal(dns_resolver_create(&s, &r, &err), -1);  /* no forwarder */
	s.forward = bad;
	s.forward_count = 1;
	assert_int_equal(dns_resolver_create(&s, &r, &err), -1);
	assert_non_null(strstr(err, "not an address"));
	struct dns_resolver_settings t = { .mode = DNS_RESOLVER_RECURSIVE,
					   .trust_anchor = "/nonexistent/anchor.key" };
	assert_int_equal(dns_resolver_create(&t, &r, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/anchor.key"));
	struct dns_resolver_settings u = { .mode = DNS_RESOLVER_RESOLVCONF,
					   .resolvconf = "/nonexistent/resolv.conf" };
	assert_int_equal(dns_resolver_create(&u, &r, &err), -1);
	assert_null(r);
}

/* --- dns.v1.lookup handler --- */

static Mailfleet__V1__LookupReply *api_call(struct dns_resolver *r, const char *name, int type,
					    enum mf_bus_status *status_r)
{
	Mailfleet__V1__LookupRequest req = MAILFLEET__V1__LOOKUP_REQUEST__INIT;
	struct mf_bus_response resp = { 0 };
	uint8_t buf[512];
	size_t n;
	Mailfleet__V1__LookupReply *rep = NULL;

	req.name = (char *)name;
	req.type = (Mailfleet__V1__DnsType)type;
	n = mailfleet__v1__lookup_request__pack(&req, buf);
	dns_api_lookup(r, buf, n, &resp);
	*status_r = resp.status;
	if (resp.status == MF_BUS_OK)
		rep = mailfleet__v1__lookup_reply__unpack(NULL, resp.body_len, resp.body);
	free(resp.message);
	free(resp.body);
	return rep;
}

static void test_api(void **state)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	Mailfleet__V1__LookupReply *rep;
	enum mf_bus_status st;
	struct mf_bus_response resp = { 0 };
	const char *err;

	assert_int_equal(dns_memory_add(r, "example.com", DNS_TYPE_MX, "10 mx.example.com", &err), 0);
	assert_int_equal(dns_memory_add(r, "mx.example.com", DNS_TYPE_AAAA, "2001:db8::25", &err), 0);
	dns_memory_add_timeout(r, "slow.example.com", 0);
	dns_memory_set_authentic(r, true);

	rep = api_call(r, "example.com", DNS_TYPE_MX, &st);
	assert_int_equal(st, MF_BUS_OK);
	assert_int_equal(rep->rcode, MAILFLEET__V1__DNS_RCODE__DNS_RCODE_OK);
	assert_true(rep->authentic);
	assert_int_equal(rep->n_records, 1);
	assert_string_equal(rep->records[0]->name, "mx.example.com");
	assert_int_equal(rep->records[0]->preference, 10);
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);

	rep = api_call(r, "mx.example.com", DNS_TYPE_AAAA, &st);
	assert_string_equal(rep->records[0]->address, "2001:db8::25");
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);

	rep = api_call(r, "none.example.com", DNS_TYPE_A, &st);
	assert_int_equal(rep->rcode, MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NXDOMAIN);
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	rep = api_call(r, "example.com", DNS_TYPE_TXT, &st);
	assert_int_equal(rep->rcode, MAILFLEET__V1__DNS_RCODE__DNS_RCODE_NODATA);
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);
	rep = api_call(r, "slow.example.com", DNS_TYPE_TXT, &st);
	assert_int_equal(st, MF_BUS_OK);
	assert_int_equal(rep->rcode, MAILFLEET__V1__DNS_RCODE__DNS_RCODE_TEMPFAIL);
	assert_string_equal(rep->error, "timeout");
	assert_false(rep->authentic);
	mailfleet__v1__lookup_reply__free_unpacked(rep, NULL);

	assert_null(api_call(r, "example.com", DNS_TYPE_NS, &st));
	assert_int_equal(st, MF_BUS_PERMANENT);
	assert_null(api_call(r, "a..b", DNS_TYPE_A, &st));
	assert_int_equal(st, MF_BUS_PERMANENT);
	assert_null(api_call(r, "", DNS_TYPE_A, &st));
	assert_int_equal(st, MF_BUS_PERMANENT);
	dns_api_lookup(r, (const uint8_t *)"\xff\xff\xff", 3, &resp);
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	free(resp.message);
	free(resp.body);
	dns_resolver_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_statuses),
		cmocka_unit_test(test_cname_loop),
		cmocka_unit_test(test_names_and_addresses),
		cmocka_unit_test(test_unbound_answers),
		cmocka_unit_test(test_unbound_deadline),
		cmocka_unit_test(test_unbound_threads),
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
