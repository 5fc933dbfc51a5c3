/* sqlcursor.c: set up and free the row state shared by the SQL row cursors (sqlcursor.h). */
#include <stdlib.h>

#include "base/xalloc.h"
#include "source/sqlcursor.h"

void sql_cursor_state_init(struct sql_cursor_state *s, const struct cfg_source *src, const struct sql_plan *p)
{
	s->src = src;
	s->grouped = p->grouped;
	s->int_key = p->int_key;
	s->key_column = p->key_column;
	s->count_col = (int)src->n_properties + 1;
	s->since_col = p->since_col;
	s->null_keys = 0;
	arena_init(&s->arena);
	s->row.n_values = src->n_properties;
	s->row.values = xcalloc(src->n_properties ? src->n_properties : 1, sizeof(struct value));
}

void sql_cursor_state_release(struct sql_cursor_state *s)
{
	arena_release(&s->arena);
	free(s->row.values);
}
