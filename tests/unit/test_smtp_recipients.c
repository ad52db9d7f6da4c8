/* Unit tests for smtp-in's recipient resolution (aliases, catch-all,
 * subaddressing, disabled domains, relaying, dedupe), the combined reply
 * after delivery, and the Received header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "domains.h"
#include "services/smtp-in/smtp_deliver.h"
#include "services/smtp-in/smtp_received.h"
#include "services/smtp-in/smtp_recipients.h"

static const char conf[] =
	"domain example.org {\n  catchall-separator +\n}\n"
	"domain catch.example {\n}\n"
	"domain old.example {\n  disabled yes\n}\n"
	"account mjl {\n  domain example.org\n  address mjl@example.org\n}\n"
	"account other {\n  domain example.org\n  address other@example.org\n}\n"
	"account catcher {\n  domain catch.example\n  address @catch.example\n}\n"
	"account moved {\n  domain old.example\n  address moved@old.example\n}\n"
	"alias team@example.org {\n  member mjl@example.org\n  member other@example.org\n"
	"  post-public yes\n}\n"
	"alias private@example.org {\n  member mjl@example.org\n  member other@example.org\n}\n"
	"alias solo@example.org {\n  member mjl@example.org\n  post-public yes\n}\n";

static struct mf_domains *d;

static int setup(void **state)
{
	const char *err;

	if (mf_domains_load_buf("domains.conf", conf, sizeof(conf) - 1, &d, &err) < 0) {
		print_error("%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	mf_domains_unref(&d);
	return 0;
}

/* Resolves to for sender ("" for the null sender); returns the reply or
 * "ok:" followed by the accounts added. */
static const char *resolve(struct smtp_targets *t, const char *to, const char *sender)
{
	static char result[512];
	struct mf_address a, s;
	const char *err;
	size_t added, before = t->count;
	bool postmaster = strcmp(to, "postmaster") == 0;
	int r;

	if (!postmaster)
		assert_int_equal(mf_address_parse(to, strlen(to), &a, &err), 0);
	else
		memset(&a, 0, sizeof(a));
	if (sender[0] != '\0')
		assert_int_equal(mf_address_parse(sender, strlen(sender), &s, &err), 0);
	r = smtp_recipients_resolve(d, "example.org", &a, postmaster,
				    sender[0] != '\0' ? &s : NULL, 0, NULL, t, &added, &err);
	if (r < 0) {
		snprintf(result, sizeof(result), "%s", err);
	} else {
		size_t pos = (size_t)snprintf(result, sizeof(result), "ok:");
		assert_int_equal(added, t->count - before);
		for (size_t i = before; i < t->count; i++)
			pos += (size_t)snprintf(result + pos, sizeof(result) - pos, " %s=%s",
						t->items[i].account, t->items[i].address);
	}
	if (!postmaster)
		mf_address_free(&a);
	if (sender[0] != '\0')
		mf_address_free(&s);
	return result;
}

static void test_resolve(void **state)
{
	static const struct { const char *to, *sender, *want; } cases[] = {
		{ "mjl@example.org", "x@ext.example", "ok: mjl=mjl@example.org" },
		{ "MJL@Example.ORG", "x@ext.example", "ok: mjl=mjl@example.org" },
		{ "mjl+tag@example.org", "", "ok: mjl=mjl@example.org" },
		{ "anything@catch.example", "x@ext.example", "ok: catcher=@catch.example" },
		{ "nobody@example.org", "x@ext.example", "550 5.1.1 no such user here" },
		{ "nobody+mjl@example.org", "x@ext.example", "550 5.1.1 no such user here" },
		{ "victim@ext.example", "mjl@example.org",
		  "550 5.7.1 relaying denied: the domain is not served here" },
		{ "x@[192.0.2.1]", "x@ext.example",
		  "550 5.7.1 relaying denied: address literals are not accepted here" },
		{ "moved@old.example", "x@ext.example",
		  "450 4.2.1 the domain is temporarily disabled, try again later" },
		{ "team@example.org", "x@ext.example",
		  "ok: mjl=mjl@example.org other=other@example.org" },
		{ "team@example.org", "", "ok: mjl=mjl@example.org other=other@example.org" },
		/* the sending member gets no copy through the list */
		{ "team@example.org", "mjl@example.org", "ok: other=other@example.org" },
		{ "team@example.org", "mjl+x@example.org", "ok: other=other@example.org" },
		{ "private@example.org", "x@ext.example",
		  "550 5.7.1 only members may send to this list" },
		{ "private@example.org", "", "550 5.7.1 only members may send to this list" },
		{ "private@example.org", "other@example.org", "ok: mjl=mjl@example.org" },
		{ "solo@example.org", "mjl@example.org", "ok:" },
		{ "postmaster", "x@ext.example", "550 5.1.1 no such user here" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_targets t = { 0 };
		const char *got = resolve(&t, cases[i].to, cases[i].sender);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu %s from %s: got %s", i, cases[i].to, cases[i].sender, got);
		smtp_targets_clear(&t);
	}
}

static void test_dedupe(void **state)
{
	struct smtp_targets t = { 0 };

	assert_string_equal(resolve(&t, "mjl@example.org", "x@ext.example"),
			    "ok: mjl=mjl@example.org");
	/* mjl already has it: only other is new */
	assert_string_equal(resolve(&t, "team@example.org", "x@ext.example"),
			    "ok: other=other@example.org");
	assert_string_equal(resolve(&t, "mjl+again@example.org", "x@ext.example"), "ok:");
	assert_int_equal(t.count, 2);
	smtp_targets_truncate(&t, 1);
	assert_int_equal(t.count, 1);
	smtp_targets_clear(&t);
}

static void test_combine(void **state)
{
	struct smtp_deliver_outcome ok = { false, 250, "2.0.0", "delivered" };
	struct smtp_deliver_outcome temp = { true, 451, "4.3.0", "try later" };
	struct smtp_deliver_outcome quota = { false, 552, "5.2.2", "mailbox full" };
	struct smtp_deliver_outcome o[3];
	char *r;

	o[0] = ok;
	o[1] = ok;
	r = smtp_deliver_combine(o, 2);
	assert_string_equal(r, "250 2.0.0 message delivered");
	free(r);
	o[1] = temp;
	r = smtp_deliver_combine(o, 2);
	assert_string_equal(r, "451 4.3.0 try later (some recipients have it already)");
	free(r);
	o[0] = quota;
	o[2] = ok;
	r = smtp_deliver_combine(o, 3);
	/* temporary beats permanent */
	assert_string_equal(r, "451 4.3.0 try later (some recipients have it already)");
	free(r);
	o[1] = ok;
	r = smtp_deliver_combine(o, 3);
	assert_string_equal(r, "552 5.2.2 mailbox full (for some of the recipients)");
	free(r);
	r = smtp_deliver_combine(o, 1);
	assert_string_equal(r, "552 5.2.2 mailbox full");
	free(r);
}

static void test_received(void **state)
{
	struct smtp_received_info i = {
		.helo = "client.example", .remote_ip = "192.0.2.1", .hostname = "mx.example.org",
		.esmtp = true, .tls_version = "TLSv1.3", .tls_cipher = "TLS_AES_128_GCM_SHA256",
		.message_id = "abc", .for_rcpt = "mjl@example.org", .when = 0,
	};
	char *h = smtp_received_header(&i);

	assert_string_equal(h, "Received: from client.example ([192.0.2.1])\r\n"
			    "\tby mx.example.org (mailfleet) with ESMTPS (TLSv1.3 TLS_AES_128_GCM_SHA256)\r\n"
			    "\tid abc\r\n\tfor <mjl@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	free(h);
	i.helo = "evil\r\nX-Injected: yes";
	i.tls_version = NULL;
	i.for_rcpt = NULL;
	i.smtputf8 = true;
	h = smtp_received_header(&i);
	assert_string_equal(h, "Received: from evil??X-Injected:?yes ([192.0.2.1])\r\n"
			    "\tby mx.example.org (mailfleet) with UTF8SMTP\r\n"
			    "\tid abc; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	free(h);
	assert_string_equal(smtp_received_protocol(false, false, false), "SMTP");
	assert_string_equal(smtp_received_protocol(true, true, true), "UTF8SMTPS");
}

static void test_header_prefix(void **state)
{
	struct smtp_mail m = { .null_sender = true };
	char *p = smtp_deliver_header_prefix(&m, "mjl@example.org", NULL);

	assert_string_equal(p, "Return-Path: <>\r\nDelivered-To: mjl@example.org\r\n");
	free(p);
	/* Authentication-Results below the final-delivery fields, above the
	 * Received field the blob starts with. */
	p = smtp_deliver_header_prefix(&m, "mjl@example.org",
				       "Authentication-Results: mx.example.org;\r\n\tdkim=none\r\n");
	assert_string_equal(p, "Return-Path: <>\r\nDelivered-To: mjl@example.org\r\n"
			    "Authentication-Results: mx.example.org;\r\n\tdkim=none\r\n");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_combine),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_header_prefix),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
