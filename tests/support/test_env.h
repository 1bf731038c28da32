/* Where tests find the shared data and the programs under test. */
#ifndef FIELDSYNC_TESTS_TEST_ENV_H
#define FIELDSYNC_TESTS_TEST_ENV_H

/* A path under the shared folder (FS_SHARED_DIR, set by CTest); the caller
 * frees. Aborts the test run when the variable is unset. */
char *test_shared_path(const char *relative);

/* A fresh empty directory under /tmp for one test; the caller frees. */
char *test_temp_dir(void);

#endif
