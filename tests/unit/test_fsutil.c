#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"

static char dir[] = "/tmp/mf-fsutil-XXXXXX";

static void test_write_read_mkdirs(void **state)
{
	const char *err = NULL;
	char *sub = mf_xasprintf("%s/a/b/c", dir);
	char *file = mf_xasprintf("%s/f.txt", sub);
	struct stat st;
	size_t len = 0;

	assert_int_equal(mf_fs_mkdirs(sub, 0700, &err), 0);
	assert_int_equal(mf_fs_mkdirs(sub, 0700, &err), 0); /* exists: fine */
	assert_int_equal(mf_fs_write_atomic(file, "one", 3, 0600, &err), 0);
	assert_int_equal(mf_fs_write_atomic(file, "two!", 4, 0640, &err), 0);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	char *got = mf_fs_read_file(file, 100, &len, &err);
	assert_string_equal(got, "two!");
	assert_int_equal(len, 4);
	free(got);
	/* over the cap: an error, not a truncated read */
	assert_null(mf_fs_read_file(file, 3, &len, &err));
	assert_non_null(strstr(err, "larger than 3 bytes"));
	assert_null(mf_fs_read_file("/nonexistent/x", 10, &len, &err));
	/* no temporary file is left behind */
	char *tmp = mf_xasprintf("%s.tmp.%ld", file, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	/* writing into a missing directory fails with the path in the error */
	char *bad = mf_xasprintf("%s/missing/f", dir);
	assert_int_equal(mf_fs_write_atomic(bad, "x", 1, 0600, &err), -1);
	assert_non_null(strstr(err, "missing"));
	unlink(file);
	free(tmp);
	free(bad);
	free(file);
	free(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_mkdirs),
	};
	if (mkdtemp(dir) == NULL)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char *cmd = mf_xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
