#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int pipefd[2];

static const char *read_log(void)
{
	static char line[4096];
	ssize_t n = read(pipefd[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	return line;
}

static int setup(void **state)
{
	if (pipe(pipefd) < 0)
		return -1;
	mf_log_init("svc");
	mf_log_set_fd(pipefd[1]);
	const char *err;
	return mf_log_apply_spec("info", &err);
}

static int teardown(void **state)
{
	close(pipefd[0]);
	close(pipefd[1]);
	return 0;
}

static void test_logfmt_quoting(void **state)
{
	mf_log(MF_LOG_INFO, "smtp-in", "c1", "delivered", "rcpt=%s size=%zu note=%s n=%d",
	       "a@b", (size_t)12, "two words \"q\"\n", -3);
	assert_string_equal(read_log(),
		"l=info m=delivered pkg=smtp-in cid=c1 rcpt=a@b size=12 "
		"note=\"two words \\\"q\\\"\\n\" n=-3\n");
	mf_log(MF_LOG_WARN, NULL, NULL, "no fields", NULL);
	assert_string_equal(read_log(), "l=warn m=\"no fields\" pkg=svc\n");
}

static void test_levels_per_package(void **state)
{
	const char *err = NULL;

	assert_false(mf_log_enabled("imap", MF_LOG_DEBUG));
	assert_int_equal(mf_log_apply_spec("warn,imap=debug", &err), 0);
	assert_true(mf_log_enabled("imap", MF_LOG_DEBUG));
	assert_false(mf_log_enabled("smtp-in", MF_LOG_INFO));
	/* a bad spec changes nothing */
	assert_int_equal(mf_log_apply_spec("info,imap=loud", &err), -1);
	assert_non_null(strstr(err, "unknown log level"));
	assert_false(mf_log_enabled("smtp-in", MF_LOG_INFO));
	assert_int_equal(mf_log_set_level(NULL, "info", &err), 0);
	assert_int_equal(mf_log_set_level("imap", "info", &err), 0);
	assert_int_equal(mf_log_set_level("imap", "nope", &err), -1);
	/* below the level: nothing written */
	mf_log(MF_LOG_DEBUG, "imap", NULL, "hidden", NULL);
	mf_log(MF_LOG_INFO, "imap", NULL, "shown", NULL);
	assert_string_equal(read_log(), "l=info m=shown pkg=imap\n");
}

static void test_trace_hides_auth_and_data(void **state)
{
	const char *err;

	assert_int_equal(mf_log_set_level("imap", "trace", &err), 0);
	mf_log_trace("imap", "c2", "C", MF_TRACE_AUTH, "secret", 6);
	assert_string_equal(read_log(), "l=trace m=C pkg=imap cid=c2 line=*** len=6\n");
	mf_log_trace("imap", "c2", "C", MF_TRACE_PROTO, "a NOOP", 6);
	assert_string_equal(read_log(), "l=trace m=C pkg=imap cid=c2 line=\"a NOOP\"\n");
	assert_int_equal(mf_log_set_level("imap", "traceauth", &err), 0);
	mf_log_trace("imap", "c2", "C", MF_TRACE_AUTH, "secret", 6);
	assert_string_equal(read_log(), "l=trace m=C pkg=imap cid=c2 line=secret\n");
	mf_log_trace("imap", "c2", "C", MF_TRACE_DATA, "body", 4);
	assert_string_equal(read_log(), "l=trace m=C pkg=imap cid=c2 line=*** len=4\n");
	assert_int_equal(mf_log_set_level("imap", "tracedata", &err), 0);
	mf_log_trace("imap", "c2", "C", MF_TRACE_DATA, "body", 4);
	assert_string_equal(read_log(), "l=trace m=C pkg=imap cid=c2 line=body\n");
	assert_int_equal(mf_log_set_level("imap", "info", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_quoting),
		cmocka_unit_test(test_levels_per_package),
		cmocka_unit_test(test_trace_hides_auth_and_data),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
