#include "keygen.h"
#include "buf.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static EVP_PKEY *generate(enum mf_keygen_algorithm alg)
{
	if (alg == MF_KEYGEN_ED25519)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static int fsync_dir_of(const char *path)
{
	char *copy = mf_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	int ret = -1;

	free(copy);
	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

int mf_keygen_write(const char *path, enum mf_keygen_algorithm alg, const char **error_r)
{
	char *tmp = mf_xasprintf("%s.tmp%ld", path, (long)getpid());
	EVP_PKEY *key = NULL;
	FILE *f = NULL;
	int fd = -1, ret = -1;

	if (access(path, F_OK) == 0) {
		*error_r = mf_errorf("%s: key file exists already", path);
		goto out;
	}
	if ((key = generate(alg)) == NULL) {
		*error_r = "key generation failed";
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		*error_r = mf_errorf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		*error_r = mf_errorf("%s: writing key failed", tmp);
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		*error_r = mf_errorf("%s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (link(tmp, path) < 0) { /* link, not rename: never replace a key */
		*error_r = mf_errorf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (fsync_dir_of(path) < 0) {
		*error_r = mf_errorf("%s: fsync of directory: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	EVP_PKEY_free(key);
	return ret;
}

char *mf_keygen_dkim_record(const char *path, const char **error_r)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL, raw[64];
	char *b64 = NULL, *out = NULL;
	const char *k;
	size_t len = 0;

	if (f == NULL) {
		*error_r = mf_errorf("%s: %s", path, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL) {
		*error_r = mf_errorf("%s: not a PEM private key", path);
		return NULL;
	}
	if (EVP_PKEY_get_id(key) == EVP_PKEY_ED25519) {
		/* RFC 8463 4.2: the raw 32-byte public key, not SPKI. */
		len = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1)
			goto fail;
		k = "ed25519";
		b64 = mf_xmalloc(4 * ((len + 2) / 3) + 1);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)len);
	} else if (EVP_PKEY_get_id(key) == EVP_PKEY_RSA) {
		int n = i2d_PUBKEY(key, &der); /* RFC 6376 3.6.1: SubjectPublicKeyInfo */
		if (n <= 0)
			goto fail;
		k = "rsa";
		b64 = mf_xmalloc(4 * (((size_t)n + 2) / 3) + 1);
		EVP_EncodeBlock((unsigned char *)b64, der, n);
	} else {
		goto fail;
	}
	out = mf_xasprintf("v=DKIM1; k=%s; p=%s", k, b64);
	goto done;
fail:
	*error_r = mf_errorf("%s: unsupported key type", path);
done:
	OPENSSL_free(der);
	free(b64);
	EVP_PKEY_free(key);
	return out;
}
