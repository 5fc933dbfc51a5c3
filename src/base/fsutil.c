/* fsutil.c: file-system helpers (fsutil.h). */
#include "base/fsutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int make_file_dirs(const char *path, mode_t parents, mode_t last, struct strbuf *failed)
{
	const char *slash = strrchr(path, '/');
	struct strbuf dir = STRBUF_INIT;
	struct stat sb;
	int e = 0;

	if (!slash || slash == path)
		return 0; /* "." or "/" */
	strbuf_add(&dir, path, (size_t)(slash - path));
	if (stat(dir.buf, &sb) == 0)
		goto out;
	for (char *p = dir.buf + 1;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(dir.buf, c ? parents : last) != 0 && errno != EEXIST) {
			e = errno;
			strbuf_reset(failed);
			strbuf_addstr(failed, dir.buf);
			goto out;
		}
		*p = c;
		if (!c)
			break;
	}
out:
	strbuf_release(&dir);
	return e;
}
