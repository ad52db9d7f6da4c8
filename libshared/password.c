#include "password.h"
#include "buf.h"
#include "error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scrypt cost: N=2^15, r=8, p=1 needs 32 MiB and ~50 ms per hash. */
#define SCRYPT_LN 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (64ULL * 1024 * 1024)
#define SALT_LEN 16
#define KEY_LEN 32

static int derive(const char *password, size_t len, const unsigned char *salt,
		  size_t salt_len, unsigned ln, unsigned r, unsigned p,
		  unsigned char *key, size_t key_len)
{
	return EVP_PBE_scrypt(password, len, salt, salt_len, 1ULL << ln, r, p,
			      SCRYPT_MAXMEM, key, key_len) == 1 ? 0 : -1;
}

static char *b64(const unsigned char *data, size_t len)
{
	char *out = mf_xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Decodes base64 into out (size max); returns the decoded length or -1. */
static int unb64(const char *s, size_t slen, unsigned char *out, size_t max)
{
	unsigned char tmp[256];
	int n, pad = 0;

	if (slen == 0 || slen % 4 != 0 || slen / 4 * 3 > sizeof(tmp))
		return -1;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)slen);
	if (n < 0)
		return -1;
	if (s[slen - 1] == '=')
		pad++;
	if (s[slen - 2] == '=')
		pad++;
	n -= pad;
	if ((size_t)n > max)
		return -1;
	memcpy(out, tmp, (size_t)n);
	return n;
}

char *mf_password_hash(const char *password, size_t len, const char **error_r)
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char *salt64, *key64, *out;

	if (len > MF_PASSWORD_MAX) {
		*error_r = "password too long";
		return NULL;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    derive(password, len, salt, sizeof(salt), SCRYPT_LN, SCRYPT_R, SCRYPT_P,
		   key, sizeof(key)) < 0) {
		*error_r = "scrypt failed";
		return NULL;
	}
	salt64 = b64(salt, sizeof(salt));
	key64 = b64(key, sizeof(key));
	out = mf_xasprintf("$scrypt$ln=%d,r=%d,p=%d$%s$%s", SCRYPT_LN, SCRYPT_R,
			   SCRYPT_P, salt64, key64);
	free(salt64);
	free(key64);
	OPENSSL_cleanse(key, sizeof(key));
	return out;
}

int mf_password_verify(const char *hash, const char *password, size_t len,
		       const char **error_r)
{
	unsigned ln, r, p;
	int off = 0;
	unsigned char salt[64], want[64], got[64];
	int salt_len, key_len;
	const char *salt64, *key64;
	int ret = -1;

	if (sscanf(hash, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &off) != 3 || off == 0 ||
	    ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16) {
		*error_r = "malformed password hash";
		return -1;
	}
	salt64 = hash + off;
	key64 = strchr(salt64, '$');
	if (key64 == NULL ||
	    (salt_len = unb64(salt64, (size_t)(key64 - salt64), salt, sizeof(salt))) < 8 ||
	    (key_len = unb64(key64 + 1, strlen(key64 + 1), want, sizeof(want))) < 16) {
		*error_r = "malformed password hash";
		return -1;
	}
	if (len > MF_PASSWORD_MAX)
		return 0;
	if (derive(password, len, salt, (size_t)salt_len, ln, r, p, got, (size_t)key_len) < 0) {
		*error_r = "scrypt failed";
		goto out;
	}
	ret = CRYPTO_memcmp(got, want, (size_t)key_len) == 0 ? 1 : 0;
out:
	OPENSSL_cleanse(got, sizeof(got));
	return ret;
}

char *mf_password_generate(void)
{
	/* No 0/O/1/l/I: easy to read back from a terminal. */
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	const size_t groups = 4, group_len = 5; /* 20 chars from 57: ~116 bits */
	char *out = mf_xmalloc(groups * (group_len + 1));
	size_t o = 0;

	for (size_t g = 0; g < groups; g++) {
		for (size_t i = 0; i < group_len; i++) {
			unsigned char c;
			do {
				if (RAND_bytes(&c, 1) != 1)
					abort();
			} while (c >= 57 * 4); /* no modulo bias */
			out[o++] = alphabet[c % 57];
		}
		out[o++] = g + 1 < groups ? '-' : '\0';
	}
	return out;
}
