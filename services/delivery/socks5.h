/* socks5: the client side of a SOCKS5 CONNECT (RFC 1928) with optional
 * username/password authentication (RFC 1929), for direct delivery
 * through a proxy.  The destination is always an IP address (ATYP 1 or
 * 4): host names are resolved through dnsauth before, never by the proxy,
 * so DNS answers stay ours to check.
 *
 * The message builders and reply parsers are separate from the I/O so
 * they can be unit-tested and fuzzed. */
#ifndef SOCKS5_H
#define SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#define SOCKS5_VERSION 5
#define SOCKS5_USER_MAX 255      /* RFC 1929 2: one length byte */
#define SOCKS5_PASSWORD_MAX 255
/* The largest request/reply: VER CMD RSV ATYP, a 255-byte domain with its
 * length byte, the port. */
#define SOCKS5_MSG_MAX (4 + 1 + 255 + 2)

/* Methods (RFC 1928 3). */
#define SOCKS5_METHOD_NONE 0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_UNACCEPTABLE 0xff

/* Writes the greeting offering "no authentication", plus
 * username/password when with_userpass.  Returns its length. */
size_t socks5_greeting(uint8_t *buf, int with_userpass);

/* Checks the server's 2-byte method selection.  Returns 0 with the method
 * in *method_r (NONE, or USERPASS only when offered), or -1 with error_r. */
int socks5_method_reply(const uint8_t *buf, size_t len, int offered_userpass,
			uint8_t *method_r, const char **error_r);

/* Writes the RFC 1929 request.  Returns its length, or 0 when user or
 * password is empty or too long. */
size_t socks5_userpass_request(uint8_t *buf, size_t size, const char *user,
			       const char *password);
/* Checks the 2-byte RFC 1929 status.  Returns 0 (success) or -1. */
int socks5_userpass_reply(const uint8_t *buf, size_t len, const char **error_r);

/* Writes a CONNECT request to ip (IPv4 or IPv6 literal) port.  Returns its
 * length, or 0 when ip is not an IP literal. */
size_t socks5_connect_request(uint8_t *buf, const char *ip, unsigned port);

/* Parses the reply to CONNECT from the bytes received so far.  Returns 1
 * when *need_r bytes are needed in all (read more and call again), 0 when
 * the reply is complete (*need_r its length) and says "succeeded", -1
 * with error_r when malformed or a failure (RFC 1928 6 REP). */
int socks5_connect_reply(const uint8_t *buf, size_t len, size_t *need_r, const char **error_r);

/* On fd (connected to the proxy, non-blocking or blocking): greeting,
 * optional RFC 1929 authentication (user NULL: none), CONNECT to ip:port.
 * Each step waits at most timeout_ms.  Returns 0 when the tunnel is up
 * (the fd now talks to the destination), or -1 with error_r. */
int socks5_connect(int fd, const char *ip, unsigned port, const char *user,
		   const char *password, unsigned timeout_ms, const char **error_r);

#endif
