/* check.h: the fuzz targets' assertion: names the broken property, then aborts. */
#ifndef JOEY_FUZZ_CHECK_H
#define JOEY_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* A property the code under test must keep, for every input. */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#endif
