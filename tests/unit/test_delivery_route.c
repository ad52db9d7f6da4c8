/* Transport selection: the message's own transport, then the routes of
 * domains.conf, then direct (or local in the embedded default). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "services/delivery/delivery_route.h"

static const char conf[] =
	"domain example.org {\n"
	"}\n"
	"account mjl {\n"
	"    domain example.org\n"
	"    address mjl@example.org\n"
	"    route to-domain b.example min-attempt 4 transport third\n"
	"}\n"
	"transport relay {\n"
	"    smtp 127.0.0.1:2525\n"
	"}\n"
	"transport third {\n"
	"    submission smtp.third.example:587\n"
	"    auth-user u\n"
	"    auth-password-file pw\n"
	"}\n"
	"transport proxy {\n"
	"    socks5 [::1]:1080\n"
	"}\n"
	"route to-domain b.example transport relay\n"
	"route to-domain c.example transport proxy\n"
	"route to-domain l.example transport local\n";

static void test_select(void **state)
{
	struct mf_domains *d = NULL;
	struct delivery_transport t;
	const char *error = NULL;

	assert_int_equal(mf_domains_load_buf("d.conf", conf, strlen(conf), &d, &error), 0);
	/* Global route, and the account's route from the 4th attempt. */
	assert_int_equal(delivery_transport_select(d, "", "mjl", "example.org", "b.example", 3,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_SMTP);
	assert_string_equal(t.name, "relay");
	assert_int_equal(t.conf->addr.port, 2525);
	assert_int_equal(delivery_transport_select(d, "", "mjl", "example.org", "b.example", 4,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_SUBMISSION);
	assert_string_equal(t.name, "third");
	assert_int_equal(delivery_transport_select(d, "", "", "example.org", "c.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_SOCKS5);
	assert_int_equal(delivery_transport_select(d, "", "mjl", "example.org", "l.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_LOCAL);
	assert_null(t.conf);
	/* No route: direct, or local in the embedded default. */
	assert_int_equal(delivery_transport_select(d, "", "mjl", "example.org", "x.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_DIRECT);
	assert_int_equal(delivery_transport_select(d, "", "mjl", "example.org", "x.example", 1,
						   true, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_LOCAL);
	/* The message's own transport wins over routes. */
	assert_int_equal(delivery_transport_select(d, "direct", "mjl", "example.org", "b.example",
						   1, true, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_DIRECT);
	assert_int_equal(delivery_transport_select(d, "third", "", "x.example", "x.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_SUBMISSION);
	/* A name that is not (or no longer) configured. */
	error = NULL;
	assert_int_equal(delivery_transport_select(d, "gone", "", "x.example", "x.example", 1,
						   false, &t, &error), -1);
	assert_non_null(strstr(error, "gone"));
	mf_domains_unref(&d);
}

static void test_no_domains(void **state)
{
	struct delivery_transport t;
	const char *error = NULL;

	assert_int_equal(delivery_transport_select(NULL, "", "a", "a.example", "b.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_DIRECT);
	assert_int_equal(delivery_transport_select(NULL, "local", "a", "a.example", "b.example", 1,
						   false, &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_LOCAL);
	assert_int_equal(delivery_transport_select(NULL, "relay", "a", "a.example", "b.example", 1,
						   false, &t, &error), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_no_domains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
