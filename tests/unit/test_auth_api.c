/* auth.v1.verify and auth.v1.sign without NATS: requests built as other
 * services build them, answered against the memory resolver, a temporary
 * blob store and a temporary domains.conf with generated keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "buf.h"
#include "domains.h"
#include "keygen.h"
#include "services/dnsauth/auth_api.h"

#include "auth.pb-c.h"

static char dir[] = "/tmp/mf-authapi-XXXXXX";
static char *rec_ed, *rec_rsa;

static void response_clear(struct mf_bus_response *resp)
{
	free(resp->message);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

static struct dns_resolver *zone(void)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const char *err = NULL;
	static const char *const recs[][3] = {
		{ "example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all" },
		{ "mail.example.org", "TXT", "v=spf1 a -all" },
		{ "mail.example.org", "A", "192.0.2.10" },
		{ "10.2.0.192.in-addr.arpa", "PTR", "mail.example.org" },
		{ "_dmarc.example.org", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@example.org" },
		{ "_dmarc.example.net", "TXT", "v=DMARC1; p=quarantine" },
		{ "example.net", "TXT", "v=spf1 -all" },
	};
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
		assert_int_equal(dns_memory_add(r, recs[i][0], dns_type_by_name(recs[i][1]), recs[i][2],
						&err), 0);
	assert_int_equal(dns_memory_add(r, "ed._domainkey.example.org", DNS_TYPE_TXT, rec_ed, &err), 0);
	assert_int_equal(dns_memory_add(r, "rsa._domainkey.example.org", DNS_TYPE_TXT, rec_rsa, &err), 0);
	return r;
}

static const char plain_msg[] =
	"From: Mjl <mjl@example.org>\r\nTo: x@example.com\r\nSubject: hi\r\n"
	"Message-ID: <m1@example.org>\r\n\r\nHello.\r\n";

static Mailfleet__V1__VerifyReply *verify(const struct auth_api *api, const char *ip,
					  const char *helo, const char *mail_from, const char *msg,
					  const char *blob_key, struct mf_bus_response *resp)
{
	Mailfleet__V1__VerifyRequest req = MAILFLEET__V1__VERIFY_REQUEST__INIT;
	char *rcpts[] = { (char *)"x@example.com" };
	uint8_t buf[65536];
	size_t n;

	req.client_ip = (char *)ip;
	req.helo = (char *)helo;
	req.mail_from = (char *)mail_from;
	req.recipients = rcpts;
	req.n_recipients = 1;
	if (blob_key != NULL)
		req.blob_key = (char *)blob_key;
	if (msg != NULL) {
		req.message.data = (uint8_t *)msg;
		req.message.len = strlen(msg);
	}
	n = mailfleet__v1__verify_request__get_packed_size(&req);
	assert_true(n < sizeof(buf));
	mailfleet__v1__verify_request__pack(&req, buf);
	memset(resp, 0, sizeof(*resp));
	auth_api_verify(api, "test", buf, n, resp);
	if (resp->status != MF_BUS_OK)
		return NULL;
	return mailfleet__v1__verify_reply__unpack(NULL, resp->body_len, resp->body);
}

/* Signs msg through auth.v1.sign for domain; returns the reply (or NULL
 * with resp holding the status). */
static Mailfleet__V1__SignReply *sign(const struct auth_api *api, const char *domain,
				      const char *msg, struct mf_bus_response *resp)
{
	Mailfleet__V1__SignRequest req = MAILFLEET__V1__SIGN_REQUEST__INIT;
	uint8_t buf[65536];
	size_t n;

	req.domain = (char *)domain;
	req.message.data = (uint8_t *)msg;
	req.message.len = strlen(msg);
	n = mailfleet__v1__sign_request__get_packed_size(&req);
	mailfleet__v1__sign_request__pack(&req, buf);
	memset(resp, 0, sizeof(*resp));
	auth_api_sign(api, "test", buf, n, resp);
	if (resp->status != MF_BUS_OK)
		return NULL;
	return mailfleet__v1__sign_reply__unpack(NULL, resp->body_len, resp->body);
}

static void test_sign_and_verify(void **state)
{
	struct dns_resolver *r = zone();
	struct auth_api api = { .r = r, .hostname = "mx.example.com" };
	struct mf_bus_response resp;
	Mailfleet__V1__SignReply *sr;
	Mailfleet__V1__VerifyReply *vr;
	char *signed_msg;

	sr = sign(&api, "Example.ORG", plain_msg, &resp);
	if (sr == NULL)
		fail_msg("sign: %s", resp.message);
	assert_int_equal(sr->n_selectors, 2);
	assert_string_equal(sr->selectors[0], "ed");
	assert_string_equal(sr->selectors[1], "rsa");
	assert_non_null(strstr(sr->headers, "a=ed25519-sha256"));
	assert_non_null(strstr(sr->headers, "a=rsa-sha256"));
	/* the selector's header list and expiration from domains.conf */
	assert_non_null(strstr(sr->headers, "h=From:From:Subject:Subject;"));
	assert_non_null(strstr(sr->headers, " x="));
	signed_msg = mf_xasprintf("%s%s", sr->headers, plain_msg);
	mailfleet__v1__sign_reply__free_unpacked(sr, NULL);
	response_clear(&resp);

	/* From an allowed IP with matching PTR: everything passes. */
	vr = verify(&api, "192.0.2.10", "mail.example.org", "bounce@example.org", signed_msg, NULL,
		    &resp);
	if (vr == NULL)
		fail_msg("verify: %s", resp.message);
	assert_int_equal(vr->spf_mail_from->result, MAILFLEET__V1__SPF_RESULT__SPF_RESULT_PASS);
	assert_int_equal(vr->spf_helo->result, MAILFLEET__V1__SPF_RESULT__SPF_RESULT_PASS);
	assert_int_equal(vr->iprev->result, MAILFLEET__V1__IPREV_RESULT__IPREV_RESULT_PASS);
	assert_int_equal(vr->n_dkim, 2);
	assert_int_equal(vr->dkim[0]->result, MAILFLEET__V1__DKIM_RESULT__DKIM_RESULT_PASS);
	assert_int_equal(vr->dkim[1]->result, MAILFLEET__V1__DKIM_RESULT__DKIM_RESULT_PASS);
	assert_int_equal(vr->dmarc->result, MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS);
	assert_true(vr->dmarc->spf_aligned);
	assert_true(vr->dmarc->dkim_aligned);
	assert_string_equal(vr->from_domain, "example.org");
	const char *ar = vr->authentication_results;
	assert_int_equal(strncmp(ar, "Authentication-Results: mx.example.com;\r\n\t", 42), 0);
	assert_non_null(strstr(ar, "iprev=pass (no dnssec) policy.iprev=192.0.2.10 (mail.example.org)"));
	assert_non_null(strstr(ar, "spf=pass (no dnssec) smtp.mailfrom=example.org"));
	assert_non_null(strstr(ar, "spf=pass (no dnssec) smtp.helo=mail.example.org"));
	assert_non_null(strstr(ar, "dkim=pass (no dnssec) header.d=example.org header.i=@example.org header.s=ed header.a=ed25519-sha256 header.b="));
	assert_non_null(strstr(ar, "dmarc=pass (p=reject, no dnssec) header.from=example.org policy.dmarc=none\r\n"));
	/* folded: no line reaches RFC 5322's 998 octets, every line but the
	 * first starts with a tab */
	for (const char *l = ar, *e; (e = strstr(l, "\r\n")) != NULL; l = e + 2) {
		assert_true(e - l < 998);
		if (l != ar && *l != '\0')
			assert_int_equal(*l, '\t');
	}
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);

	/* From elsewhere, signatures broken: DMARC fails with reject. */
	char *bad = mf_xasprintf("%s%s", "", signed_msg);
	char *p = strstr(bad, "Hello.");
	p[0] = 'J';
	vr = verify(&api, "198.51.100.7", "evil.example", "x@example.org", bad, NULL, &resp);
	assert_non_null(vr);
	assert_int_equal(vr->spf_mail_from->result, MAILFLEET__V1__SPF_RESULT__SPF_RESULT_FAIL);
	assert_int_equal(vr->dkim[0]->result, MAILFLEET__V1__DKIM_RESULT__DKIM_RESULT_FAIL);
	assert_int_equal(vr->dmarc->result, MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_FAIL);
	assert_int_equal(vr->dmarc->disposition, MAILFLEET__V1__DMARC_POLICY__DMARC_POLICY_REJECT);
	assert_non_null(strstr(vr->authentication_results, "dkim=fail (no dnssec) reason=\"body hash does not match\" header.d=example.org"));
	assert_non_null(strstr(vr->authentication_results, "dmarc=fail (p=reject, no dnssec) header.from=example.org policy.dmarc=reject"));
	assert_non_null(strstr(vr->authentication_results, "iprev=permerror"));
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);
	free(bad);

	/* Unsigned, null reverse-path, client without address: none. */
	vr = verify(&api, "", "", "", "From: a@nowhere.example\r\n\r\nx\r\n", NULL, &resp);
	assert_non_null(vr);
	assert_null(vr->iprev);
	assert_int_equal(vr->n_dkim, 0);
	assert_int_equal(vr->dmarc->result, MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_NONE);
	assert_string_equal(vr->authentication_results,
			    "Authentication-Results: mx.example.com;\r\n\tdkim=none;\r\n\tdmarc=none header.from=nowhere.example\r\n");
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);

	/* A HELO with odd characters is quoted in the header. */
	vr = verify(&api, "198.51.100.7", "[198.51.100.7]", "", plain_msg, NULL, &resp);
	assert_non_null(vr);
	assert_non_null(strstr(vr->authentication_results, "smtp.helo=\"[198.51.100.7]\""));
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);

	free(signed_msg);
	dns_resolver_free(&r);
}

static void test_blob_and_errors(void **state)
{
	struct dns_resolver *r = zone();
	struct auth_api api = { .r = r, .hostname = "mx.example.com" };
	struct mf_bus_response resp;
	Mailfleet__V1__VerifyReply *vr;
	const char *err = NULL;
	char *blobdir = mf_xasprintf("%s/blobs", dir);

	assert_int_equal(mkdir(blobdir, 0700), 0);
	assert_int_equal(mf_blob_store_open(blobdir, &api.blobs, &err), 0);
	assert_int_equal(mf_blob_put(api.blobs, "incoming/m1", plain_msg, strlen(plain_msg), &err), 0);
	vr = verify(&api, "192.0.2.10", "mail.example.org", "a@example.org", NULL, "incoming/m1", &resp);
	assert_non_null(vr);
	assert_int_equal(vr->dmarc->result, MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_PASS);
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);

	assert_null(verify(&api, "192.0.2.10", "h", "a@example.org", NULL, "incoming/none", &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	assert_null(verify(&api, "192.0.2.10", "h", "a@example.org", NULL, "../etc/passwd", &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	/* over limits */
	char long_helo[AUTH_HELO_MAX + 2];
	memset(long_helo, 'a', sizeof(long_helo) - 1);
	long_helo[sizeof(long_helo) - 1] = '\0';
	assert_null(verify(&api, "192.0.2.10", long_helo, "", plain_msg, NULL, &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	/* garbage */
	auth_api_verify(&api, "x", (const uint8_t *)"\xff\xff\xff", 3, &resp);
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	auth_api_sign(&api, "x", (const uint8_t *)"\xff\xff\xff", 3, &resp);
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	/* a DNS outage gives temperror results, not "none" */
	struct dns_resolver *down = dns_resolver_create_memory();
	dns_memory_add_timeout(down, "example.org", 0);
	dns_memory_add_timeout(down, "_dmarc.example.org", 0);
	dns_memory_add_timeout(down, "10.2.0.192.in-addr.arpa", 0);
	api.r = down;
	vr = verify(&api, "192.0.2.10", "mail.example.org", "a@example.org", plain_msg, NULL, &resp);
	assert_non_null(vr);
	assert_int_equal(vr->spf_mail_from->result, MAILFLEET__V1__SPF_RESULT__SPF_RESULT_TEMPERROR);
	assert_int_equal(vr->iprev->result, MAILFLEET__V1__IPREV_RESULT__IPREV_RESULT_TEMPERROR);
	assert_int_equal(vr->dmarc->result, MAILFLEET__V1__DMARC_RESULT__DMARC_RESULT_TEMPERROR);
	mailfleet__v1__verify_reply__free_unpacked(vr, NULL);
	response_clear(&resp);
	dns_resolver_free(&down);
	api.r = r;

	/* signing refusals */
	assert_null(sign(&api, "example.com", plain_msg, &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	assert_non_null(strstr(resp.message, "not configured"));
	response_clear(&resp);
	assert_null(sign(&api, "nokeys.example", plain_msg, &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	assert_non_null(strstr(resp.message, "no DKIM selectors"));
	response_clear(&resp);
	assert_null(sign(&api, "lost.example", plain_msg, &resp));
	assert_int_equal(resp.status, MF_BUS_TEMPORARY);
	response_clear(&resp);
	assert_null(sign(&api, "example.org", "Subject: no from\r\n\r\nx\r\n", &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);
	assert_null(sign(&api, "bad domain!", plain_msg, &resp));
	assert_int_equal(resp.status, MF_BUS_PERMANENT);
	response_clear(&resp);

	mf_blob_store_free(&api.blobs);
	dns_resolver_free(&r);
	free(blobdir);
}

static int setup(void **state)
{
	const char *err = NULL;
	char *path;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return -1;
	path = mf_xasprintf("%s/dkim", dir);
	mkdir(path, 0700);
	free(path);
	path = mf_xasprintf("%s/dkim/ed.pem", dir);
	if (mf_keygen_write(path, MF_KEYGEN_ED25519, &err) < 0)
		return -1;
	rec_ed = mf_keygen_dkim_record(path, &err);
	free(path);
	path = mf_xasprintf("%s/dkim/rsa.pem", dir);
	if (mf_keygen_write(path, MF_KEYGEN_RSA2048, &err) < 0)
		return -1;
	rec_rsa = mf_keygen_dkim_record(path, &err);
	free(path);
	path = mf_xasprintf("%s/domains.conf", dir);
	f = fopen(path, "w");
	fprintf(f, "domain example.org {\n"
		   "    dkim {\n"
		   "        selector ed {\n"
		   "            algorithm ed25519\n"
		   "            key-file dkim/ed.pem\n"
		   "            headers From,Subject\n"
		   "            expiration 72h\n"
		   "        }\n"
		   "        selector rsa {\n"
		   "            algorithm rsa\n"
		   "            key-file dkim/rsa.pem\n"
		   "        }\n"
		   "        sign ed rsa\n"
		   "    }\n"
		   "}\n"
		   "domain nokeys.example {\n}\n"
		   "domain lost.example {\n"
		   "    dkim {\n"
		   "        selector gone {\n"
		   "            algorithm rsa\n"
		   "            key-file dkim/gone.pem\n"
		   "        }\n"
		   "        sign gone\n"
		   "    }\n"
		   "}\n"
		   "account mjl {\n    domain example.org\n    address mjl@example.org\n}\n");
	fclose(f);
	if (mf_domains_reload(path, &err) < 0) {
		fprintf(stderr, "domains: %s\n", err);
		return -1;
	}
	free(path);
	return 0;
}

static int teardown(void **state)
{
	char *cmd = mf_xasprintf("rm -rf %s", dir);
	int rc = system(cmd);

	free(cmd);
	free(rec_ed);
	free(rec_rsa);
	mf_domains_clear_current();
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_blob_and_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
