/* testutil.c: temporary files and command helpers for unit tests. */
#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "base/xalloc.h"

char *tu_mkdtemp(void)
{
	const char *tmp = getenv("TMPDIR");
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/joeytest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(sb.buf)) {
		perror("mkdtemp");
		abort();
	}
	return strbuf_detach(&sb, NULL);
}

static void mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
}

void tu_write(const char *dir, const char *rel, const char *text)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", dir, rel);
	mkdirs(sb.buf);
	FILE *f = fopen(sb.buf, "w");
	if (!f) {
		perror(sb.buf);
		abort();
	}
	fputs(text, f);
	fclose(f);
	strbuf_release(&sb);
}

void tu_rmtree(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	if (!dir || !strstr(dir, "joeytest."))
		return;
	strbuf_addf(&sb, "rm -rf '%s'", dir);
	if (system(sb.buf) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	strbuf_release(&sb);
}

char *tu_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb = STRBUF_INIT;
	char buf[8192];
	size_t n;
	if (!f)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, NULL);
}

int tu_run(const char *cmd, char **output)
{
	struct strbuf sb = STRBUF_INIT;
	char buf[8192];
	size_t n;
	strbuf_addf(&sb, "%s 2>&1", cmd);
	FILE *p = popen(sb.buf, "r");
	strbuf_reset(&sb);
	if (!p)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		strbuf_add(&sb, buf, n);
	int st = pclose(p);
	if (output)
		*output = strbuf_detach(&sb, NULL);
	else
		strbuf_release(&sb);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint64_t tu_xorshift(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}
