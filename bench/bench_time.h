/*
 * bench_time.h: the clocks the bench helpers (the .c files of bench/) report with:
 * this process's CPU (user + system) and the monotonic wall clock, in seconds.
 */
#ifndef JOEY_BENCH_TIME_H
#define JOEY_BENCH_TIME_H

#include <sys/resource.h>
#include <time.h>

static inline double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static inline double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
