#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "domains.h"
#include "fsutil.h"

#define EXAMPLE \
	"# our domains\n" \
	"domain example.org {\n" \
	"    description \"Our domain\"\n" \
	"    disabled no                      # yes: temporary errors\n" \
	"    catchall-separator +\n" \
	"    localpart-case-sensitive no\n" \
	"    dkim {\n" \
	"        selector 2026a {\n" \
	"            algorithm ed25519\n" \
	"            key-file dkim/example.org-2026a.pem\n" \
	"            headers From,To,Cc,Subject,Date,Message-ID\n" \
	"            expiration 72h\n" \
	"        }\n" \
	"        selector 2026b {\n" \
	"            algorithm rsa\n" \
	"            key-file /keys/b.pem\n" \
	"        }\n" \
	"        sign 2026a 2026b\n" \
	"    }\n" \
	"}\n" \
	"\n" \
	"domain Strict.Example {\n" \
	"    localpart-case-sensitive yes\n" \
	"}\n" \
	"\n" \
	"account mjl {\n" \
	"    domain example.org\n" \
	"    address mjl@example.org\n" \
	"    address Info@Example.ORG\n" \
	"    address @example.org\n" \
	"    full-name \"Mechiel\"\n" \
	"    quota 1G\n" \
	"    max-outgoing-messages-per-day 10\n" \
	"    login-disabled \"Account moved\"\n" \
	"}\n" \
	"\n" \
	"account other {\n" \
	"    domain strict.example\n" \
	"    address Bob@strict.example\n" \
	"    address other@example.org\n" \
	"}\n" \
	"\n" \
	"alias team@example.org {\n" \
	"    member mjl@example.org\n" \
	"    member other@example.org\n" \
	"    post-public yes\n" \
	"}\n"

static struct mf_domains *load_ok(const char *text)
{
	struct mf_domains *d = NULL;
	const char *err = NULL;

	if (mf_domains_load_buf("/etc/mf/domains.conf", text, strlen(text), &d, &err) < 0)
		fail_msg("unexpected error: %s", err);
	return d;
}

static void test_load(void **state)
{
	struct mf_domains *d = load_ok(EXAMPLE);
	const struct mf_domain *dom;
	const struct mf_account *a;

	assert_int_equal(d->domains_count, 2);
	assert_int_equal(d->accounts_count, 2);
	assert_int_equal(d->aliases_count, 1);
	dom = mf_domains_find_domain(d, "example.org");
	assert_non_null(dom);
	assert_string_equal(dom->description, "Our domain");
	assert_false(dom->disabled);
	assert_string_equal(dom->catchall_separator, "+");
	assert_int_equal(dom->selectors_count, 2);
	assert_string_equal(dom->selectors[0].name, "2026a");
	assert_int_equal(dom->selectors[0].algorithm, MF_DKIM_ED25519);
	assert_string_equal(dom->selectors[0].key_file, "/etc/mf/dkim/example.org-2026a.pem");
	assert_int_equal(dom->selectors[0].headers_count, 6);
	assert_string_equal(dom->selectors[0].headers[5], "Message-ID");
	assert_int_equal(dom->selectors[0].expiration_ms, 72 * 3600 * 1000);
	assert_int_equal(dom->selectors[1].algorithm, MF_DKIM_RSA);
	assert_null(dom->selectors[1].headers);
	assert_string_equal(dom->selectors[1].key_file, "/keys/b.pem");
	assert_int_equal(dom->sign_count, 2);
	assert_string_equal(dom->sign[1], "2026b");
	/* domain names are canonical lower-case */
	dom = mf_domains_find_domain(d, "strict.example");
	assert_non_null(dom);
	assert_true(dom->localpart_case_sensitive);
	assert_null(mf_domains_find_domain(d, "Strict.Example"));

	a = mf_domains_find_account(d, "mjl");
	assert_non_null(a);
	assert_string_equal(a->domain, "example.org");
	assert_int_equal(a->addresses_count, 3);
	assert_string_equal(a->addresses[1].address, "Info@example.org");
	assert_string_equal(a->addresses[2].address, "@example.org");
	assert_int_equal(a->addresses[2].line, 30);
	assert_string_equal(a->full_name, "Mechiel");
	assert_int_equal(a->quota, 1024 * 1024 * 1024);
	assert_int_equal(a->max_outgoing_messages_per_day, 10);
	assert_int_equal(a->max_first_time_recipients_per_day, 200);
	assert_string_equal(a->login_disabled, "Account moved");
	a = mf_domains_find_account(d, "other");
	assert_null(a->login_disabled);
	assert_int_equal(a->quota, 0);
	assert_null(mf_domains_find_account(d, "nobody"));
	assert_string_equal(d->aliases[0].address.address, "team@example.org");
	assert_int_equal(d->aliases[0].members_count, 2);
	assert_true(d->aliases[0].post_public);
	assert_false(d->aliases[0].list_members);
	assert_false(d->aliases[0].allow_msg_from);
	mf_domains_unref(&d);
	assert_null(d);
}

static void test_resolve(void **state)
{
	static const struct {
		const char *address;
		enum mf_domains_dest_kind kind;
		const char *owner;    /* account name or alias address */
		const char *matched;
	} cases[] = {
		{ "mjl@example.org", MF_DOMAINS_DEST_ACCOUNT, "mjl", "mjl@example.org" },
		/* case-insensitive domain and localpart */
		{ "MJL@EXAMPLE.ORG", MF_DOMAINS_DEST_ACCOUNT, "mjl", "mjl@example.org" },
		{ "info@example.org", MF_DOMAINS_DEST_ACCOUNT, "mjl", "Info@example.org" },
		/* separator stripped */
		{ "other+lists@example.org", MF_DOMAINS_DEST_ACCOUNT, "other", "other@example.org" },
		{ "team+x@example.org", MF_DOMAINS_DEST_ALIAS, "team@example.org", "team@example.org" },
		/* "+tag" alone is a whole localpart: only the catch-all takes it */
		{ "+other@example.org", MF_DOMAINS_DEST_ACCOUNT, "mjl", "@example.org" },
		/* catch-all */
		{ "nobody@example.org", MF_DOMAINS_DEST_ACCOUNT, "mjl", "@example.org" },
		{ "team@example.org", MF_DOMAINS_DEST_ALIAS, "team@example.org", "team@example.org" },
		/* case-sensitive domain, no catch-all */
		{ "Bob@strict.example", MF_DOMAINS_DEST_ACCOUNT, "other", "Bob@strict.example" },
		{ "Bob@STRICT.example", MF_DOMAINS_DEST_ACCOUNT, "other", "Bob@strict.example" },
		{ "bob@strict.example", MF_DOMAINS_DEST_NONE, NULL, NULL },
		{ "bob+x@strict.example", MF_DOMAINS_DEST_NONE, NULL, NULL },
		/* not our domain */
		{ "mjl@example.com", MF_DOMAINS_DEST_NONE, NULL, NULL },
	};
	struct mf_domains *d = load_ok(EXAMPLE);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_domains_dest dest;
		const char *err;

		assert_int_equal(mf_domains_resolve_address(d, cases[i].address, &dest, &err), 0);
		if (dest.kind != cases[i].kind)
			fail_msg("case %zu (%s): kind %d, want %d", i, cases[i].address, dest.kind,
				 cases[i].kind);
		if (cases[i].kind == MF_DOMAINS_DEST_ACCOUNT)
			assert_string_equal(dest.account->name, cases[i].owner);
		if (cases[i].kind == MF_DOMAINS_DEST_ALIAS)
			assert_string_equal(dest.alias->address.address, cases[i].owner);
		if (cases[i].matched != NULL)
			assert_string_equal(dest.matched->address, cases[i].matched);
		if (strstr(cases[i].address, "example.com") != NULL)
			assert_null(dest.domain);
		else
			assert_non_null(dest.domain);
	}
	struct mf_domains_dest dest;
	const char *err;
	assert_int_equal(mf_domains_resolve_address(d, "no-at-sign", &dest, &err), -1);
	mf_domains_unref(&d);
}

#define DOM "domain example.org {\n}\n"
#define ACC "account mjl {\n    domain example.org\n    address mjl@example.org\n}\n"

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
		/* unknown keys */
		{ DOM "accounts x {\n}\n", "/etc/mf/domains.conf:3: accounts: unknown key" },
		{ "domain example.org {\n    dkim {\n        sign-all yes\n    }\n}\n",
		  "/etc/mf/domains.conf:3: domain[example.org].dkim.sign-all: unknown key" },
		{ DOM "account mjl {\n    domain example.org\n    address mjl@example.org\n"
		  "    password x\n}\n", "/etc/mf/domains.conf:6: account[mjl].password: unknown key" },
		/* missing required */
		{ DOM "account mjl {\n    domain example.org\n}\n",
		  "/etc/mf/domains.conf:3: account[mjl].address: required but not set" },
		{ DOM "account mjl {\n    address mjl@example.org\n}\n",
		  "/etc/mf/domains.conf:3: account[mjl].domain: required but not set" },
		{ DOM ACC "alias a@example.org {\n}\n",
		  "/etc/mf/domains.conf:7: alias[a@example.org].member: required but not set" },
		{ "domain example.org {\n    dkim {\n        selector s1 {\n"
		  "            algorithm rsa\n        }\n    }\n}\n",
		  "/etc/mf/domains.conf:3: domain[example.org].dkim.selector[s1].key-file: required "
		  "but not set" },
		/* bad values */
		{ "domain -x.example {\n}\n",
		  "/etc/mf/domains.conf:1: domain: bad domain name -x.example: " },
		{ DOM "account mjl {\n    domain example.org\n    address mjl@@example.org\n}\n",
		  "/etc/mf/domains.conf:5: account[mjl].address: bad address mjl@@example.org: " },
		{ DOM "account mj.l {\n    domain example.org\n    address mjl@example.org\n}\n",
		  "/etc/mf/domains.conf:3: account: bad account name mj.l (1-64 letters, digits, '-' "
		  "and '_', starting with a letter or digit)" },
		{ "domain example.org {\n    dkim {\n        selector s1 {\n"
		  "            algorithm dsa\n            key-file k\n        }\n    }\n}\n",
		  "/etc/mf/domains.conf:4: domain[example.org].dkim.selector[s1].algorithm: unknown "
		  "algorithm dsa (want ed25519 or rsa)" },
		{ "domain example.org {\n    dkim {\n        selector s1 {\n            algorithm rsa\n"
		  "            key-file k\n            headers To,Subject\n        }\n    }\n}\n",
		  "/etc/mf/domains.conf:6: domain[example.org].dkim.selector[s1].headers: must include "
		  "From (RFC 6376 5.4)" },
		{ "domain example.org {\n    catchall-separator \"a b\"\n}\n",
		  "/etc/mf/domains.conf:2: domain[example.org].catchall-separator: bad separator a b "
		  "(no whitespace, '@', '\"' or '\\')" },
		{ DOM "alias @example.org {\n    member x@example.org\n}\n",
		  "/etc/mf/domains.conf:3: alias: @example.org: a catch-all address is not allowed here" },
		{ "domain example.org {\n    disabled maybe\n}\n",
		  "/etc/mf/domains.conf:2: domain[example.org].disabled: bad boolean maybe (want yes or no)" },
		/* duplicates */
		{ DOM "domain EXAMPLE.org {\n}\n",
		  "/etc/mf/domains.conf:3: domain: duplicate domain EXAMPLE.org (first at line 1)" },
		{ DOM ACC ACC, "/etc/mf/domains.conf:7: account: duplicate account mjl (first at line 3)" },
		{ DOM ACC "account b {\n    domain example.org\n    address MJL@example.org\n}\n",
		  "/etc/mf/domains.conf:9: account[b].address: MJL@example.org is already used at "
		  "line 5 (account mjl)" },
		{ DOM ACC "alias mjl@example.org {\n    member mjl@example.org\n}\n",
		  "/etc/mf/domains.conf:7: alias[mjl@example.org]: mjl@example.org is already used "
		  "at line 5 (account mjl)" },
		{ "domain example.org {\n    dkim {\n        selector s1 {\n            algorithm rsa\n"
		  "            key-file k\n        }\n        selector S1 {\n        }\n    }\n}\n",
		  "/etc/mf/domains.conf:7: domain[example.org].dkim.selector: duplicate selector S1 "
		  "(first at line 3)" },
		{ DOM "domain example.org {\n}\n",
		  "/etc/mf/domains.conf:3: domain: duplicate domain example.org (first at line 1)" },
		{ DOM "domain example.net {\n    disabled no\n    disabled yes\n}\n",
		  "/etc/mf/domains.conf:5: domain[example.net].disabled: duplicate (first at line 4)" },
		{ DOM ACC "alias a@example.org {\n    member mjl@example.org\n    member MJL@example.org\n}\n",
		  "/etc/mf/domains.conf:9: alias[a@example.org].member: MJL@example.org is listed "
		  "twice (first at line 8)" },
		/* dangling references */
		{ DOM "account mjl {\n    domain example.net\n    address mjl@example.org\n}\n",
		  "/etc/mf/domains.conf:4: account[mjl].domain: domain example.net is not configured" },
		{ DOM "account mjl {\n    domain example.org\n    address mjl@example.net\n}\n",
		  "/etc/mf/domains.conf:5: account[mjl].address: domain of mjl@example.net is not "
		  "configured" },
		{ DOM ACC "alias a@example.net {\n    member mjl@example.org\n}\n",
		  "/etc/mf/domains.conf:7: alias[a@example.net]: domain of a@example.net is not "
		  "configured" },
		{ DOM ACC "alias a@example.org {\n    member x@example.org\n}\n",
		  "/etc/mf/domains.conf:8: alias[a@example.org].member: x@example.org is not an "
		  "address of an account" },
		{ DOM ACC "alias a@example.org {\n    member mjl@example.org\n}\n"
		  "alias b@example.org {\n    member a@example.org\n}\n",
		  "/etc/mf/domains.conf:11: alias[b@example.org].member: a@example.org is not an "
		  "address of an account" },
		{ "domain example.org {\n    dkim {\n        sign s9\n    }\n}\n",
		  "/etc/mf/domains.conf:3: domain[example.org].dkim.sign: no selector named s9 in this "
		  "domain" },
		/* syntax errors come through unchanged */
		{ DOM "account x {\n", "/etc/mf/domains.conf:3: block account is not closed" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mf_domains *d = NULL;
		const char *err = NULL;

		assert_int_equal(mf_domains_load_buf("/etc/mf/domains.conf", cases[i].text,
						     strlen(cases[i].text), &d, &err), -1);
		assert_null(d);
		/* errors from address.h end in its own text: compare the prefix */
		size_t n = strlen(cases[i].error);
		bool prefix = cases[i].error[n - 1] == ' ';
		if (prefix ? strncmp(err, cases[i].error, n) != 0 || strchr(err, '\n') != NULL
			   : strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, cases[i].error);
	}
}

/* --- files --- */

struct tmp {
	char dir[64];
	char *path;
};

static void write_file(const char *path, const char *text)
{
	const char *err;
	assert_int_equal(mf_fs_write_atomic(path, text, strlen(text), 0640, &err), 0);
}

static void tmp_init(struct tmp *t, const char *text)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/mf-test-domains-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->path = mf_xasprintf("%s/domains.conf", t->dir);
	if (text != NULL)
		write_file(t->path, text);
}

static char *read_file(const char *path)
{
	const char *err;
	char *s = mf_fs_read_file(path, 1 << 20, NULL, &err);
	assert_non_null(s);
	return s;
}

static void tmp_free(struct tmp *t)
{
	char *lock = mf_xasprintf("%s.lock", t->path);
	unlink(t->path);
	unlink(lock);
	free(lock);
	assert_int_equal(rmdir(t->dir), 0);  /* no temporary files left behind */
	free(t->path);
}

#define HAND_EDITED \
	"# domains.conf, edited by hand\n" \
	"\n" \
	"domain example.org {   # main\n" \
	"\tcatchall-separator +\n" \
	"}\n" \
	"\n" \
	"# the boss\n" \
	"account mjl {\n" \
	"    domain example.org\n" \
	"    address mjl@example.org    # primary\n" \
	"    # more addresses below\n" \
	"}\n" \
	"# trailing comment"

static void test_edit(void **state)
{
	struct tmp t;
	const char *err;
	char *text;

	tmp_init(&t, HAND_EDITED);
	chmod(t.path, 0600);
	assert_int_equal(mf_domains_add_account(t.path, "bob", "Bob@Example.org", &err), 0);
	assert_int_equal(mf_domains_add_address(t.path, "mjl", "info@example.org", &err), 0);
	assert_int_equal(mf_domains_add_domain(t.path, "EXAMPLE.net", &err), 0);
	text = read_file(t.path);
	assert_string_equal(text,
		"# domains.conf, edited by hand\n"
		"\n"
		"domain example.org {   # main\n"
		"\tcatchall-separator +\n"
		"}\n"
		"\n"
		"domain example.net {\n"
		"}\n"
		"\n"
		"# the boss\n"
		"account mjl {\n"
		"    domain example.org\n"
		"    address mjl@example.org    # primary\n"
		"    address info@example.org\n"
		"    # more addresses below\n"
		"}\n"
		"\n"
		"account bob {\n"
		"    domain example.org\n"
		"    address Bob@example.org\n"
		"}\n"
		"# trailing comment");
	free(text);
	struct stat st;
	assert_int_equal(stat(t.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);  /* the admin's mode is kept */

	assert_int_equal(mf_domains_remove_address(t.path, "mjl", "INFO@example.org", &err), 0);
	assert_int_equal(mf_domains_remove_account(t.path, "bob", &err), 0);
	assert_int_equal(mf_domains_remove_domain(t.path, "example.net", &err), 0);
	text = read_file(t.path);
	/* back to the original apart from the blank lines the adds put in */
	assert_string_equal(text,
		"# domains.conf, edited by hand\n"
		"\n"
		"domain example.org {   # main\n"
		"\tcatchall-separator +\n"
		"}\n"
		"\n"
		"\n"
		"# the boss\n"
		"account mjl {\n"
		"    domain example.org\n"
		"    address mjl@example.org    # primary\n"
		"    # more addresses below\n"
		"}\n"
		"\n"
		"# trailing comment");
	free(text);
	tmp_free(&t);
}

static void test_edit_refused(void **state)
{
	static const struct {
		int (*two)(const char *path, const char *a, const char *b, const char **error_r);
		int (*one)(const char *path, const char *a, const char **error_r);
		const char *a, *b;
		const char *error;
	} cases[] = {
		/* the last address: accounts without one cannot log in */
		{ mf_domains_remove_address, NULL, "mjl", "mjl@example.org",
		  "DOMAINS:8: account[mjl].address: required but not set" },
		{ mf_domains_add_address, NULL, "mjl", "x@example.com",
		  "DOMAINS:11: account[mjl].address: domain of x@example.com is not configured" },
		{ mf_domains_add_address, NULL, "nobody", "x@example.org", "no account nobody" },
		{ mf_domains_add_address, NULL, "mjl", "MJL@example.org",
		  "account mjl already has address MJL@example.org" },
		{ mf_domains_add_account, NULL, "mjl", "x@example.org", "account mjl already exists" },
		{ mf_domains_add_account, NULL, "bad name", "x@example.org", "bad account name bad "
		  "name (1-64 letters, digits, '-' and '_', starting with a letter or digit)" },
		{ mf_domains_add_account, NULL, "bob", "mjl@example.org",
		  "DOMAINS:16: account[bob].address: mjl@example.org is already used at line 10 "
		  "(account mjl)" },
		{ mf_domains_remove_address, NULL, "mjl", "other@example.org",
		  "account mjl has no address other@example.org" },
		{ NULL, mf_domains_remove_domain, "example.org", NULL,
		  "DOMAINS:6: account[mjl].domain: domain example.org is not configured\n"
		  "DOMAINS:7: account[mjl].address: domain of mjl@example.org is not configured" },
		{ NULL, mf_domains_remove_account, "nobody", NULL, "no account nobody" },
		{ NULL, mf_domains_add_domain, "example.org", NULL, "domain example.org already exists" },
	};
	struct tmp t;

	tmp_init(&t, HAND_EDITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = NULL;
		int ret = cases[i].two != NULL ? cases[i].two(t.path, cases[i].a, cases[i].b, &err)
					       : cases[i].one(t.path, cases[i].a, &err);
		struct mf_buf want;
		const char *p;

		assert_int_equal(ret, -1);
		/* DOMAINS stands for the file's path */
		mf_buf_init(&want, 0);
		for (p = cases[i].error; *p != '\0'; p++) {
			if (strncmp(p, "DOMAINS", 7) == 0) {
				mf_buf_append_str(&want, t.path);
				p += 6;
			} else {
				mf_buf_append(&want, p, 1);
			}
		}
		if (strcmp(err, mf_buf_cstr(&want)) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, err, mf_buf_cstr(&want));
		mf_buf_free(&want);
		char *text = read_file(t.path);
		assert_string_equal(text, HAND_EDITED);  /* unchanged */
		free(text);
	}
	tmp_free(&t);
}

static int edit_two_accounts(struct mf_conf *conf, void *ctx, const char **error_r)
{
	if (mf_domains_tree_add_domain(conf, "example.com", error_r) < 0 ||
	    mf_domains_tree_add_account(conf, "a", "a@example.com", error_r) < 0 ||
	    mf_domains_tree_add_account(conf, "b", "b@example.com", error_r) < 0)
		return -1;
	return 0;
}

static void test_edit_new_file(void **state)
{
	struct tmp t;
	struct mf_domains *d;
	const char *err;
	char *text;

	tmp_init(&t, NULL);
	assert_int_equal(mf_domains_edit(t.path, edit_two_accounts, NULL, &err), 0);
	text = read_file(t.path);
	assert_string_equal(text,
		"domain example.com {\n"
		"}\n"
		"\n"
		"account a {\n"
		"    domain example.com\n"
		"    address a@example.com\n"
		"}\n"
		"\n"
		"account b {\n"
		"    domain example.com\n"
		"    address b@example.com\n"
		"}\n");
	free(text);
	assert_int_equal(mf_domains_load(t.path, &d, &err), 0);
	assert_int_equal(d->accounts_count, 2);
	mf_domains_unref(&d);
	tmp_free(&t);
}

struct adder {
	const char *path;
	int id;
};

static void *add_accounts(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 10; i++) {
		char name[32], addr[64];
		const char *err;
		snprintf(name, sizeof(name), "u%d-%d", a->id, i);
		snprintf(addr, sizeof(addr), "%s@example.org", name);
		if (mf_domains_add_account(a->path, name, addr, &err) < 0)
			return (void *)1;
	}
	return NULL;
}

/* Concurrent editors serialise on the lock: no edit is lost. */
static void test_edit_concurrent(void **state)
{
	struct tmp t;
	pthread_t threads[4];
	struct adder adders[4];
	struct mf_domains *d;
	const char *err;

	tmp_init(&t, "domain example.org {\n}\n");
	for (int i = 0; i < 4; i++) {
		adders[i].path = t.path;
		adders[i].id = i;
		assert_int_equal(pthread_create(&threads[i], NULL, add_accounts, &adders[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(threads[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(mf_domains_load(t.path, &d, &err), 0);
	assert_int_equal(d->accounts_count, 40);
	mf_domains_unref(&d);
	tmp_free(&t);
}

static void test_reload(void **state)
{
	struct tmp t;
	struct mf_domains *held, *now;
	const char *err;

	assert_null(mf_domains_current());
	tmp_init(&t, DOM ACC);
	assert_int_equal(mf_domains_reload(t.path, &err), 0);
	held = mf_domains_current();
	assert_non_null(held);
	assert_non_null(mf_domains_find_account(held, "mjl"));

	/* a broken file: reload fails, the old snapshot stays current */
	write_file(t.path, DOM "account mjl {\n    domain example.org\n}\n");
	assert_int_equal(mf_domains_reload(t.path, &err), -1);
	assert_non_null(strstr(err, "account[mjl].address: required but not set"));
	now = mf_domains_current();
	assert_ptr_equal(now, held);
	mf_domains_unref(&now);

	/* a good change: swapped in; the held reference still reads the old one */
	write_file(t.path, DOM "account bob {\n    domain example.org\n    address bob@example.org\n}\n");
	assert_int_equal(mf_domains_reload(t.path, &err), 0);
	now = mf_domains_current();
	assert_ptr_not_equal(now, held);
	assert_non_null(mf_domains_find_account(now, "bob"));
	assert_null(mf_domains_find_account(now, "mjl"));
	assert_non_null(mf_domains_find_account(held, "mjl"));
	mf_domains_unref(&held);
	mf_domains_unref(&now);

	/* a missing file is an error too */
	assert_int_equal(mf_domains_reload("/nonexistent/domains.conf", &err), -1);
	assert_non_null(strstr(err, "/nonexistent/domains.conf: No such file or directory"));
	mf_domains_clear_current();
	assert_null(mf_domains_current());
	tmp_free(&t);
}

static int readers_stop;  /* atomic */

static void *read_current(void *arg)
{
	long seen = 0;

	while (!__atomic_load_n(&readers_stop, __ATOMIC_RELAXED)) {
		struct mf_domains *d = mf_domains_current();
		if (d == NULL)
			return (void *)1;
		if (mf_domains_find_account(d, "mjl") == NULL && mf_domains_find_account(d, "bob") == NULL)
			return (void *)1;
		mf_domains_unref(&d);
		seen++;
	}
	return seen > 0 ? NULL : (void *)1;
}

/* Readers on other threads always see a whole snapshot while reloads swap it. */
static void test_reload_concurrent(void **state)
{
	struct tmp t;
	pthread_t threads[4];
	const char *err;

	tmp_init(&t, DOM ACC);
	assert_int_equal(mf_domains_reload(t.path, &err), 0);
	__atomic_store_n(&readers_stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, read_current, NULL), 0);
	for (int i = 0; i < 50; i++) {
		write_file(t.path, i % 2 == 0 ? DOM "account bob {\n    domain example.org\n"
						"    address bob@example.org\n}\n"
					      : DOM ACC);
		assert_int_equal(mf_domains_reload(t.path, &err), 0);
	}
	__atomic_store_n(&readers_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(threads[i], &ret);
		assert_null(ret);
	}
	mf_domains_clear_current();
	tmp_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_edit),
		cmocka_unit_test(test_edit_refused),
		cmocka_unit_test(test_edit_new_file),
		cmocka_unit_test(test_edit_concurrent),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_reload_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
