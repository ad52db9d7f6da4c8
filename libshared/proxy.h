/* proxy: parser for the PROXY protocol header (HAProxy proxy-protocol.txt,
 * version 1 text and version 2 binary) that a load balancer sends before any
 * other byte so that the client's address survives the hop.
 *
 * The parser is incremental: feed it the bytes as they arrive; it consumes
 * only the bytes that belong to the header, so everything after it stays with
 * the caller (an implicit-TLS ClientHello, an early SMTP command).
 *
 *   struct mf_proxy_parser p;
 *   struct mf_proxy_header hdr;
 *   mf_proxy_parser_init(&p);
 *   ret = mf_proxy_parser_feed(&p, data, len, &consumed, &hdr, &error);
 *   // 1: all len bytes consumed, feed more; 0: header complete, consumed
 *   // bytes were the header; -1: not a valid header, drop the connection.
 */
#ifndef MF_PROXY_H
#define MF_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest v1 line including CRLF: "PROXY UNKNOWN <39> <39> 65535 65535\r\n"
 * (proxy-protocol.txt 2.1). */
#define MF_PROXY_V1_MAX 107
/* Fixed part of a v2 header: signature, version/command, family, length. */
#define MF_PROXY_V2_HEADER_LEN 16
/* Longest v2 address block plus TLVs we accept (the length field allows
 * 65535).  Enough for a UNIX address block (216) and the usual TLVs (ALPN,
 * authority, SSL information, CRC32C). */
#define MF_PROXY_V2_LEN_MAX 1024
#define MF_PROXY_MAX (MF_PROXY_V2_HEADER_LEN + MF_PROXY_V2_LEN_MAX)

enum mf_proxy_state {
	MF_PROXY_STATE_START,   /* deciding between v1 and v2 */
	MF_PROXY_STATE_V1,      /* collecting the text line up to CRLF */
	MF_PROXY_STATE_V2,      /* collecting the 16-byte fixed part and block */
	MF_PROXY_STATE_DONE,
	MF_PROXY_STATE_ERROR,
};

struct mf_proxy_parser {
	enum mf_proxy_state state;
	size_t len;                        /* bytes of buf in use */
	unsigned char buf[MF_PROXY_MAX];
};

struct mf_proxy_header {
	int version;                       /* 1 or 2 */
	/* true: keep the socket's own addresses (v1 UNKNOWN, v2 LOCAL, and v2
	 * families we do not map: UNSPEC, UDP, UNIX); src/dst are then unset. */
	bool local;
	struct sockaddr_storage src;       /* client as seen by the balancer */
	socklen_t src_len;
	struct sockaddr_storage dst;       /* address the client connected to */
	socklen_t dst_len;
	bool crc_verified;                 /* v2 carried a PP2_TYPE_CRC32C that matched */
};

void mf_proxy_parser_init(struct mf_proxy_parser *parser);

/* Feeds len bytes of data.  *consumed_r is set to the number of bytes taken
 * from data (always len when 1 is returned).
 * Returns 1 when more bytes are needed, 0 when the header is complete (hdr_r
 * is filled), -1 for an invalid header (error_r says why; the connection must
 * be dropped: proxy-protocol.txt 2.1 "must be discarded and cause the
 * receiver to abort the connection").  A parser that has answered 0 or -1
 * answers -1 to any further feed, consuming nothing. */
int mf_proxy_parser_feed(struct mf_proxy_parser *parser, const void *data, size_t len,
			 size_t *consumed_r, struct mf_proxy_header *hdr_r,
			 const char **error_r);

/* Returns the CRC32c (Castagnoli, RFC 4960 Appendix B) of data; exposed for
 * tests that build v2 headers. */
uint32_t mf_proxy_crc32c(const void *data, size_t len);

#endif
