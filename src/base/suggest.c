/* suggest.c: edit distance and closest-candidate lookup for hints. */
#include "base/suggest.h"

#include <ctype.h>
#include <string.h>

#include "base/xalloc.h"
#include <stdlib.h>

size_t suggest_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = xmalloc((lb + 1) * sizeof(*row));
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			size_t best = prev + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

const char *suggest_closest(const char *word, const char *const *candidates, size_t n)
{
	size_t len = strlen(word);
	size_t limit = len <= 3 ? 1 : len / 3 > 2 ? len / 3 : 2;
	const char *best = NULL;
	size_t best_d = (size_t)-1;

	if (len > 1000)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i] || strlen(candidates[i]) > 1000)
			continue;
		size_t d = suggest_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}
