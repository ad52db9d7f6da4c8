/* tls: OpenSSL 3.0 helpers shared by the services that terminate or start
 * TLS: server and client contexts with our defaults, a self-signed
 * certificate for the embedded default, and the facts about a connection
 * that other modules need (version and cipher for Received headers, channel
 * binding for SCRAM-PLUS, the client's public key for certificate login).
 *
 * Handshakes and I/O with deadlines live in net.c (struct mf_conn). */
#ifndef MF_TLS_H
#define MF_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Server context flag: ask clients for a certificate during the handshake
 * without requiring one and without verifying it against any CA; the
 * application matches the public key (mf_tls_peer_public_key) itself. */
#define MF_TLS_REQUEST_CLIENT_CERT 0x1u

/* Channel binding data is at most this long (tls-exporter is 32 bytes,
 * tls-unique a Finished verify_data of 12 bytes in TLS 1.2). */
#define MF_TLS_CB_MAX 64
/* Longest host name accepted for a generated certificate (RFC 1035 2.3.4). */
#define MF_TLS_HOSTNAME_MAX 253
/* Longest PEM file we write (a P-256 key or certificate is well under). */
#define MF_TLS_PEM_MAX 16384

enum mf_tls_cb_type {
	MF_TLS_CB_UNIQUE,    /* "tls-unique", RFC 5929 3; TLS 1.2 only */
	MF_TLS_CB_EXPORTER,  /* "tls-exporter", RFC 9266; TLS 1.3, or 1.2 with EMS */
};

/* Creates a server context from a PEM certificate chain and a PEM private
 * key: TLS 1.2 minimum, forward-secret AEAD ciphers for TLS 1.2, OpenSSL's
 * TLS 1.3 suites, session tickets on.  flags: MF_TLS_REQUEST_CLIENT_CERT.
 * Returns 0 with *ctx_r (free with mf_tls_ctx_free), or -1 with error_r
 * naming the file. */
int mf_tls_server_ctx_new(const char *cert_path, const char *key_path, unsigned flags,
			  SSL_CTX **ctx_r, const char **error_r);

/* Creates a client context (TLS 1.2 minimum).  With verify, the peer's
 * chain is checked against ca_file, or the system store when ca_file is
 * NULL, and the name given to mf_tls_client_ssl_new must match.  Without
 * verify any certificate is accepted (opportunistic STARTTLS, RFC 7435).
 * Returns 0 with *ctx_r, or -1 with error_r. */
int mf_tls_client_ctx_new(bool verify, const char *ca_file, SSL_CTX **ctx_r,
			  const char **error_r);

/* Creates a client SSL on fd for server_name (sent as SNI unless it is an IP
 * literal; checked against the certificate when the context verifies; may
 * be NULL).  The caller runs SSL_connect and frees with SSL_free.
 * Returns 0 with *ssl_r, or -1 with error_r. */
int mf_tls_client_ssl_new(SSL_CTX *ctx, int fd, const char *server_name, SSL **ssl_r,
			  const char **error_r);

void mf_tls_ctx_free(SSL_CTX **ctx);

/* Generates an ECDSA P-256 key and a self-signed certificate valid for ten
 * years with subjectAltName DNS:hostname, DNS:localhost, IP:127.0.0.1 and
 * IP:::1.  The key is written to key_path with mode 0600 and the certificate
 * to cert_path with mode 0644, each atomically (temporary file, fsync,
 * rename).  Returns 0, or -1 with error_r. */
int mf_tls_generate_self_signed(const char *cert_path, const char *key_path,
				const char *hostname, const char **error_r);

/* Returns the negotiated protocol, e.g. "TLSv1.3"; static string. */
const char *mf_tls_version(const SSL *ssl);
/* Returns the cipher suite's IANA name, e.g. "TLS_AES_128_GCM_SHA256", as
 * the Received "tls" clause wants it (RFC 8314 4.3); static string. */
const char *mf_tls_cipher(const SSL *ssl);

/* Writes the channel binding data of type for a completed handshake into
 * out (out_size >= MF_TLS_CB_MAX is always enough) and its length into
 * len_r.  Returns 0, or -1 with error_r when the type is not defined for the
 * connection (tls-unique on TLS 1.3, tls-exporter on TLS 1.2 without the
 * extended master secret, RFC 9266 3). */
int mf_tls_channel_binding(SSL *ssl, enum mf_tls_cb_type type, unsigned char *out,
			   size_t out_size, size_t *len_r, const char **error_r);

/* Returns the DER SubjectPublicKeyInfo of the peer's certificate in *der_r
 * (caller frees) and its length in *len_r; *der_r is NULL and *len_r 0 when
 * the peer sent no certificate.  Returns 0, or -1 with error_r. */
int mf_tls_peer_public_key(SSL *ssl, unsigned char **der_r, size_t *len_r,
			   const char **error_r);

/* Returns "what: <first OpenSSL error>" (or "what: unknown error") and
 * clears this thread's OpenSSL error queue; string as from mf_errorf. */
const char *mf_tls_error(const char *what);

#endif
