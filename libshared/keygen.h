/* keygen: private keys for DKIM (and other signing) written as PKCS#8 PEM,
 * and the public half formatted as a DKIM DNS record (RFC 6376 3.6.1). */
#ifndef MF_KEYGEN_H
#define MF_KEYGEN_H

enum mf_keygen_algorithm {
	MF_KEYGEN_ED25519,   /* RFC 8463 */
	MF_KEYGEN_RSA2048,
};

/* Generates a key and writes it to path (mode 0600, written to a temporary
 * name, fsynced and renamed; an existing file is not replaced).
 * Returns 0, or -1 with error_r. */
int mf_keygen_write(const char *path, enum mf_keygen_algorithm alg, const char **error_r);

/* Reads the private key at path and returns the DKIM TXT record value for its
 * public key, e.g. "v=DKIM1; k=ed25519; p=...". Caller frees. NULL on error. */
char *mf_keygen_dkim_record(const char *path, const char **error_r);

#endif
