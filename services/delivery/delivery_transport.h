/* delivery_transport: what a configured transport (domains.conf, see
 * delivery_route.h) changes in an SMTP delivery: the relay's addresses
 * (looked up through dnsauth's dns.v1.lookup, never the system resolver),
 * TLS (implicit for submissions, required for submission and whenever a
 * password is sent, certificate checked unless tls-verify no), the AUTH
 * credentials, and the SOCKS5 proxy of direct delivery through a proxy.
 * Secrets are read from their files for each delivery, so a changed
 * password needs no reload, and are wiped after use. */
#ifndef DELIVERY_TRANSPORT_H
#define DELIVERY_TRANSPORT_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "bus.h"
#include "delivery_route.h"
#include "smtp_client.h"

/* Bytes read from a password file (its first line is the password). */
#define DELIVERY_SECRET_MAX 1024

/* What a transport adds to smtp_client_params for one job; owned here. */
struct delivery_transport_setup {
	char *auth_password;
	char *socks5_password;
	char socks5_ip[64];        /* the proxy, resolved */
	SSL_CTX *verify_tls;       /* a verifying context; NULL: the caller's */
};

/* Reads the first line of path (without CR/LF).  Returns 0 with a new
 * string (wipe and free; delivery_transport_setup_clear does), or -1
 * with error_r (missing, unreadable, empty, longer than the limit). */
int delivery_transport_secret(const char *path, char **secret_r, const char **error_r);

/* Resolves host (an IP literal is taken as is) through dnsauth: IPv6 first.
 * Returns the number of addresses (0 with error_r when none). */
size_t delivery_transport_addresses(struct mf_bus *bus, const char *host, const char *cid,
				    char addrs_r[][64], size_t max, const char **error_r);

/* Prepares t (SMTP, SUBMISSION(S) or SOCKS5) and sets the transport
 * fields of p (which point into setup: keep it until the delivery is
 * done).  Returns 0, or -1 with error_r (a temporary problem of ours: a
 * missing password file, an unresolvable proxy, a bad CA file). */
int delivery_transport_setup(struct mf_bus *bus, const struct delivery_transport *t,
			     const char *cid, struct delivery_transport_setup *setup,
			     struct smtp_client_params *p, const char **error_r);
void delivery_transport_setup_clear(struct delivery_transport_setup *setup);

#endif
