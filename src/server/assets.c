/* assets.c: look-up of the embedded web UI files. */
#include <string.h>

#include "server/server.h"
#include "server/ui_assets.h"

const struct ui_asset *server_asset(const char *path)
{
	if (!strcmp(path, "/"))
		path = "/index.html";
	for (size_t i = 0; i < ui_n_assets; i++)
		if (!strcmp(ui_assets[i].path, path))
			return &ui_assets[i];
	return NULL;
}
