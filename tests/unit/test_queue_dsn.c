#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "services/queue/queue_dsn.h"

static const char original[] = "From: <a@example.com>\nTo: <b@example.org>\nSubject: hi\n\nbody line\n.dot\n";

static struct queue_dsn base(const struct queue_dsn_rcpt *rcpts, size_t n)
{
	struct queue_dsn d;

	memset(&d, 0, sizeof(d));
	d.hostname = "mail.example.com";
	d.to = "a@example.com";
	d.boundary = "b0undary";
	d.new_message_id = "dsn-1@mail.example.com";
	d.message_id = "<orig@example.com>";
	d.original = original;
	d.original_len = strlen(original);
	d.arrival_ms = 1700000000000LL;
	d.now_ms = 1700000600000LL;
	d.rcpts = rcpts;
	d.nrcpts = n;
	return d;
}

static void test_failed_multiline(void **state)
{
	struct queue_dsn_rcpt r = {
		.address = "b@example.org", .orcpt = "rfc822;B@example.org",
		.action = QUEUE_DSN_FAILED, .code = 550, .enhanced = "5.1.1",
		.text = "no such mailbox\ncheck the address", .remote_mta = "mx.example.org",
		.last_attempt_ms = 1700000500000LL,
	};
	struct queue_dsn d = base(&r, 1);
	struct mf_buf out;
	const char *error, *s;

	mf_buf_init(&out, QUEUE_DSN_MAX);
	assert_int_equal(queue_dsn_compose(&d, &out, &error), 0);
	s = mf_buf_cstr(&out);
	assert_non_null(strstr(s, "Subject: mail delivery failed\r\n"));
	assert_non_null(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"b0undary\""));
	/* RFC 3464 2.3.6: the full reply, each line with its code, folded. */
	assert_non_null(strstr(s, "Diagnostic-Code: smtp; 550-5.1.1 no such mailbox\r\n 550 5.1.1 check the address\r\n"));
	/* And in the human-readable part. */
	assert_non_null(strstr(s, "    550-5.1.1 no such mailbox\r\n    550 5.1.1 check the address"));
	assert_non_null(strstr(s, "Final-Recipient: rfc822; b@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
	assert_non_null(strstr(s, "Original-Recipient: rfc822;B@example.org\r\n"));
	assert_non_null(strstr(s, "Remote-MTA: dns; mx.example.org\r\n"));
	assert_non_null(strstr(s, "Reporting-MTA: dns; mail.example.com\r\n"));
	assert_non_null(strstr(s, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(s, "In-Reply-To: <orig@example.com>\r\n"));
	/* Without RET=FULL only the header comes back, with CRLF. */
	assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nFrom: <a@example.com>\r\nTo: <b@example.org>\r\nSubject: hi\r\n"));
	assert_null(strstr(s, "body line"));
	assert_non_null(strstr(s, "\r\n--b0undary--\r\n"));
	/* No bare LF anywhere. */
	for (size_t i = 0; i < out.len; i++)
		if (s[i] == '\n')
			assert_int_equal(s[i - 1], '\r');
	mf_buf_free(&out);
}

static void test_ret_full_and_delayed(void **state)
{
	struct queue_dsn_rcpt r[2] = {
		{ .address = "b@example.org", .action = QUEUE_DSN_DELAYED, .code = 451,
		  .enhanced = "", .text = "try later", .will_retry_until_ms = 1700100000000LL },
		{ .address = "c@example.org", .action = QUEUE_DSN_DELAYED, .code = 0,
		  .text = "connection refused" },
	};
	struct queue_dsn d = base(r, 2);
	struct mf_buf out;
	const char *error, *s;

	d.ret_full = true;
	d.envid = "env-1";
	mf_buf_init(&out, QUEUE_DSN_MAX);
	assert_int_equal(queue_dsn_compose(&d, &out, &error), 0);
	s = mf_buf_cstr(&out);
	assert_non_null(strstr(s, "Subject: mail delivery delayed\r\n"));
	assert_non_null(strstr(s, "Original-Envelope-Id: env-1\r\n"));
	/* No enhanced code: derived from the SMTP code's class. */
	assert_non_null(strstr(s, "Action: delayed\r\nStatus: 4.0.0\r\n"));
	assert_non_null(strstr(s, "Diagnostic-Code: smtp; 451 try later\r\n"));
	assert_non_null(strstr(s, "Will-Retry-Until: "));
	/* A connection error has no SMTP reply to quote. */
	assert_non_null(strstr(s, "Final-Recipient: rfc822; c@example.org\r\nAction: delayed\r\nStatus: 4.0.0\r\n\r\n"));
	assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n\r\nFrom: <a@example.com>"));
	assert_non_null(strstr(s, "body line\r\n.dot\r\n"));
	mf_buf_free(&out);
}

static void test_header_injection(void **state)
{
	struct queue_dsn_rcpt r = {
		.address = "b@example.org\r\nBcc: evil@example.net", .action = QUEUE_DSN_FAILED,
		.code = 550, .enhanced = "5.0.0", .text = "bad\r\x01reply",
	};
	struct queue_dsn d = base(&r, 1);
	struct mf_buf out;
	const char *error;

	mf_buf_init(&out, QUEUE_DSN_MAX);
	assert_int_equal(queue_dsn_compose(&d, &out, &error), 0);
	assert_null(strstr(mf_buf_cstr(&out), "\r\nBcc:"));
	assert_null(strchr(mf_buf_cstr(&out), '\x01'));
	mf_buf_free(&out);
}

static void test_errors(void **state)
{
	struct queue_dsn_rcpt r = { .address = "b@example.org", .action = QUEUE_DSN_FAILED };
	struct queue_dsn d = base(&r, 0);
	struct mf_buf out;
	const char *error = NULL;

	mf_buf_init(&out, QUEUE_DSN_MAX);
	assert_int_equal(queue_dsn_compose(&d, &out, &error), -1);
	assert_non_null(error);
	mf_buf_free(&out);
	/* A cap too small for the DSN is an error, not a cut message. */
	d = base(&r, 1);
	mf_buf_init(&out, 100);
	assert_int_equal(queue_dsn_compose(&d, &out, &error), -1);
	mf_buf_free(&out);
}

static void test_status(void **state)
{
	assert_string_equal(queue_dsn_status(550, "5.1.1", true), "5.1.1");
	assert_string_equal(queue_dsn_status(550, "5.1", true), "5.0.0");
	assert_string_equal(queue_dsn_status(550, "4.1.1", true), "4.1.1");
	assert_string_equal(queue_dsn_status(452, NULL, false), "4.0.0");
	assert_string_equal(queue_dsn_status(0, "", true), "5.0.0");
	assert_string_equal(queue_dsn_status(0, "", false), "4.0.0");
	assert_string_equal(queue_dsn_status(550, "5.1234.1", true), "5.0.0");
	assert_string_equal(queue_dsn_status(250, "", false), "2.0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_multiline),
		cmocka_unit_test(test_ret_full_and_delayed),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
