// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-bench: cost of HMM operations driven through the dmirror test device.
 *
 * Run under QEMU with -icount shift=0: guest time then advances exactly one
 * nanosecond per guest instruction, so CLOCK_MONOTONIC differences are
 * instruction counts and repeat exactly from run to run. Only the upstream
 * ioctl ABI is used, so the same binary measures the pristine kernel and
 * ours.
 *
 * Usage: hmm-bench [-r REPS] [-c CASE] [SIZE_MIB...]   (default: -r 5 4 64 512)
 * -c runs only the named case. Output, one line per case and size, best of
 * REPS:
 *   BENCH <case> <size_mib> <pages> <instructions>
 *
 * Each measured step but the first of a case runs between calls of
 * prof_start() and prof_stop(), which do nothing: `make profile` counts the
 * guest instructions executed between their addresses (tools/tbprof).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <lib/test_hmm_uapi.h>

#define THP_SIZE (2UL << 20)

struct region {
	char *mem;		/* the measured range */
	unsigned long size;
	unsigned long npages;
	void *buf;		/* device-side copy buffer */
};

struct bench_case {
	const char *name;
	int thp;		/* back the range with transparent huge pages */
	int populate;		/* CPU-write every page before the step */
	/* Unmeasured preparation after populating; may be NULL. */
	int (*prepare)(int fd, struct region *r);
	/* The measured step; returns 0 or -errno. */
	int (*run)(int fd, struct region *r);
	int unmaps;		/* the step unmaps the range itself */
};

static long page_size;

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Markers for the profiler: called around each measured step. */
__attribute__((noinline)) void prof_start(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void prof_stop(void)
{
	__asm__ volatile("" ::: "memory");
}

static int dmirror(int fd, unsigned long req, struct region *r)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)r->mem,
		.ptr = (uintptr_t)r->buf,
		.npages = r->npages,
	};

	return ioctl(fd, req, &cmd) ? -errno : 0;
}

static int do_snapshot(int fd, struct region *r)
{
	return dmirror(fd, HMM_DMIRROR_SNAPSHOT, r);
}

static int do_read(int fd, struct region *r)
{
	return dmirror(fd, HMM_DMIRROR_READ, r);
}

static int do_write(int fd, struct region *r)
{
	return dmirror(fd, HMM_DMIRROR_WRITE, r);
}

static int do_to_dev(int fd, struct region *r)
{
	return dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, r);
}

static int do_round_trip(int fd, struct region *r)
{
	int ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, r);

	return ret ? ret : dmirror(fd, HMM_DMIRROR_MIGRATE_TO_SYS, r);
}

static int do_cpu_fault_back(int fd, struct region *r)
{
	volatile char *p = r->mem;
	unsigned long i;

	for (i = 0; i < r->size; i += page_size)
		(void)p[i];
	return 0;
}

static int do_munmap(int fd, struct region *r)
{
	return munmap(r->mem, r->size) ? -errno : 0;
}

static int do_exclusive(int fd, struct region *r)
{
	return dmirror(fd, HMM_DMIRROR_EXCLUSIVE, r);
}

static const struct bench_case cases[] = {
	{ "snapshot-4k",	0, 1, NULL,		do_snapshot },
	{ "snapshot-thp",	1, 1, NULL,		do_snapshot },
	{ "read-populated",	0, 1, NULL,		do_read },
	{ "read-faulting",	0, 0, NULL,		do_read },
	{ "write-faulting",	0, 0, NULL,		do_write },
	{ "migrate-4k",		0, 1, NULL,		do_round_trip },
	{ "migrate-thp",	1, 1, NULL,		do_round_trip },
	{ "cpu-fault-back",	0, 1, do_to_dev,	do_cpu_fault_back },
	{ "munmap-mirrored",	0, 1, do_read,		do_munmap, 1 },
	{ "exclusive",		0, 1, NULL,		do_exclusive },
};

/* Map a THP-aligned range, huge or not as asked, optionally populated. */
static int map_region(struct region *r, unsigned long size, int thp, int populate)
{
	char *raw = mmap(NULL, size + THP_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *mem;

	if (raw == MAP_FAILED)
		return -errno;
	mem = (char *)(((uintptr_t)raw + THP_SIZE - 1) & ~(THP_SIZE - 1));
	if (mem > raw)
		munmap(raw, mem - raw);
	munmap(mem + size, raw + THP_SIZE - mem);
	if (madvise(mem, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		return -errno;
	if (populate)
		for (unsigned long i = 0; i < size; i += page_size)
			mem[i] = (char)(i >> 12);
	r->mem = mem;
	r->size = size;
	r->npages = size / page_size;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long sizes[8] = { 4, 64, 512 }, nsizes = 3;
	const char *only = NULL;
	int reps = 5, opt, fd;

	page_size = sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "r:c:")) != -1) {
		if (opt == 'c') {
			only = optarg;
			continue;
		}
		if (opt != 'r' || (reps = atoi(optarg)) < 1) {
			fprintf(stderr, "usage: %s [-r REPS] [-c CASE] [SIZE_MIB...]\n",
				argv[0]);
			return 2;
		}
	}
	if (only) {
		size_t c;

		for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
			if (!strcmp(cases[c].name, only))
				break;
		if (c == sizeof(cases) / sizeof(cases[0])) {
			fprintf(stderr, "%s: no case named %s\n", argv[0], only);
			return 2;
		}
	}
	if (optind < argc) {
		for (nsizes = 0; optind < argc && nsizes < 8; optind++)
			sizes[nsizes++] = strtoul(argv[optind], NULL, 0);
	}
	fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (fd < 0) {
		perror("/dev/hmm_dmirror0");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned long s = 0; s < nsizes; s++) {
		unsigned long size = sizes[s] << 20;
		void *buf = malloc(size);

		if (!buf) {
			fprintf(stderr, "cannot allocate %lu MiB\n", sizes[s]);
			return 1;
		}
		/* Fault the copy buffer in once (not 0: malloc+memset 0 is calloc). */
		memset(buf, 1, size);
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			const struct bench_case *bc = &cases[c];
			uint64_t best = UINT64_MAX;
			int ret = 0;

			if (only && strcmp(bc->name, only))
				continue;
			for (int rep = 0; rep < reps && !ret; rep++) {
				struct region r = { .buf = buf };
				uint64_t t0;

				ret = map_region(&r, size, bc->thp, bc->populate);
				if (!ret && bc->prepare)
					ret = bc->prepare(fd, &r);
				if (ret)
					break;
				/* The profile leaves out the warm-up run. */
				if (rep || reps == 1)
					prof_start();
				t0 = now();
				ret = bc->run(fd, &r);
				t0 = now() - t0;
				prof_stop();
				if (t0 < best)
					best = t0;
				if (!bc->unmaps)
					munmap(r.mem, r.size);
			}
			if (ret)
				printf("BENCH %s %lu %lu error %s\n", bc->name, sizes[s],
				       size / page_size, strerror(-ret));
			else
				printf("BENCH %s %lu %lu %llu\n", bc->name, sizes[s],
				       size / page_size, (unsigned long long)best);
		}
		free(buf);
	}
	close(fd);
	return 0;
}
