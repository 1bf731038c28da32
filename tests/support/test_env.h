/* Where tests find the shared data and the programs under test. */
#ifndef FIELDSYNC_TESTS_TEST_ENV_H
#define FIELDSYNC_TESTS_TEST_ENV_H

/* A path under the shared folder (FS_SHARED_DIR, set by CTest); the caller
 * frees. Aborts the test run when the variable is unset. */
char *test_shared_path(const char *relative);

/* A fresh empty directory under /tmp for one test; the caller frees. */
char *test_temp_dir(void);

/* Stoplight's prism (the spec tests' validating proxy): installs it with
 * FS_PRISM_SCRIPT (scripts/install-prism.sh, which does nothing when
 * `make check` installed it already) into FS_PRISM_DIR, both set by
 * CTest, and returns the path of its binary (the caller frees), or NULL
 * with the reason on stderr. The script's output goes to log_path. */
char *test_prism_bin(const char *log_path);

#endif
