/* faultvfs.c: test builds only: a SQLite VFS shim that fails the Nth write or sync. */
#ifdef JOEY_FAULTS
/*
 * Compiled in only with -DJOEY_FAULTS=ON, and linked into the joey binary only (see
 * CMakeLists.txt); the release build has none of it. When the environment variable
 * JOEY_FAIL_IO_AT=N is set at start-up, a constructor registers this shim as SQLite's
 * default VFS, wrapping the real one. It counts every xWrite, xSync and xTruncate on
 * every file SQLite opens (state store, its WAL, temporary files) and fails:
 *
 *   JOEY_FAIL_IO_AT=N      the Nth such call and every one after it (the disk went
 *                          bad): SQLITE_IOERR_WRITE / _FSYNC / _TRUNCATE, errno EIO
 *   JOEY_FAIL_IO_ONCE=1    only the Nth (a transient error)
 *   JOEY_FAIL_IO_FULL=1    the disk is full instead: writes and truncates fail with
 *                          SQLITE_FULL (errno ENOSPC), syncs (counted) succeed
 *   JOEY_FAIL_IO_AT=0      nothing fails; "joey: faults: N writes and syncs" is
 *                          printed to stderr at exit, so a test can try each N
 *
 * Without JOEY_FAIL_IO_AT nothing is registered and SQLite is untouched.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/xalloc.h"

struct fault_file {
	sqlite3_file base; /* pMethods = fault_io */
	sqlite3_file *real; /* the real file, allocated right after this struct */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static atomic_ulong n_calls;
static unsigned long fail_at;
static bool fail_once, fail_full;

static bool should_fail(void)
{
	unsigned long n = atomic_fetch_add(&n_calls, 1) + 1;
	if (!fail_at)
		return false;
	return fail_once ? n == fail_at : n >= fail_at;
}

static sqlite3_file *real_of(sqlite3_file *f)
{
	return ((struct fault_file *)f)->real;
}

static int f_close(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int f_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xRead(r, buf, amt, off);
}

static int f_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	sqlite3_file *r = real_of(f);
	if (should_fail()) {
		errno = fail_full ? ENOSPC : EIO;
		return fail_full ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	}
	return r->pMethods->xWrite(r, buf, amt, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	sqlite3_file *r = real_of(f);
	if (should_fail()) {
		errno = fail_full ? ENOSPC : EIO;
		return fail_full ? SQLITE_FULL : SQLITE_IOERR_TRUNCATE;
	}
	return r->pMethods->xTruncate(r, size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = real_of(f);
	/* a full disk refuses new data; flushing what was written still works */
	if (should_fail() && !fail_full) {
		errno = EIO;
		return SQLITE_IOERR_FSYNC;
	}
	return r->pMethods->xSync(r, flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xFileSize(r, size);
}

static int f_lock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xLock(r, lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xUnlock(r, lock);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xCheckReservedLock(r, out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xFileControl(r, op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xSectorSize(r);
}

static int f_device_characteristics(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xDeviceCharacteristics(r);
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xShmMap(r, pg, pgsz, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xShmLock(r, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	r->pMethods->xShmBarrier(r);
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xShmUnmap(r, delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xFetch(r, off, amt, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xUnfetch(r, off, p);
}

/* As many methods as the real file has: version 1 (no shared memory), 2 (no mmap), 3. */
static const sqlite3_io_methods fault_io_v1 = {
	1, f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock,
	f_check_reserved, f_file_control, f_sector_size, f_device_characteristics,
	NULL, NULL, NULL, NULL, NULL, NULL,
};
static const sqlite3_io_methods fault_io_v2 = {
	2, f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock,
	f_check_reserved, f_file_control, f_sector_size, f_device_characteristics,
	f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, NULL, NULL,
};
static const sqlite3_io_methods fault_io_v3 = {
	3, f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock,
	f_check_reserved, f_file_control, f_sector_size, f_device_characteristics,
	f_shm_map, f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch, f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct fault_file *ff = (struct fault_file *)f;
	int rc;
	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	memset(ff->real, 0, (size_t)real_vfs->szOsFile);
	rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set: leave it NULL on failure */
	if (rc != SQLITE_OK || !ff->real->pMethods) {
		ff->base.pMethods = NULL;
		return rc;
	}
	ff->base.pMethods = ff->real->pMethods->iVersion >= 3   ? &fault_io_v3
			    : ff->real->pMethods->iVersion == 2 ? &fault_io_v2
								: &fault_io_v1;
	return SQLITE_OK;
}

static void print_count(void)
{
	fprintf(stderr, "joey: faults: %lu writes and syncs\n", atomic_load(&n_calls));
}

static bool env_flag(const char *name)
{
	const char *s = getenv(name);
	return s && *s && strcmp(s, "0") != 0;
}

__attribute__((constructor)) static void faultvfs_init(void)
{
	if (!faults_env_count("JOEY_FAIL_IO_AT", &fail_at))
		return;
	fail_once = env_flag("JOEY_FAIL_IO_ONCE");
	fail_full = env_flag("JOEY_FAIL_IO_FULL");
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs) {
		fprintf(stderr, "joey: JOEY_FAIL_IO_AT: SQLite has no default VFS\n");
		_exit(2);
	}
	fault_vfs = *real_vfs; /* every method but xOpen is the real one's */
	fault_vfs.zName = "joey-faults";
	fault_vfs.szOsFile = (int)sizeof(struct fault_file) + real_vfs->szOsFile;
	fault_vfs.xOpen = f_open;
	fault_vfs.pNext = NULL;
	if (sqlite3_vfs_register(&fault_vfs, 1) != SQLITE_OK) {
		fprintf(stderr, "joey: JOEY_FAIL_IO_AT: could not register the fault VFS\n");
		_exit(2);
	}
	if (!fail_at)
		atexit(print_count);
}
#else
/* Not a fault-injection build: nothing here (ISO C wants a declaration). */
typedef int joey_faultvfs_unused;
#endif
