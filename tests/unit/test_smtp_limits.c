/* Unit tests for smtp-in's admission limits: the ratelimit config keys,
 * the limits derived from them, connection slots per IP, the tarpit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "services/smtp-in/smtp_limits.h"
#include "services/smtp-in/smtp_server.h"

static struct mf_config *load(const char *extra, const char **err)
{
	char text[2048];
	struct mf_config *c = NULL;

	snprintf(text, sizeof(text), "hostname mx.example.org\ndata-dir /tmp\n%s", extra);
	if (mf_config_load_buf("/tmp/mailfleet.conf", text, strlen(text), NULL, &c, err) < 0)
		return NULL;
	return c;
}

static void test_config_keys(void **state)
{
	const char *err;
	struct mf_config *c = load("ratelimit {\n smtp-in-connections 10/1m 100/1d\n"
				   " smtp-in-messages none\n}\n", &err);
	struct smtp_server srv;

	assert_non_null(c);
	assert_true(c->smtpin_conn_rates_set);
	assert_int_equal(c->smtpin_conn_rates_count, 2);
	assert_int_equal(c->smtpin_conn_rates[0].count, 10);
	assert_int_equal(c->smtpin_conn_rates[0].period_ms, 60000);
	assert_int_equal(c->smtpin_conn_rates[1].count, 100);
	assert_int_equal(c->smtpin_conn_rates[1].period_ms, 86400000);
	assert_true(c->smtpin_msg_rates_set);
	assert_int_equal(c->smtpin_msg_rates_count, 0);

	smtp_server_init(&srv, NULL, c);
	assert_int_equal(srv.conn_limits_count, 2);
	assert_int_equal(srv.msg_limits_count, 0);
	/* /32, /26 (x5), /21 (x20) */
	assert_int_equal(srv.conn_limits[0].v4[0].count, 10);
	assert_int_equal(srv.conn_limits[0].v4[1].count, 50);
	assert_int_equal(srv.conn_limits[0].v4[2].count, 200);
	assert_int_equal(srv.conn_limits[1].v6[2].count, 2000);
	assert_string_equal(srv.conn_limits[0].v4[1].name, "smtpin-conn0-v4-26");
	assert_string_equal(srv.conn_limits[1].v6[0].name, "smtpin-conn1-v6-64");
	/* without Redis, nothing is limited */
	assert_null(smtp_limits_rate(&srv, "cid", "192.0.2.1", false));
	smtp_server_deinit(&srv);
	mf_config_free(&c);

	/* defaults */
	c = load("", &err);
	assert_non_null(c);
	smtp_server_init(&srv, NULL, c);
	assert_int_equal(srv.conn_limits_count, 2);
	assert_int_equal(srv.msg_limits_count, 2);
	assert_int_equal(srv.msg_limits[0].v4[0].count, 120);
	assert_int_equal(srv.msg_limits[1].v4[0].period_msecs, 86400000);
	smtp_server_deinit(&srv);
	mf_config_free(&c);

	assert_null(load("ratelimit {\n smtp-in-connections 10\n}\n", &err));
	assert_non_null(strstr(err, "ratelimit.smtp-in-connections"));
	assert_non_null(strstr(err, "bad rate 10"));
	assert_null(load("ratelimit {\n smtp-in-messages 1/1m 2/1h 3/1d\n}\n", &err));
}

static void test_ip_slots(void **state)
{
	const char *err;
	struct mf_config *c = load("limits {\n max-connections-per-ip 2\n}\n", &err);
	struct smtp_server srv;

	assert_non_null(c);
	smtp_server_init(&srv, NULL, c);
	assert_true(smtp_limits_ip_acquire(&srv, "192.0.2.1"));
	assert_true(smtp_limits_ip_acquire(&srv, "192.0.2.1"));
	assert_false(smtp_limits_ip_acquire(&srv, "192.0.2.1"));
	assert_true(smtp_limits_ip_acquire(&srv, "2001:db8::1"));
	smtp_limits_ip_release(&srv, "192.0.2.1");
	assert_true(smtp_limits_ip_acquire(&srv, "192.0.2.1"));
	smtp_limits_ip_release(&srv, "192.0.2.1");
	smtp_limits_ip_release(&srv, "192.0.2.1");
	smtp_limits_ip_release(&srv, "2001:db8::1");
	assert_int_equal(srv.ips_count, 0);
	smtp_server_deinit(&srv);
	mf_config_free(&c);
}

static void test_tarpit(void **state)
{
	assert_int_equal(smtp_limits_tarpit_ms(1), 0);
	assert_int_equal(smtp_limits_tarpit_ms(SMTP_IN_TARPIT_AFTER), 0);
	assert_int_equal(smtp_limits_tarpit_ms(SMTP_IN_TARPIT_AFTER + 1), SMTP_IN_TARPIT_STEP_MS);
	assert_int_equal(smtp_limits_tarpit_ms(SMTP_IN_TARPIT_AFTER + 2),
			 2 * SMTP_IN_TARPIT_STEP_MS);
	assert_int_equal(smtp_limits_tarpit_ms(1000), SMTP_IN_TARPIT_MAX_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_ip_slots),
		cmocka_unit_test(test_tarpit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
