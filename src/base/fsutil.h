/* fsutil.h: file-system helpers shared by the subsystems. */
#ifndef JOEY_BASE_FSUTIL_H
#define JOEY_BASE_FSUTIL_H

#include <sys/types.h>

#include "base/strbuf.h"

/*
 * mkdir -p of the directory that holds the file path (borrowed): nothing when it
 * exists; otherwise every directory made gets mode parents, the last one mode last.
 * 0 on success; else the errno, with the directory that could not be made in *failed.
 */
int make_file_dirs(const char *path, mode_t parents, mode_t last, struct strbuf *failed);

#endif
