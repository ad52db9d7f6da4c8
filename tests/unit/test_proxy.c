#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
#define MAXB 2048

struct proxy_case {
	const char *name;
	unsigned char data[MAXB];
	size_t len;
	int ret;              /* 0, 1 or -1 when fed in full */
	size_t consumed;      /* for ret 0 */
	bool local;
	int version;
	const char *src_ip;   /* NULL when local */
	unsigned src_port;
	const char *dst_ip;
	unsigned dst_port;
	const char *error;    /* substring, for ret -1 */
	bool crc;
};

static size_t put(unsigned char *b, size_t off, const void *data, size_t len)
{
	memcpy(b + off, data, len);
	return off + len;
}

/* Builds a v2 header: ver_cmd, fam, address block and TLVs. */
static size_t v2(unsigned char *b, unsigned ver_cmd, unsigned fam,
		 const void *block, size_t block_len)
{
	size_t off = put(b, 0, SIG, 12);
	b[off++] = (unsigned char)ver_cmd;
	b[off++] = (unsigned char)fam;
	b[off++] = (unsigned char)(block_len >> 8);
	b[off++] = (unsigned char)block_len;
	return put(b, off, block, block_len);
}

static void text(struct proxy_case *c, const char *s)
{
	c->len = strlen(s);
	memcpy(c->data, s, c->len);
}

static void addr_string(const struct sockaddr_storage *ss, char *ip, size_t ipsize,
			unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ipsize);
		*port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)ipsize);
		*port = ntohs(sin6->sin6_port);
	}
}

static void check_result(const struct proxy_case *c, int ret, size_t consumed,
			 const struct mf_proxy_header *hdr, const char *error)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	print_message("case %s\n", c->name);
	assert_int_equal(ret, c->ret);
	if (ret == -1) {
		assert_non_null(strstr(error, c->error));
		return;
	}
	if (ret == 1) {
		assert_int_equal(consumed, c->len);
		return;
	}
	assert_int_equal(consumed, c->consumed);
	assert_int_equal(hdr->version, c->version);
	assert_int_equal(hdr->local, c->local);
	assert_int_equal(hdr->crc_verified, c->crc);
	if (c->local)
		return;
	addr_string(&hdr->src, ip, sizeof(ip), &port);
	assert_string_equal(ip, c->src_ip);
	assert_int_equal(port, c->src_port);
	addr_string(&hdr->dst, ip, sizeof(ip), &port);
	assert_string_equal(ip, c->dst_ip);
	assert_int_equal(port, c->dst_port);
}

static struct proxy_case *build_cases(size_t *count_r)
{
	static struct proxy_case cs[64];
	size_t n = 0;
	unsigned char blk[MAXB];
	size_t bl;
	struct proxy_case *c;

#define NEW(nm) do { c = &cs[n++]; memset(c, 0, sizeof(*c)); c->name = (nm); } while (0)

	NEW("v1 tcp4");
	text(c, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n");
	c->ret = 0; c->consumed = 44; c->version = 1;
	c->src_ip = "192.0.2.1"; c->src_port = 56324;
	c->dst_ip = "198.51.100.2"; c->dst_port = 25;

	NEW("v1 tcp6");
	text(c, "PROXY TCP6 2001:db8::1 2001:DB8::2 65535 0\r\n");
	c->ret = 0; c->consumed = c->len; c->version = 1;
	c->src_ip = "2001:db8::1"; c->src_port = 65535;
	c->dst_ip = "2001:db8::2"; c->dst_port = 0;

	NEW("v1 tcp6 longest");
	text(c, "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	c->ret = 0; c->consumed = c->len; c->version = 1;
	c->src_ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"; c->src_port = 65535;
	c->dst_ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"; c->dst_port = 65535;

	NEW("v1 unknown short");
	text(c, "PROXY UNKNOWN\r\n");
	c->ret = 0; c->consumed = 15; c->version = 1; c->local = true;

	NEW("v1 unknown with garbage is ignored");
	text(c, "PROXY UNKNOWN whatever 1.2 x y\r\nrest");
	c->ret = 0; c->consumed = c->len - 4; c->version = 1; c->local = true;

	NEW("v1 unknown worst case 107 bytes");
	text(c, "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	assert_int_equal(c->len, MF_PROXY_V1_MAX);
	c->ret = 0; c->consumed = c->len; c->version = 1; c->local = true;

	NEW("v1 truncated");
	text(c, "PROXY TCP4 192.0.2.1 198.51");
	c->ret = 1;

	NEW("v1 bare LF");
	text(c, "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n");
	c->ret = -1; c->error = "CRLF";

	NEW("v1 over-long");
	memset(c->data, 'a', 200);
	memcpy(c->data, "PROXY UNKNOWN ", 14);
	c->len = 200;
	c->ret = -1; c->error = "longer than 107";

	NEW("v1 bad signature");
	text(c, "PROXZ TCP4 1.2.3.4 1.2.3.4 1 2\r\n");
	c->ret = -1; c->error = "not a PROXY";

	NEW("not proxy at all");
	text(c, "EHLO example.org\r\n");
	c->ret = -1; c->error = "not a PROXY";

	NEW("v1 port too big");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n");
	c->ret = -1; c->error = "invalid port";

	NEW("v1 port leading zero");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n");
	c->ret = -1; c->error = "invalid port";

	NEW("v1 port not numeric");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 2x 25\r\n");
	c->ret = -1; c->error = "invalid port";

	NEW("v1 octet leading zero");
	text(c, "PROXY TCP4 01.2.3.4 5.6.7.8 1 25\r\n");
	c->ret = -1; c->error = "invalid source address";

	NEW("v1 octet too big");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.256 1 25\r\n");
	c->ret = -1; c->error = "invalid destination address";

	NEW("v1 tcp4 with v6 address");
	text(c, "PROXY TCP4 ::1 5.6.7.8 1 25\r\n");
	c->ret = -1; c->error = "invalid source address";

	NEW("v1 tcp6 with v4 address");
	text(c, "PROXY TCP6 1.2.3.4 ::1 1 25\r\n");
	c->ret = -1; c->error = "invalid source address";

	NEW("v1 double space");
	text(c, "PROXY TCP4  1.2.3.4 5.6.7.8 1 25\r\n");
	c->ret = -1; c->error = "empty field";

	NEW("v1 trailing space");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 1 25 \r\n");
	c->ret = -1; c->error = "empty field";

	NEW("v1 too few fields");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");
	c->ret = -1; c->error = "too few";

	NEW("v1 too many fields");
	text(c, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");
	c->ret = -1; c->error = "too many";

	NEW("v1 unknown protocol");
	text(c, "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
	c->ret = -1; c->error = "unknown protocol";

	NEW("v1 NUL inside address");
	memcpy(c->data, "PROXY TCP4 1.2.3.4\0x 5.6.7.8 1 2\r\n", 35);
	c->len = 35;
	c->ret = -1; c->error = "invalid source address";

	/* v2 */
	NEW("v2 tcp4");
	memcpy(blk, "\xc0\x00\x02\x01" "\xc6\x33\x64\x02" "\xdc\x04" "\x00\x19", 12);
	c->len = v2(c->data, 0x21, 0x11, blk, 12);
	c->len = put(c->data, c->len, "after", 5);
	c->ret = 0; c->consumed = 28; c->version = 2;
	c->src_ip = "192.0.2.1"; c->src_port = 56324;
	c->dst_ip = "198.51.100.2"; c->dst_port = 25;

	NEW("v2 tcp6");
	memset(blk, 0, 36);
	memcpy(blk, "\x20\x01\x0d\xb8", 4); blk[15] = 1;
	memcpy(blk + 16, "\x20\x01\x0d\xb8", 4); blk[31] = 2;
	memcpy(blk + 32, "\x04\xd2\x00\x19", 4);
	c->len = v2(c->data, 0x21, 0x21, blk, 36);
	c->ret = 0; c->consumed = 52; c->version = 2;
	c->src_ip = "2001:db8::1"; c->src_port = 1234;
	c->dst_ip = "2001:db8::2"; c->dst_port = 25;

	NEW("v2 local");
	c->len = v2(c->data, 0x20, 0x00, "", 0);
	c->ret = 0; c->consumed = 16; c->version = 2; c->local = true;

	NEW("v2 local with address block is skipped");
	memset(blk, 0xee, 12);
	c->len = v2(c->data, 0x20, 0x11, blk, 12);
	c->ret = 0; c->consumed = 28; c->version = 2; c->local = true;

	NEW("v2 unspec family");
	c->len = v2(c->data, 0x21, 0x00, "abc", 3);
	c->ret = 0; c->consumed = 19; c->version = 2; c->local = true;

	NEW("v2 udp4 falls back to local");
	memset(blk, 1, 12);
	c->len = v2(c->data, 0x21, 0x12, blk, 12);
	c->ret = 0; c->consumed = 28; c->version = 2; c->local = true;

	NEW("v2 tcp4 with TLVs (noop, authority) and good crc32c");
	memcpy(blk, "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x30\x39" "\x01\xd1", 12);
	bl = 12;
	bl = put(blk, bl, "\x04\x00\x02xx", 5);                 /* NOOP */
	bl = put(blk, bl, "\x02\x00\x0b" "example.org", 14);       /* AUTHORITY */
	bl = put(blk, bl, "\x03\x00\x04\x00\x00\x00\x00", 7);   /* CRC32C */
	c->len = v2(c->data, 0x21, 0x11, blk, bl);
	{
		uint32_t crc = mf_proxy_crc32c(c->data, c->len);
		unsigned char *v = c->data + c->len - 4;
		v[0] = (unsigned char)(crc >> 24); v[1] = (unsigned char)(crc >> 16);
		v[2] = (unsigned char)(crc >> 8); v[3] = (unsigned char)crc;
	}
	c->ret = 0; c->consumed = c->len; c->version = 2; c->crc = true;
	c->src_ip = "10.0.0.1"; c->src_port = 12345;
	c->dst_ip = "10.0.0.2"; c->dst_port = 465;

	NEW("v2 bad crc32c");
	memcpy(c, &cs[n - 2], sizeof(*c));
	c->name = "v2 bad crc32c";
	c->data[c->len - 1] ^= 0x01;
	c->ret = -1; c->error = "CRC32C mismatch";

	NEW("v2 truncated TLV");
	memcpy(blk, "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x30\x39" "\x01\xd1", 12);
	bl = put(blk, 12, "\x02\x00\x10" "abc", 6);
	c->len = v2(c->data, 0x21, 0x11, blk, bl);
	c->ret = -1; c->error = "TLV longer";

	NEW("v2 TLV header cut");
	bl = put(blk, 12, "\x02\x00", 2);
	c->len = v2(c->data, 0x21, 0x11, blk, bl);
	c->ret = -1; c->error = "TLV truncated";

	NEW("v2 address block too short");
	c->len = v2(c->data, 0x21, 0x21, blk, 12);
	c->ret = -1; c->error = "too short";

	NEW("v2 truncated header");
	c->len = v2(c->data, 0x21, 0x11, blk, 12) - 3;
	c->ret = 1;

	NEW("v2 truncated fixed part");
	c->len = 10;
	memcpy(c->data, SIG, 10);
	c->ret = 1;

	NEW("v2 bad signature");
	c->len = v2(c->data, 0x21, 0x11, blk, 12);
	c->data[7] = 'X';
	c->ret = -1; c->error = "not a PROXY";

	NEW("v2 bad version");
	c->len = v2(c->data, 0x11, 0x11, blk, 12);
	c->ret = -1; c->error = "unsupported version";

	NEW("v2 bad command");
	c->len = v2(c->data, 0x22, 0x11, blk, 12);
	c->ret = -1; c->error = "unknown command";

	NEW("v2 bad family");
	c->len = v2(c->data, 0x21, 0x41, blk, 12);
	c->ret = -1; c->error = "unknown family";

	NEW("v2 over-long");
	memset(blk, 0, MF_PROXY_V2_LEN_MAX + 1);
	c->len = v2(c->data, 0x21, 0x11, blk, MF_PROXY_V2_LEN_MAX + 1);
	c->ret = -1; c->error = "longer than 1024";

	NEW("v2 longest accepted");
	memset(blk, 0, MF_PROXY_V2_LEN_MAX);
	memcpy(blk, "\x7f\x00\x00\x01" "\x7f\x00\x00\x02" "\x00\x01" "\x00\x02", 12);
	/* one NOOP TLV filling the rest */
	blk[12] = 0x04;
	blk[13] = (unsigned char)((MF_PROXY_V2_LEN_MAX - 15) >> 8);
	blk[14] = (unsigned char)(MF_PROXY_V2_LEN_MAX - 15);
	c->len = v2(c->data, 0x21, 0x11, blk, MF_PROXY_V2_LEN_MAX);
	c->ret = 0; c->consumed = c->len; c->version = 2;
	c->src_ip = "127.0.0.1"; c->src_port = 1;
	c->dst_ip = "127.0.0.2"; c->dst_port = 2;
#undef NEW
	*count_r = n;
	return cs;
}

static void test_table_whole(void **state)
{
	size_t n;
	struct proxy_case *cs = build_cases(&n);

	for (size_t i = 0; i < n; i++) {
		struct mf_proxy_parser p;
		struct mf_proxy_header hdr;
		const char *error = NULL;
		size_t consumed = 0;
		mf_proxy_parser_init(&p);
		int ret = mf_proxy_parser_feed(&p, cs[i].data, cs[i].len, &consumed, &hdr, &error);
		check_result(&cs[i], ret, consumed, &hdr, error);
	}
}

/* The same table fed one byte at a time: incremental parsing must give the
 * same answers and never take a byte past the header. */
static void test_table_bytewise(void **state)
{
	size_t n;
	struct proxy_case *cs = build_cases(&n);

	for (size_t i = 0; i < n; i++) {
		struct mf_proxy_parser p;
		struct mf_proxy_header hdr;
		const char *error = NULL;
		size_t total = 0, consumed;
		int ret = 1;
		mf_proxy_parser_init(&p);
		for (size_t k = 0; k < cs[i].len && ret == 1; k++) {
			ret = mf_proxy_parser_feed(&p, cs[i].data + k, 1, &consumed, &hdr, &error);
			total += consumed;
		}
		check_result(&cs[i], ret, total, &hdr, error);
	}
}

static void test_after_done(void **state)
{
	struct mf_proxy_parser p;
	struct mf_proxy_header hdr;
	const char *error = NULL;
	size_t consumed = 99;

	mf_proxy_parser_init(&p);
	assert_int_equal(mf_proxy_parser_feed(&p, "", 0, &consumed, &hdr, &error), 1);
	assert_int_equal(consumed, 0);
	assert_int_equal(mf_proxy_parser_feed(&p, "PROXY UNKNOWN\r\n", 15, &consumed, &hdr,
					      &error), 0);
	assert_int_equal(mf_proxy_parser_feed(&p, "x", 1, &consumed, &hdr, &error), -1);
	assert_int_equal(consumed, 0);
}

static void test_crc32c_vector(void **state)
{
	/* RFC 3720 B.4: 32 bytes of zeroes */
	unsigned char zero[32] = { 0 };
	assert_int_equal(mf_proxy_crc32c(zero, sizeof(zero)), 0x8A9136AA);
	assert_int_equal(mf_proxy_crc32c("123456789", 9), 0xE3069283);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_whole),
		cmocka_unit_test(test_table_bytewise),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_crc32c_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
