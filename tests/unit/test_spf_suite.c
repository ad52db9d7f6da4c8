/* The RFC 7208 test suite (openspf.org 2014.04, as Debian's python3-spf
 * ships it) run against spf.c through the memory resolver.
 *
 * The YAML is converted to JSON by /usr/bin/python3 (python3-yaml); zone
 * data is loaded the way the suite's own driver (testspf.py) does it: SPF
 * records are copied to TXT unless the name has TXT records, "NONE"
 * values make a name exist without records, and TIMEOUT entries make
 * lookups time out.  Every test must pass: a failure prints the test and
 * what we answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "services/dnsauth/resolver.h"
#include "services/dnsauth/spf.h"

/* Where Debian's python3-spf puts it; ci/spf-suite.sh finds it elsewhere
 * (minimal images drop /usr/share/doc) and ci/run-unit.sh passes that on in
 * MF_SPF_SUITE. */
#define SUITE_FILE "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
#define SUITE_TESTS 203

static const char converter[] =
	"/usr/bin/python3 -c 'import gzip, json, sys, yaml\n"
	"def nul(v):\n"
	"  if isinstance(v, dict): return {k: nul(x) for k, x in v.items()}\n"
	"  if isinstance(v, list): return [nul(x) for x in v]\n"
	"  if isinstance(v, str) and \"\\0\" in v: return {\"nul_split\": v.split(\"\\0\")}\n"
	"  return v\n"
	"docs = list(yaml.safe_load_all(gzip.open(sys.argv[1], \"rb\")))\n"
	"json.dump(nul(docs), sys.stdout)' ";

static const char *suite_file(void)
{
	const char *f = getenv("MF_SPF_SUITE");

	return f != NULL && f[0] != '\0' ? f : SUITE_FILE;
}

static char *suite_json(void)
{
	char *cmd = mf_xasprintf("%s'%s'", converter, suite_file());
	FILE *p;
	struct mf_buf b;
	char chunk[65536];
	size_t n;

	p = popen(cmd, "r");
	free(cmd);
	assert_non_null(p);
	mf_buf_init(&b, 64 * 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		assert_int_equal(mf_buf_append(&b, chunk, n), 0);
	if (pclose(p) != 0) {
		fprintf(stderr, "converting %s failed (is python3-yaml installed?)\n", suite_file());
		fail();
	}
	return mf_buf_steal(&b);
}

static uint16_t type_of(const char *t)
{
	return dns_type_by_name(t);
}

static void add_txt_value(struct dns_resolver *r, const char *name, const cJSON *v)
{
	const char *strs[32];
	size_t lens[32], n = 0;
	const cJSON *split = cJSON_GetObjectItem(v, "nul_split");

	/* JSON strings cannot hold NUL: the converter splits them at NULs
	 * (a TXT string with a NUL byte, RFC 7208 test a-null). */
	if (split != NULL) {
		struct mf_buf b;
		const cJSON *part;
		bool first = true;

		mf_buf_init(&b, 0);
		cJSON_ArrayForEach(part, split) {
			if (!first)
				mf_buf_append(&b, "", 1);
			mf_buf_append_str(&b, part->valuestring);
			first = false;
		}
		strs[0] = b.data;
		lens[0] = b.len;
		dns_memory_add_txt(r, name, strs, lens, 1);
		mf_buf_free(&b);
		return;
	}
	if (cJSON_IsString(v)) {
		strs[0] = v->valuestring;
		lens[0] = strlen(v->valuestring);
		n = 1;
	} else {
		const cJSON *s;
		cJSON_ArrayForEach(s, v) {
			assert_true(cJSON_IsString(s) && n < 32);
			strs[n] = s->valuestring;
			lens[n++] = strlen(s->valuestring);
		}
	}
	dns_memory_add_txt(r, name, strs, lens, n);
}

static bool is_none(const cJSON *v)
{
	return cJSON_IsString(v) && strcmp(v->valuestring, "NONE") == 0;
}

static struct dns_resolver *load_zone(const cJSON *zone)
{
	struct dns_resolver *r = dns_resolver_create_memory();
	const cJSON *name;
	const char *err;

	cJSON_ArrayForEach(name, zone) {
		const char *n = name->string;
		const cJSON *rr;
		bool has_txt = false;

		dns_memory_add_name(r, n);
		cJSON_ArrayForEach(rr, name)
			if (cJSON_IsObject(rr) && cJSON_GetObjectItem(rr, "TXT") != NULL)
				has_txt = true;
		cJSON_ArrayForEach(rr, name) {
			if (cJSON_IsString(rr) && strcmp(rr->valuestring, "TIMEOUT") == 0) {
				dns_memory_add_timeout(r, n, 0);
				continue;
			}
			assert_true(cJSON_IsObject(rr));
			const cJSON *kv = rr->child;
			const char *t = kv->string;
			if (cJSON_IsString(kv) && strcmp(kv->valuestring, "TIMEOUT") == 0) {
				uint16_t type = strcmp(t, "SPF") == 0 ? DNS_TYPE_TXT : type_of(t);
				dns_memory_add_timeout(r, n, type);
				continue;
			}
			if (is_none(kv))
				continue;
			if (strcmp(t, "SPF") == 0) {
				/* We never query type SPF (RFC 7208 3.1); the driver
				 * serves it as TXT when the name has no TXT. */
				if (!has_txt)
					add_txt_value(r, n, kv);
			} else if (strcmp(t, "TXT") == 0) {
				add_txt_value(r, n, kv);
			} else if (strcmp(t, "MX") == 0) {
				assert_true(cJSON_IsArray(kv) && cJSON_GetArraySize(kv) == 2);
				char *v = mf_xasprintf("%d %s", cJSON_GetArrayItem(kv, 0)->valueint,
						       cJSON_GetArrayItem(kv, 1)->valuestring);
				assert_int_equal(dns_memory_add(r, n, DNS_TYPE_MX, v, &err), 0);
				free(v);
			} else {
				uint16_t type = type_of(t);
				assert_true(type != 0 && cJSON_IsString(kv));
				if (dns_memory_add(r, n, type, kv->valuestring, &err) < 0)
					fail_msg("%s %s %s: %s", n, t, kv->valuestring, err);
			}
		}
	}
	return r;
}

static bool result_ok(const cJSON *want, enum spf_result got)
{
	const cJSON *w;

	if (cJSON_IsString(want))
		return strcmp(want->valuestring, spf_result_name(got)) == 0;
	cJSON_ArrayForEach(w, want)
		if (cJSON_IsString(w) && strcmp(w->valuestring, spf_result_name(got)) == 0)
			return true;
	return false;
}

static void test_rfc7208_suite(void **state)
{
	char *json = suite_json();
	cJSON *docs = cJSON_Parse(json), *doc;
	unsigned total = 0, failed = 0;

	assert_non_null(docs);
	cJSON_ArrayForEach(doc, docs) {
		struct dns_resolver *r = load_zone(cJSON_GetObjectItem(doc, "zonedata"));
		const cJSON *t;

		cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "tests")) {
			const char *helo = cJSON_GetObjectItem(t, "helo")->valuestring;
			const char *host = cJSON_GetObjectItem(t, "host")->valuestring;
			const char *mailfrom = cJSON_GetObjectItem(t, "mailfrom")->valuestring;
			const cJSON *want = cJSON_GetObjectItem(t, "result");
			const cJSON *exp = cJSON_GetObjectItem(t, "explanation");
			struct spf_request req = { .helo = helo, .default_explanation = "DEFAULT",
						   .now = 1 };
			struct spf_outcome o;
			char *sender;
			const char *at;

			total++;
			assert_int_equal(dns_ip_parse(host, &req.ip), 0);
			req.mail_from = mailfrom;
			sender = mailfrom[0] != '\0' ? mf_xstrdup(mailfrom) :
						       mf_xasprintf("postmaster@%s", helo);
			at = strrchr(sender, '@');
			spf_check_host(r, &req, at != NULL ? at + 1 : sender, sender, &o);
			bool ok = result_ok(want, o.result);
			if (ok && exp != NULL)
				ok = o.explanation != NULL && strcmp(o.explanation, exp->valuestring) == 0;
			if (!ok) {
				char *w = cJSON_PrintUnformatted(want);
				failed++;
				fprintf(stderr, "FAIL %s: want %s%s%s, got %s (exp \"%s\", problem \"%s\")\n",
					t->string, w, exp != NULL ? " exp " : "",
					exp != NULL ? exp->valuestring : "", spf_result_name(o.result),
					o.explanation != NULL ? o.explanation : "",
					o.problem != NULL ? o.problem : "");
				free(w);
			}
			spf_outcome_clear(&o);
			free(sender);
		}
		dns_resolver_free(&r);
	}
	fprintf(stderr, "RFC 7208 suite: %u/%u passed\n", total - failed, total);
	assert_int_equal(total, SUITE_TESTS);
	assert_int_equal(failed, 0);
	cJSON_Delete(docs);
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7208_suite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
