#include "proxy.h"
#include "error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* proxy-protocol.txt 2.1 and 2.2 */
static const char v1_prefix[] = "PROXY ";
#define V1_PREFIX_LEN 6
static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
#define V2_SIG_LEN 12

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_FAM_UNSPEC 0x0
#define V2_FAM_INET 0x1
#define V2_FAM_INET6 0x2
#define V2_FAM_UNIX 0x3
#define V2_PROTO_UNSPEC 0x0
#define V2_PROTO_STREAM 0x1
#define V2_PROTO_DGRAM 0x2
#define V2_INET_LEN 12
#define V2_INET6_LEN 36
#define V2_UNIX_LEN 216
#define PP2_TYPE_CRC32C 0x03

/* Longest v1 address token we copy for inet_pton (an IPv6 address with an
 * embedded IPv4 part is at most 45 characters). */
#define V1_ADDR_MAX 45
/* Fields after "PROXY ": protocol, src, dst, sport, dport. */
#define V1_FIELDS 5

void mf_proxy_parser_init(struct mf_proxy_parser *parser)
{
	parser->state = MF_PROXY_STATE_START;
	parser->len = 0;
}

uint32_t mf_proxy_crc32c(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;

	/* Bitwise reflected CRC32c; headers are at most MF_PROXY_MAX bytes,
	 * so a table buys nothing. */
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int fail(struct mf_proxy_parser *parser, const char **error_r, const char *error)
{
	parser->state = MF_PROXY_STATE_ERROR;
	*error_r = error;
	return -1;
}

/* Parses a decimal port without leading zeroes (proxy-protocol.txt 2.1). */
static int parse_port(const char *s, size_t len, uint16_t *port_r)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port_r = (uint16_t)v;
	return 0;
}

/* Parses an address token of family af into ss with the given port.
 * inet_pton(AF_INET) already refuses leading zeroes in octets. */
static int parse_addr(int af, const char *s, size_t len, uint16_t port,
		      struct sockaddr_storage *ss, socklen_t *ss_len)
{
	char tmp[V1_ADDR_MAX + 1];

	if (len == 0 || len > V1_ADDR_MAX || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, tmp, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*ss_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*ss_len = sizeof(*sin6);
	}
	return 0;
}

/* Parses a complete v1 line (buf[0..len), ending in LF). */
static int parse_v1(struct mf_proxy_parser *parser, struct mf_proxy_header *hdr,
		    const char **error_r)
{
	const char *line = (const char *)parser->buf;
	size_t len = parser->len;
	const char *field[V1_FIELDS];
	size_t field_len[V1_FIELDS];
	size_t nfields = 0;
	uint16_t sport, dport;
	int af;

	/* "must not tolerate a single CR or LF character to end the line" */
	if (len < V1_PREFIX_LEN + 2 || line[len - 2] != '\r')
		return fail(parser, error_r, "PROXY v1 line does not end in CRLF");
	const char *p = line + V1_PREFIX_LEN;
	const char *end = line + len - 2;

	/* "For UNKNOWN ... the receiver must ignore anything presented before
	 * the CRLF", so check it before splitting the rest. */
	if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 &&
	    (end - p == 7 || p[7] == ' ')) {
		memset(hdr, 0, sizeof(*hdr));
		hdr->version = 1;
		hdr->local = true;
		parser->state = MF_PROXY_STATE_DONE;
		return 0;
	}

	/* Fields are separated by exactly one space. */
	while (p <= end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *fend = sp != NULL ? sp : end;
		if (fend == p)
			return fail(parser, error_r, "PROXY v1 line has an empty field");
		if (nfields == V1_FIELDS)
			return fail(parser, error_r, "PROXY v1 line has too many fields");
		field[nfields] = p;
		field_len[nfields] = (size_t)(fend - p);
		nfields++;
		if (sp == NULL)
			break;
		p = sp + 1;
		if (p == end)
			return fail(parser, error_r, "PROXY v1 line has an empty field");
	}
	if (field_len[0] == 4 && memcmp(field[0], "TCP4", 4) == 0)
		af = AF_INET;
	else if (field_len[0] == 4 && memcmp(field[0], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return fail(parser, error_r, "PROXY v1 line has an unknown protocol");
	if (nfields != V1_FIELDS)
		return fail(parser, error_r, "PROXY v1 line has too few fields");
	if (parse_port(field[3], field_len[3], &sport) < 0 ||
	    parse_port(field[4], field_len[4], &dport) < 0)
		return fail(parser, error_r, "PROXY v1 line has an invalid port");
	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 1;
	if (parse_addr(af, field[1], field_len[1], sport, &hdr->src, &hdr->src_len) < 0)
		return fail(parser, error_r, "PROXY v1 line has an invalid source address");
	if (parse_addr(af, field[2], field_len[2], dport, &hdr->dst, &hdr->dst_len) < 0)
		return fail(parser, error_r, "PROXY v1 line has an invalid destination address");
	parser->state = MF_PROXY_STATE_DONE;
	return 0;
}

static int feed_v1(struct mf_proxy_parser *parser, const unsigned char *data, size_t len,
		   size_t *consumed_r, struct mf_proxy_header *hdr, const char **error_r)
{
	size_t room = MF_PROXY_V1_MAX - parser->len;
	size_t take = len < room ? len : room;
	const unsigned char *lf = memchr(data, '\n', take);
	size_t check;

	if (lf != NULL)
		take = (size_t)(lf - data) + 1;
	memcpy(parser->buf + parser->len, data, take);
	parser->len += take;
	*consumed_r += take;

	/* Abort as soon as the bytes cannot be a PROXY line (2.1: "as soon as
	 * possible so that the sender gets a chance to notice"). */
	check = parser->len < V1_PREFIX_LEN ? parser->len : V1_PREFIX_LEN;
	if (memcmp(parser->buf, v1_prefix, check) != 0)
		return fail(parser, error_r, "not a PROXY protocol header");
	if (lf != NULL)
		return parse_v1(parser, hdr, error_r);
	if (parser->len == MF_PROXY_V1_MAX)
		return fail(parser, error_r, "PROXY v1 line longer than 107 bytes");
	return 1;
}

static int parse_v2_tlvs(struct mf_proxy_parser *parser, size_t off, size_t total,
			 struct mf_proxy_header *hdr, const char **error_r)
{
	unsigned char *b = parser->buf;

	while (off < total) {
		if (total - off < 3)
			return fail(parser, error_r, "PROXY v2 TLV truncated");
		unsigned type = b[off];
		size_t tlen = ((size_t)b[off + 1] << 8) | b[off + 2];
		if (tlen > total - off - 3)
			return fail(parser, error_r, "PROXY v2 TLV longer than the header");
		if (type == PP2_TYPE_CRC32C) {
			unsigned char saved[4];
			uint32_t want, got;
			if (tlen != 4)
				return fail(parser, error_r, "PROXY v2 CRC32C TLV has a bad length");
			/* 2.2.3: checksum over the header with the field zeroed */
			memcpy(saved, b + off + 3, 4);
			memset(b + off + 3, 0, 4);
			got = mf_proxy_crc32c(b, total);
			memcpy(b + off + 3, saved, 4);
			want = ((uint32_t)saved[0] << 24) | ((uint32_t)saved[1] << 16) |
			       ((uint32_t)saved[2] << 8) | saved[3];
			if (got != want)
				return fail(parser, error_r, "PROXY v2 CRC32C mismatch");
			hdr->crc_verified = true;
		}
		off += 3 + tlen;
	}
	return 0;
}

/* Parses a complete v2 header of parser->len bytes. */
static int parse_v2(struct mf_proxy_parser *parser, struct mf_proxy_header *hdr,
		    const char **error_r)
{
	const unsigned char *b = parser->buf;
	size_t total = parser->len;
	size_t block = total - MF_PROXY_V2_HEADER_LEN;
	unsigned cmd = b[12] & 0x0F;
	unsigned fam = b[13] >> 4, proto = b[13] & 0x0F;
	const unsigned char *a = b + MF_PROXY_V2_HEADER_LEN;
	size_t need;

	memset(hdr, 0, sizeof(*hdr));
	hdr->version = 2;
	if (cmd == V2_CMD_LOCAL) {
		/* 2.2: "must use the real connection endpoints and discard the
		 * protocol block including the family" */
		hdr->local = true;
		parser->state = MF_PROXY_STATE_DONE;
		return 0;
	}
	if (fam == V2_FAM_UNSPEC || proto == V2_PROTO_UNSPEC) {
		/* Unknown address layout: keep the socket's addresses; the
		 * TLVs cannot be located, so they are skipped with it. */
		hdr->local = true;
		parser->state = MF_PROXY_STATE_DONE;
		return 0;
	}
	need = fam == V2_FAM_INET ? V2_INET_LEN : fam == V2_FAM_INET6 ? V2_INET6_LEN :
	       V2_UNIX_LEN;
	if (block < need)
		return fail(parser, error_r, "PROXY v2 address block too short for its family");
	if (fam == V2_FAM_INET && proto == V2_PROTO_STREAM) {
		struct sockaddr_in *src = (struct sockaddr_in *)&hdr->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)&hdr->dst;
		src->sin_family = AF_INET;
		dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, a, 4);
		memcpy(&dst->sin_addr, a + 4, 4);
		memcpy(&src->sin_port, a + 8, 2);
		memcpy(&dst->sin_port, a + 10, 2);
		hdr->src_len = hdr->dst_len = sizeof(struct sockaddr_in);
	} else if (fam == V2_FAM_INET6 && proto == V2_PROTO_STREAM) {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&hdr->src;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&hdr->dst;
		src->sin6_family = AF_INET6;
		dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, a, 16);
		memcpy(&dst->sin6_addr, a + 16, 16);
		memcpy(&src->sin6_port, a + 32, 2);
		memcpy(&dst->sin6_port, a + 34, 2);
		hdr->src_len = hdr->dst_len = sizeof(struct sockaddr_in6);
	} else {
		/* UDP and UNIX: valid, but not what a TCP listener can map;
		 * 2.2 lets the receiver fall back to UNSPEC. */
		hdr->local = true;
	}
	if (parse_v2_tlvs(parser, MF_PROXY_V2_HEADER_LEN + need, total, hdr, error_r) < 0)
		return -1;
	parser->state = MF_PROXY_STATE_DONE;
	return 0;
}

static int feed_v2(struct mf_proxy_parser *parser, const unsigned char *data, size_t len,
		   size_t *consumed_r, struct mf_proxy_header *hdr, const char **error_r)
{
	size_t pos = 0;

	if (parser->len < MF_PROXY_V2_HEADER_LEN) {
		size_t take = MF_PROXY_V2_HEADER_LEN - parser->len;
		size_t check;
		if (take > len)
			take = len;
		memcpy(parser->buf + parser->len, data, take);
		parser->len += take;
		pos += take;
		*consumed_r += take;
		check = parser->len < V2_SIG_LEN ? parser->len : V2_SIG_LEN;
		if (memcmp(parser->buf, v2_sig, check) != 0)
			return fail(parser, error_r, "not a PROXY protocol header");
		if (parser->len > 12 && (parser->buf[12] >> 4) != 2)
			return fail(parser, error_r, "PROXY v2 header has an unsupported version");
		if (parser->len > 12 && (parser->buf[12] & 0x0F) > V2_CMD_PROXY)
			return fail(parser, error_r, "PROXY v2 header has an unknown command");
		if (parser->len > 13 && ((parser->buf[13] >> 4) > V2_FAM_UNIX ||
					 (parser->buf[13] & 0x0F) > V2_PROTO_DGRAM))
			return fail(parser, error_r, "PROXY v2 header has an unknown family or protocol");
		if (parser->len < MF_PROXY_V2_HEADER_LEN)
			return 1;
	}
	size_t block = ((size_t)parser->buf[14] << 8) | parser->buf[15];
	if (block > MF_PROXY_V2_LEN_MAX)
		return fail(parser, error_r, "PROXY v2 header longer than 1024 bytes");
	size_t total = MF_PROXY_V2_HEADER_LEN + block;
	size_t take = total - parser->len;
	if (take > len - pos)
		take = len - pos;
	memcpy(parser->buf + parser->len, data + pos, take);
	parser->len += take;
	*consumed_r += take;
	if (parser->len < total)
		return 1;
	return parse_v2(parser, hdr, error_r);
}

int mf_proxy_parser_feed(struct mf_proxy_parser *parser, const void *data, size_t len,
			 size_t *consumed_r, struct mf_proxy_header *hdr_r,
			 const char **error_r)
{
	const unsigned char *d = data;

	*consumed_r = 0;
	switch (parser->state) {
	case MF_PROXY_STATE_DONE:
	case MF_PROXY_STATE_ERROR:
		*error_r = "PROXY header already parsed";
		return -1;
	case MF_PROXY_STATE_START:
		if (len == 0)
			return 1;
		/* The first byte tells the versions apart: 'P' or CR. */
		if (d[0] == (unsigned char)v1_prefix[0])
			parser->state = MF_PROXY_STATE_V1;
		else if (d[0] == v2_sig[0])
			parser->state = MF_PROXY_STATE_V2;
		else
			return fail(parser, error_r, "not a PROXY protocol header");
		break;
	case MF_PROXY_STATE_V1:
	case MF_PROXY_STATE_V2:
		break;
	}
	if (len == 0)
		return 1;
	if (parser->state == MF_PROXY_STATE_V1)
		return feed_v1(parser, d, len, consumed_r, hdr_r, error_r);
	return feed_v2(parser, d, len, consumed_r, hdr_r, error_r);
}
