/* fuzz_sasl: libshared sasl.c and precis.c on arbitrary bytes.  The input
 * is split at 0xFF bytes into client messages fed to a server exchange of
 * the mechanism chosen by the first byte (SCRAM with a known account, so
 * the final-message parser is reached, and with channel binding data);
 * the same bytes go to the SCRAM client as server messages, to base64 and
 * to PRECIS.  Checks: no crash, statuses consistent with the account,
 * base64 round trips. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "precis.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_verify(void *ctx, const char *login, const char *password, size_t len,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	if (strcmp(login, "user") != 0 || len != 6 || memcmp(password, "pencil", 6) != 0)
		return 0;
	a_r->account = mf_xstrdup("acct");
	return 1;
}

static int fz_lookup(void *ctx, enum mf_sasl_lookup what, const char *login,
		     struct mf_sasl_account *a_r, const char **error_r)
{
	static const unsigned char salt[16] = "0123456789abcdef";

	if (strcmp(login, "user") != 0)
		return 0;
	a_r->account = mf_xstrdup("acct");
	if (what == MF_SASL_LOOKUP_SCRAM_SHA1 || what == MF_SASL_LOOKUP_SCRAM_SHA256) {
		/* few iterations: the fuzzer must stay fast */
		if (mf_sasl_scram_derive_salt(what == MF_SASL_LOOKUP_SCRAM_SHA1 ? MF_SASL_SHA1 :
					      MF_SASL_SHA256, "pencil", 6, salt, sizeof(salt), 2,
					      &a_r->scram, error_r) < 0)
			return -1;
		a_r->scram_set = true;
	} else if (what == MF_SASL_LOOKUP_CRAM_MD5) {
		mf_sasl_cram_derive("pencil", 6, &a_r->cram);
		a_r->cram_allowed = true;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mf_sasl_backend be = { NULL, fz_verify, fz_lookup };
	struct mf_sasl_server_settings set = { .cram_md5 = true, .allow_plaintext_password = true };
	struct mf_sasl_tls tls = { .active = true, .exporter_len = 32, .unique_len = 12 };
	struct mf_sasl_server *srv = NULL;
	struct mf_sasl_client *cl = NULL;
	const unsigned char *out;
	size_t out_len, pos = 1;
	enum mf_sasl_status st = MF_SASL_CONTINUE;
	const char *err;
	bool has;

	if (size < 1)
		return 0;
	memset(tls.exporter, 7, sizeof(tls.exporter));
	memset(tls.unique, 9, sizeof(tls.unique));
	if (mf_sasl_server_create((enum mf_sasl_mech)(data[0] % MF_SASL_MECH_COUNT), &set, &be,
				  &tls, data[0] & 0x80 ? "acct" : NULL, &srv, &err) == 0) {
		while (pos <= size && st == MF_SASL_CONTINUE) {
			const uint8_t *end = memchr(data + pos, 0xFF, size - pos);
			size_t n = end != NULL ? (size_t)(end - (data + pos)) : size - pos;

			st = mf_sasl_server_step(srv, data + pos, n, true, &out, &out_len);
			if (st == MF_SASL_SUCCESS && strcmp(mf_sasl_server_account(srv), "acct") != 0)
				abort();
			if (st == MF_SASL_CONTINUE && out == NULL)
				abort();
			pos += n + 1;
		}
		mf_sasl_server_free(&srv);
	}
	/* The client side on the same bytes as server messages. */
	if (mf_sasl_client_create(data[0] & 1 ? MF_SASL_SCRAM_SHA_256_PLUS : MF_SASL_SCRAM_SHA_1,
				  "user", "pencil", &tls, &cl, &err) == 0 &&
	    mf_sasl_client_initial(cl, &out, &out_len, &has, &err) == 0) {
		pos = 1;
		while (pos <= size) {
			const uint8_t *end = memchr(data + pos, 0xFF, size - pos);
			size_t n = end != NULL ? (size_t)(end - (data + pos)) : size - pos;

			if (mf_sasl_client_step(cl, data + pos, n, &out, &out_len, &err) < 0)
				break;
			pos += n + 1;
		}
	}
	mf_sasl_client_free(&cl);
	{
		unsigned char *dec;
		size_t dlen;

		if (mf_sasl_base64_decode((const char *)data, size, &dec, &dlen) == 0) {
			/* Unused trailing bits may be set (RFC 4648 3.5 lets decoders
			 * accept that), so compare the decoded bytes, not the text. */
			char *enc = mf_sasl_base64_encode(dec, dlen);
			unsigned char *dec2;
			size_t dlen2;

			if (strlen(enc) != size ||
			    mf_sasl_base64_decode(enc, strlen(enc), &dec2, &dlen2) < 0 ||
			    dlen2 != dlen || memcmp(dec, dec2, dlen) != 0)
				abort();
			free(dec2);
			free(enc);
			free(dec);
		}
	}
	{
		char *p = NULL, *p2 = NULL;
		size_t plen, p2len;

		if (mf_precis_password((const char *)data, size, &p, &plen, &err) == 0) {
			/* OpaqueString is idempotent */
			if (mf_precis_password(p, plen, &p2, &p2len, &err) < 0 || p2len != plen ||
			    memcmp(p, p2, plen) != 0)
				abort();
			free(p2);
		}
		free(p);
		if (mf_precis_username((const char *)data, size, &p, &err) == 0)
			free(p);
	}
	return 0;
}
