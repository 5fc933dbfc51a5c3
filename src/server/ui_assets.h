/* ui_assets.h: the web UI's files, embedded at build time (cmake/embed.cmake). */
#ifndef JOEY_UI_ASSETS_H
#define JOEY_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *path;         /* URL path: "/index.html", "/app.js" */
	const char *content_type; /* with charset for text */
	const unsigned char *data; /* NUL-terminated, len bytes before it */
	size_t len;
};

/* Terminated by an entry whose path is NULL; ui_n_assets entries before it. */
extern const struct ui_asset ui_assets[];
extern const size_t ui_n_assets;

#endif
