#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "keygen.h"

static char dir[] = "/tmp/mf-keygen-XXXXXX";

static void test_ed25519_and_rsa(void **state)
{
	const char *err = NULL;
	char *ed = mf_xasprintf("%s/ed.pem", dir), *rsa = mf_xasprintf("%s/rsa.pem", dir);
	struct stat st;

	assert_int_equal(mf_keygen_write(ed, MF_KEYGEN_ED25519, &err), 0);
	assert_int_equal(stat(ed, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char *rec = mf_keygen_dkim_record(ed, &err);
	assert_non_null(rec);
	assert_int_equal(strncmp(rec, "v=DKIM1; k=ed25519; p=", 22), 0);
	assert_int_equal(strlen(rec), 22 + 44); /* 32 raw bytes in base64 */
	free(rec);
	/* never replaces an existing key */
	assert_int_equal(mf_keygen_write(ed, MF_KEYGEN_RSA2048, &err), -1);
	assert_non_null(strstr(err, "exists already"));

	assert_int_equal(mf_keygen_write(rsa, MF_KEYGEN_RSA2048, &err), 0);
	rec = mf_keygen_dkim_record(rsa, &err);
	assert_non_null(rec);
	assert_int_equal(strncmp(rec, "v=DKIM1; k=rsa; p=MIIB", 22), 0);
	free(rec);
	assert_null(mf_keygen_dkim_record("/nonexistent/key.pem", &err));
	unlink(ed);
	unlink(rsa);
	free(ed);
	free(rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ed25519_and_rsa),
	};
	if (mkdtemp(dir) == NULL)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
