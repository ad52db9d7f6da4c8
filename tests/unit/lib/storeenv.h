/* storeenv: a temporary account-store set-up for unit tests of
 * services/imap/store*.c: data, blob and config directories under /tmp, a
 * domains.conf made current, and an open store.  Failures end the test. */
#ifndef MF_STOREENV_H
#define MF_STOREENV_H

#include "services/imap/store.h"

struct store_test_env {
	char dir[256];
	char data[300], blobs[300], conf[300], domains[300];
	struct store *store;
};

/* Writes text to path atomically. */
void store_test_write_file(const char *path, const char *text);
/* Makes /tmp/<prefix>.XXXXXX with data/ and config/, writes domains_text as
 * domains.conf, makes it current and opens the store.  Free with
 * store_test_env_free. */
struct store_test_env *store_test_env_create(const char *prefix, const char *domains_text);
/* Replaces domains.conf and makes it current. */
void store_test_env_write_domains(struct store_test_env *e, const char *domains_text);
/* (Re)opens the store (e->store must be NULL). */
void store_test_env_open_store(struct store_test_env *e);
/* Frees the store, removes the directory, clears the domains snapshot. */
void store_test_env_free(struct store_test_env *e);

#endif
