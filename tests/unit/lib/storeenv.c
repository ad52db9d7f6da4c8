#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "domains.h"
#include "fsutil.h"
#include "storeenv.h"

void store_test_write_file(const char *path, const char *text)
{
	const char *err;

	if (mf_fs_write_atomic(path, text, strlen(text), 0644, &err) < 0)
		fail_msg("write %s: %s", path, err);
}

void store_test_env_write_domains(struct store_test_env *e, const char *domains_text)
{
	const char *err;

	store_test_write_file(e->domains, domains_text);
	if (mf_domains_reload(e->domains, &err) < 0)
		fail_msg("domains: %s", err);
}

void store_test_env_open_store(struct store_test_env *e)
{
	struct store_settings set = {
		.data_dir = e->data, .blob_dir = e->blobs, .config_dir = e->conf,
		.domains_file = e->domains,
	};
	const char *err = NULL;

	if (store_create(&set, &e->store, &err) < 0)
		fail_msg("store_create: %s", err);
}

struct store_test_env *store_test_env_create(const char *prefix, const char *domains_text)
{
	struct store_test_env *e = mf_xcalloc(1, sizeof(*e));

	snprintf(e->dir, sizeof(e->dir), "/tmp/%s.XXXXXX", prefix);
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->data, sizeof(e->data), "%s/data", e->dir);
	snprintf(e->blobs, sizeof(e->blobs), "%s/data/blobs", e->dir);
	snprintf(e->conf, sizeof(e->conf), "%s/config", e->dir);
	snprintf(e->domains, sizeof(e->domains), "%s/config/domains.conf", e->dir);
	assert_int_equal(mkdir(e->conf, 0700), 0);
	assert_int_equal(mkdir(e->data, 0700), 0);
	store_test_env_write_domains(e, domains_text);
	store_test_env_open_store(e);
	return e;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void store_test_env_free(struct store_test_env *e)
{
	store_free(&e->store);
	nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mf_domains_clear_current();
	free(e);
}
