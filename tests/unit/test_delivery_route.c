#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "services/delivery/delivery_route.h"

static void test_transport(void **state)
{
	struct delivery_transport t;
	const char *error;

	assert_int_equal(delivery_transport_parse("", &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_DIRECT);
	assert_int_equal(delivery_transport_parse("direct", &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_DIRECT);
	assert_int_equal(delivery_transport_parse("local", &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_LOCAL);
	assert_int_equal(delivery_transport_parse("smtp:127.0.0.1:2525", &t, &error), 0);
	assert_int_equal(t.kind, DELIVERY_TRANSPORT_SMTP);
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 2525);
	assert_int_equal(delivery_transport_parse("smtp:[::1]:25", &t, &error), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(t.port, 25);

	static const char *const bad[] = {
		"smtp:", "smtp:127.0.0.1", "smtp:127.0.0.1:0", "smtp:127.0.0.1:65536",
		"smtp:127.0.0.1:25x", "smtp:[::1:25", "smtp:relay.example.org:25", "socks:1",
		"smtp::25", "SMTP:127.0.0.1:25",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (delivery_transport_parse(bad[i], &t, &error) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(error);
	}
}

static void test_routes(void **state)
{
	struct delivery_route *routes = NULL;
	const struct delivery_route *r;
	size_t n = 0;
	const char *error;

	assert_int_equal(delivery_routes_parse(
		"from-domain=a.example to-domain=b.example transport=smtp:127.0.0.1:1;"
		" to-domain=B.example min-attempt=3 transport=smtp:127.0.0.1:2 ;"
		"to-domain=b.example transport=local; ;"
		"transport=smtp:127.0.0.1:4", &routes, &n, &error), 0);
	assert_int_equal(n, 4);
	/* First match wins; domains without case. */
	r = delivery_route_match(routes, n, "A.example", "b.example", 1);
	assert_string_equal(r->transport, "smtp:127.0.0.1:1");
	/* Attempt-based routes: after 3 attempts take the second. */
	r = delivery_route_match(routes, n, "c.example", "b.example", 2);
	assert_string_equal(r->transport, "local");
	r = delivery_route_match(routes, n, "c.example", "b.example", 3);
	assert_string_equal(r->transport, "smtp:127.0.0.1:2");
	/* A route without conditions matches the rest. */
	r = delivery_route_match(routes, n, "c.example", "d.example", 1);
	assert_string_equal(r->transport, "smtp:127.0.0.1:4");
	delivery_routes_free(&routes, n);
	assert_null(routes);
	assert_null(delivery_route_match(NULL, 0, "a", "b", 1));

	static const char *const bad[] = {
		"to-domain=x", "transport=bogus", "to-domain transport=local",
		"to-domain=a to-domain=b transport=local", "min-attempt=x transport=local",
		"color=red transport=local",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (delivery_routes_parse(bad[i], &routes, &n, &error) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(error);
		assert_non_null(strstr(error, "route 1"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
