#include "tls.h"
#include "buf.h"
#include "error.h"
#include "fsutil.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: forward-secret AEAD only (Mozilla "intermediate"). TLS 1.3
 * suites keep OpenSSL's defaults, which are all AEAD. */
#define MF_TLS_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
/* Sessions resumed with a client certificate need an id context. */
#define MF_TLS_SESSION_ID_CONTEXT "mailfleet"
#define MF_TLS_CERT_DAYS 3650
#define MF_TLS_SERIAL_BITS 127
/* RFC 5280 upper bound for a CommonName */
#define MF_TLS_CN_MAX 64
/* RFC 9266 2 */
#define MF_TLS_EXPORTER_LABEL "EXPORTER-Channel-Binding"
#define MF_TLS_EXPORTER_LEN 32

const char *mf_tls_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e == 0) {
		ERR_clear_error();
		return mf_errorf("%s: unknown error", what);
	}
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return mf_errorf("%s: %s", what, buf);
}

static void ctx_common(SSL_CTX *ctx)
{
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    /* mail protocols end sessions themselves (QUIT,
			     * LOGOUT); a missing close_notify is a plain EOF */
			    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Partial writes let net.c loop with deadlines; released buffers keep
	 * idle IMAP connections small. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
}

/* Client certificates are requested for login by public key, not for trust:
 * any certificate, self-signed or expired, is accepted here. */
static int accept_any_cert(int preverify_ok, X509_STORE_CTX *store)
{
	return 1;
}

int mf_tls_server_ctx_new(const char *cert_path, const char *key_path, unsigned flags,
			  SSL_CTX **ctx_r, const char **error_r)
{
	SSL_CTX *ctx;
	int ret = -1;

	*ctx_r = NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = mf_tls_error("tls: creating server context");
		return -1;
	}
	ctx_common(ctx);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, MF_TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_dh_auto(ctx, 1) != 1) {
		*error_r = mf_tls_error("tls: configuring server context");
		goto out;
	}
	if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)MF_TLS_SESSION_ID_CONTEXT,
					   sizeof(MF_TLS_SESSION_ID_CONTEXT) - 1) != 1) {
		*error_r = mf_tls_error("tls: setting session id context");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = mf_tls_error(mf_errorf("tls: loading certificate %s", cert_path));
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL already compares the key with the certificate here */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
			*error_r = mf_tls_error(mf_errorf("tls: private key %s does not match certificate %s",
							  key_path, cert_path));
		else
			*error_r = mf_tls_error(mf_errorf("tls: loading private key %s", key_path));
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = mf_tls_error(mf_errorf("tls: private key %s does not match certificate %s",
						  key_path, cert_path));
		goto out;
	}
	if ((flags & MF_TLS_REQUEST_CLIENT_CERT) != 0)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
	*ctx_r = ctx;
	ctx = NULL;
	ret = 0;
out:
	SSL_CTX_free(ctx);
	return ret;
}

int mf_tls_client_ctx_new(bool verify, const char *ca_file, SSL_CTX **ctx_r,
			  const char **error_r)
{
	SSL_CTX *ctx;
	int ret = -1;

	*ctx_r = NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = mf_tls_error("tls: creating client context");
		return -1;
	}
	ctx_common(ctx);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		*error_r = mf_tls_error("tls: configuring client context");
		goto out;
	}
	if (verify) {
		int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
			 SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			*error_r = mf_tls_error(mf_errorf("tls: loading CA certificates %s",
							  ca_file != NULL ? ca_file : "(system)"));
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	*ctx_r = ctx;
	ctx = NULL;
	ret = 0;
out:
	SSL_CTX_free(ctx);
	return ret;
}

int mf_tls_client_ssl_new(SSL_CTX *ctx, int fd, const char *server_name, SSL **ssl_r,
			  const char **error_r)
{
	SSL *ssl;
	unsigned char ip[16];
	bool is_ip;
	int ret = -1;

	*ssl_r = NULL;
	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (ssl == NULL) {
		*error_r = mf_tls_error("tls: creating connection");
		return -1;
	}
	if (SSL_set_fd(ssl, fd) != 1) {
		*error_r = mf_tls_error("tls: attaching socket");
		goto out;
	}
	SSL_set_connect_state(ssl);
	if (server_name != NULL) {
		is_ip = inet_pton(AF_INET, server_name, ip) == 1 ||
			inet_pton(AF_INET6, server_name, ip) == 1;
		/* RFC 6066 3: literal IP addresses are not sent as SNI */
		if (!is_ip && SSL_set_tlsext_host_name(ssl, server_name) != 1) {
			*error_r = mf_tls_error("tls: setting server name");
			goto out;
		}
		if (SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
			int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
								       server_name) :
				 SSL_set1_host(ssl, server_name);
			if (ok != 1) {
				*error_r = mf_tls_error("tls: setting name to verify");
				goto out;
			}
		}
	}
	*ssl_r = ssl;
	ssl = NULL;
	ret = 0;
out:
	SSL_free(ssl);
	return ret;
}

void mf_tls_ctx_free(SSL_CTX **ctx)
{
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

static bool hostname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > MF_TLS_HOSTNAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int add_dns(GENERAL_NAMES *names, const char *dns)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (gn == NULL || s == NULL || ASN1_STRING_set(s, dns, (int)strlen(dns)) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(s);
		return -1;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	if (sk_GENERAL_NAME_push(names, gn) == 0) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	return 0;
}

static int add_ip(GENERAL_NAMES *names, int af, const char *text)
{
	unsigned char addr[16];
	GENERAL_NAME *gn;
	ASN1_OCTET_STRING *s;

	if (inet_pton(af, text, addr) != 1)
		return -1;
	gn = GENERAL_NAME_new();
	s = ASN1_OCTET_STRING_new();
	if (gn == NULL || s == NULL ||
	    ASN1_OCTET_STRING_set(s, addr, af == AF_INET ? 4 : 16) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_OCTET_STRING_free(s);
		return -1;
	}
	GENERAL_NAME_set0_value(gn, GEN_IPADD, s);
	if (sk_GENERAL_NAME_push(names, gn) == 0) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	return 0;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* Serialises with write_pem into memory and writes path atomically. */
static int write_pem_file(const char *path, mode_t mode, int (*write_pem)(BIO *, void *),
			  void *obj, const char **error_r)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int ret = -1;

	if (bio == NULL || write_pem(bio, obj) != 1) {
		*error_r = mf_tls_error(mf_errorf("tls: encoding %s", path));
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || len > MF_TLS_PEM_MAX) {
		*error_r = mf_errorf("tls: encoding %s: unexpected length %ld", path, len);
		goto out;
	}
	if (mf_fs_write_atomic(path, data, (size_t)len, mode, error_r) < 0)
		goto out;
	ret = 0;
out:
	BIO_free(bio);
	return ret;
}

static int pem_write_key(BIO *bio, void *obj)
{
	return PEM_write_bio_PrivateKey(bio, obj, NULL, NULL, 0, NULL, NULL);
}

static int pem_write_cert(BIO *bio, void *obj)
{
	return PEM_write_bio_X509(bio, obj);
}

int mf_tls_generate_self_signed(const char *cert_path, const char *key_path,
				const char *hostname, const char **error_r)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	GENERAL_NAMES *names = NULL;
	BIGNUM *serial = NULL;
	int ret = -1;

	if (!hostname_valid(hostname)) {
		*error_r = mf_errorf("tls: invalid host name for certificate: \"%.*s\"",
				     MF_TLS_HOSTNAME_MAX, hostname);
		return -1;
	}
	ERR_clear_error();
	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL) {
		*error_r = mf_tls_error("tls: generating P-256 key");
		goto out;
	}
	cert = X509_new();
	serial = BN_new();
	if (cert == NULL || serial == NULL) {
		*error_r = mf_tls_error("tls: allocating certificate");
		goto out;
	}
	/* Positive random serial, RFC 5280 4.1.2.2 (at most 20 octets). */
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    BN_rand(serial, MF_TLS_SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), -60 * 60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), MF_TLS_CERT_DAYS, 0, NULL) == NULL ||
	    X509_set_pubkey(cert, pkey) != 1) {
		*error_r = mf_tls_error("tls: filling certificate");
		goto out;
	}
	name = X509_get_subject_name(cert);
	if (strlen(hostname) <= MF_TLS_CN_MAX &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)hostname, -1, -1, 0) != 1) {
		*error_r = mf_tls_error("tls: setting subject");
		goto out;
	}
	if (X509_set_issuer_name(cert, name) != 1) {
		*error_r = mf_tls_error("tls: setting issuer");
		goto out;
	}
	names = sk_GENERAL_NAME_new_null();
	if (names == NULL || add_dns(names, hostname) < 0 ||
	    (strcmp(hostname, "localhost") != 0 && add_dns(names, "localhost") < 0) ||
	    add_ip(names, AF_INET, "127.0.0.1") < 0 || add_ip(names, AF_INET6, "::1") < 0 ||
	    X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1) {
		*error_r = mf_tls_error("tls: adding subjectAltName");
		goto out;
	}
	if (add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(cert, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
	    add_ext(cert, NID_subject_key_identifier, "hash") < 0) {
		*error_r = mf_tls_error("tls: adding extensions");
		goto out;
	}
	if (X509_sign(cert, pkey, EVP_sha256()) == 0) {
		*error_r = mf_tls_error("tls: signing certificate");
		goto out;
	}
	/* Key first: a certificate on disk always has its key. */
	if (write_pem_file(key_path, 0600, pem_write_key, pkey, error_r) < 0 ||
	    write_pem_file(cert_path, 0644, pem_write_cert, cert, error_r) < 0)
		goto out;
	ret = 0;
out:
	sk_GENERAL_NAME_pop_free(names, GENERAL_NAME_free);
	BN_free(serial);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return ret;
}

const char *mf_tls_version(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *mf_tls_cipher(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	const char *name;

	if (c == NULL)
		return "none";
	name = SSL_CIPHER_standard_name(c);
	return name != NULL ? name : SSL_CIPHER_get_name(c);
}

int mf_tls_channel_binding(SSL *ssl, enum mf_tls_cb_type type, unsigned char *out,
			   size_t out_size, size_t *len_r, const char **error_r)
{
	int version = SSL_version(ssl);

	*len_r = 0;
	if (!SSL_is_init_finished(ssl)) {
		*error_r = "tls: channel binding before the handshake completed";
		return -1;
	}
	if (type == MF_TLS_CB_UNIQUE) {
		bool first_is_ours;
		size_t n;
		if (version >= TLS1_3_VERSION) {
			/* RFC 8446 C.5: tls-unique is not defined for TLS 1.3 */
			*error_r = "tls: tls-unique is not defined for TLS 1.3";
			return -1;
		}
		/* RFC 5929 3.1: the first Finished of the latest handshake: the
		 * client's in a full handshake, the server's in a resumed one. */
		first_is_ours = (SSL_is_server(ssl) != 0) == (SSL_session_reused(ssl) != 0);
		n = first_is_ours ? SSL_get_finished(ssl, out, out_size) :
		    SSL_get_peer_finished(ssl, out, out_size);
		if (n == 0 || n > out_size) {
			*error_r = "tls: no Finished message for tls-unique";
			return -1;
		}
		*len_r = n;
		return 0;
	}
	if (version < TLS1_3_VERSION && SSL_get_extms_support(ssl) != 1) {
		/* RFC 9266 3: without the extended master secret (RFC 7627)
		 * the exporter is not unique to the connection. */
		*error_r = "tls: tls-exporter needs TLS 1.3 or the extended master secret";
		return -1;
	}
	if (out_size < MF_TLS_EXPORTER_LEN) {
		*error_r = "tls: channel binding buffer too small";
		return -1;
	}
	ERR_clear_error();
	/* RFC 9266 2: empty context value */
	if (SSL_export_keying_material(ssl, out, MF_TLS_EXPORTER_LEN, MF_TLS_EXPORTER_LABEL,
				       sizeof(MF_TLS_EXPORTER_LABEL) - 1, (const unsigned char *)"",
				       0, 1) != 1) {
		*error_r = mf_tls_error("tls: exporting keying material");
		return -1;
	}
	*len_r = MF_TLS_EXPORTER_LEN;
	return 0;
}

int mf_tls_peer_public_key(SSL *ssl, unsigned char **der_r, size_t *len_r,
			   const char **error_r)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	unsigned char *der = NULL, *p;
	int len;

	*der_r = NULL;
	*len_r = 0;
	if (cert == NULL)
		return 0;
	ERR_clear_error();
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), NULL);
	if (len <= 0) {
		*error_r = mf_tls_error("tls: encoding peer public key");
		return -1;
	}
	der = mf_xmalloc((size_t)len);
	p = der;
	if (i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &p) != len) {
		free(der);
		*error_r = mf_tls_error("tls: encoding peer public key");
		return -1;
	}
	*der_r = der;
	*len_r = (size_t)len;
	return 0;
}
