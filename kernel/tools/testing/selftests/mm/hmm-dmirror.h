/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the HMM selftests.
 *
 * The tests drive lib/test_hmm.c, a pretend device ("dmirror") that mirrors
 * the calling process through HMM and owns some device memory. This header
 * wraps its ioctls, reads its per-device counters from sysfs, and builds the
 * memory layouts the tests need (aligned THP areas, hugetlb, shared files).
 * Every helper reports failure as a negative errno so that a test can state
 * the exact outcome it expects with one EXPECT_EQ().
 */
#ifndef SELFTESTS_MM_HMM_DMIRROR_H
#define SELFTESTS_MM_HMM_DMIRROR_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <lib/test_hmm_uapi.h>

/* Test controls added by our dmirror; older headers lack them. */
#ifndef HMM_DMIRROR_FLAGS
#define HMM_DMIRROR_FLAGS		_IOWR('H', 0x08, struct hmm_dmirror_cmd)
#endif
#ifndef HMM_DMIRROR_FLAG_FAIL_ALLOC
#define HMM_DMIRROR_FLAG_FAIL_ALLOC	0x1ULL
#endif
#ifndef HMM_DMIRROR_FLAG_HALF_MIGRATE
#define HMM_DMIRROR_FLAG_HALF_MIGRATE	0x2ULL
#endif

#define HUGE_2M		(2UL << 20)

static inline size_t page_bytes(void)
{
	static size_t cached;

	if (!cached)
		cached = (size_t)sysconf(_SC_PAGESIZE);
	return cached;
}

/* Open /dev/hmm_dmirror<index>; returns the descriptor or -errno. */
static inline int dmirror_open(int index)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", index);
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Issue one dmirror command. Returns 0 or -errno; @res (optional) receives
 * the command block as the driver left it, for cpages and faults.
 */
static inline int dmirror_call(int fd, unsigned long request, const void *addr,
			       void *ptr, uint64_t npages,
			       struct hmm_dmirror_cmd *res)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, request, &cmd);
	} while (ret < 0 && errno == EINTR);
	if (res)
		*res = cmd;
	return ret < 0 ? -errno : 0;
}

/*
 * A command on @npages pages at @addr whose buffer only receives data
 * (MIGRATE_*, EXCLUSIVE: the device hands back what it now holds). The
 * buffer is allocated here and dropped; -ENOMEM if it cannot be.
 */
static inline int dmirror_range(int fd, unsigned long request, const void *addr,
				uint64_t npages, struct hmm_dmirror_cmd *res)
{
	void *buf = calloc(npages ? npages : 1, page_bytes());
	int ret;

	if (res)
		memset(res, 0, sizeof(*res));
	if (!buf)
		return -ENOMEM;
	ret = dmirror_call(fd, request, addr, buf, npages, res);
	free(buf);
	return ret;
}

/* Per-device counters under /sys/dev/char/<major>:<minor>/stats/. */
enum dmirror_stat {
	ST_PAGES_TOTAL,
	ST_PAGES_IN_USE,
	ST_TO_DEV,
	ST_TO_SYS,
	ST_CPU_FAULTS,
	ST_DEVICE_FAULTS,
	ST_ALLOC_FAILURES,
	ST_BACKING_CACHED,
	NR_DMIRROR_STATS
};

static const char *const dmirror_stat_file[NR_DMIRROR_STATS] = {
	[ST_PAGES_TOTAL]	= "dev_pages_total",
	[ST_PAGES_IN_USE]	= "dev_pages_in_use",
	[ST_TO_DEV]		= "migrated_to_dev",
	[ST_TO_SYS]		= "migrated_to_sys",
	[ST_CPU_FAULTS]		= "cpu_faults",
	[ST_DEVICE_FAULTS]	= "device_faults",
	[ST_ALLOC_FAILURES]	= "alloc_failures",
	[ST_BACKING_CACHED]	= "backing_cached",
};

struct dmirror_stats {
	long long val[NR_DMIRROR_STATS];
};

/* Read every counter of device @index; returns 0 or -errno. */
static inline int dmirror_stats_read(int index, struct dmirror_stats *st)
{
	char path[128];
	struct stat sb;
	int i;

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", index);
	if (stat(path, &sb))
		return -errno;
	for (i = 0; i < NR_DMIRROR_STATS; i++) {
		FILE *f;
		int got;

		snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/stats/%s",
			 major(sb.st_rdev), minor(sb.st_rdev),
			 dmirror_stat_file[i]);
		f = fopen(path, "r");
		if (!f)
			return -errno;
		got = fscanf(f, "%lld", &st->val[i]);
		fclose(f);
		if (got != 1)
			return -EIO;
	}
	return 0;
}

/* One counter of device @index, or -1 if the device has no such counter. */
static inline long long dmirror_stat(int index, enum dmirror_stat which)
{
	struct dmirror_stats st;

	return dmirror_stats_read(index, &st) ? -1 : st.val[which];
}

/*
 * MADV_FREE and MADV_COLD queue device-coherent pages, like any anonymous
 * page, on per-CPU LRU batches that hold a reference until drained, so a
 * freed page may still count as in use for a while. Compaction drains every
 * CPU's batches; returns 0 or -errno.
 */
static inline int drain_lru_batches(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static inline long long stat_delta(const struct dmirror_stats *before,
				   const struct dmirror_stats *after,
				   enum dmirror_stat which)
{
	return after->val[which] - before->val[which];
}

/*
 * Data patterns. Each 32-bit word depends on a seed and its index and is
 * never zero, so neither a zero-filled page nor a page of another pattern
 * (or another offset of the same one) passes a check.
 */
static inline uint32_t pattern_word(uint32_t seed, size_t i)
{
	uint32_t x = seed * 0x9e3779b1u + (uint32_t)i * 0x85ebca6bu;

	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	return x | 1;
}

static inline void pattern_fill(void *buf, size_t len, uint32_t seed)
{
	uint32_t *w = buf;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		w[i] = pattern_word(seed, i);
}

/*
 * Check @len bytes of @buf against pattern @seed, the pattern starting at
 * word @first. Returns @len when all match, else the byte offset of the
 * first word that does not.
 */
static inline size_t pattern_check_from(const void *buf, size_t len,
					uint32_t seed, size_t first)
{
	const uint32_t *w = buf;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		if (w[i] != pattern_word(seed, first + i))
			return i * sizeof(*w);
	return len;
}

static inline size_t pattern_check(const void *buf, size_t len, uint32_t seed)
{
	return pattern_check_from(buf, len, seed, 0);
}

/* Returns @len if all of @buf is zero, else the offset of the first byte that is not. */
static inline size_t zero_check(const void *buf, size_t len)
{
	const unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return i;
	return len;
}

/* Index of the first snapshot entry in [from, to) that is not @want, or @to. */
static inline size_t snap_mismatch(const uint8_t *snap, size_t from, size_t to,
				   uint8_t want)
{
	size_t i;

	for (i = from; i < to; i++)
		if (snap[i] != want)
			break;
	return i;
}

/* How many of the pages in [@addr, @addr + @len) are resident, or -errno. */
static inline long resident_pages(void *addr, size_t len)
{
	size_t i, n = len / page_bytes();
	unsigned char *vec = calloc(n, 1);
	long resident = 0;

	if (!vec)
		return -ENOMEM;
	if (mincore(addr, len, vec)) {
		resident = -errno;
	} else {
		for (i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	free(vec);
	return resident;
}

/* Give pages 1, 3, 5... of @npages at @mem protection @prot: one VMA each. */
static inline int protect_odd_pages(char *mem, size_t npages, int prot)
{
	size_t i;

	for (i = 1; i < npages; i += 2)
		if (mprotect(mem + i * page_bytes(), page_bytes(), prot))
			return -errno;
	return 0;
}

/* Private anonymous memory; MAP_FAILED on error. */
static inline void *anon_map(size_t len, int prot)
{
	return mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/*
 * Private anonymous memory whose start is aligned to @align, a power of two:
 * map more than needed and trim both ends. MAP_FAILED on error.
 */
static inline void *anon_map_aligned(size_t len, size_t align, int prot)
{
	size_t span = len + align;
	uintptr_t raw, start;
	void *p;

	p = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	raw = (uintptr_t)p;
	start = (raw + align - 1) & ~(uintptr_t)(align - 1);
	if (start > raw)
		munmap(p, start - raw);
	if (raw + span > start + len)
		munmap((void *)(start + len), raw + span - (start + len));
	return (void *)start;
}

/*
 * An address range of @len bytes with nothing mapped in it: reserve it and
 * give it back. Useful as a target for MREMAP_FIXED and for holes.
 */
static inline void *unmapped_range(size_t len)
{
	void *p = anon_map(len, PROT_NONE);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, len);
	return p;
}

/*
 * Value in kB of the smaps field @field ("AnonHugePages:") of the VMA that
 * contains @addr, or -1 if the VMA or the field is not found.
 */
static inline long smaps_kb(const void *addr, const char *field)
{
	uintptr_t a = (uintptr_t)addr;
	bool inside = false;
	char line[256];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (inside)
				break;
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside && !strncmp(line, field, strlen(field))) {
			kb = strtol(line + strlen(field), NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* The counter @name of /proc/vmstat ("thp_split_page"), or -1. */
static inline long long vmstat_count(const char *name)
{
	size_t len = strlen(name);
	long long val = -1;
	char line[128];
	FILE *f;

	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, len) && line[len] == ' ') {
			val = strtoll(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/* The system-wide THP mode, e.g. "madvise"; "never" if THP is not built in. */
static inline const char *thp_mode(void)
{
	static char mode[16];
	char buf[128], *l, *r;
	FILE *f;

	snprintf(mode, sizeof(mode), "never");
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return mode;
	if (fgets(buf, sizeof(buf), f)) {
		l = strchr(buf, '[');
		r = l ? strchr(l, ']') : NULL;
		if (l && r && r - l - 1 < (long)sizeof(mode)) {
			memcpy(mode, l + 1, r - l - 1);
			mode[r - l - 1] = '\0';
		}
	}
	fclose(f);
	return mode;
}

/*
 * Wait for @pid and return its exit status, or 256 + signal number if it was
 * killed, or -1 if waiting failed.
 */
static inline int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 256 + WTERMSIG(status);
}

#endif /* SELFTESTS_MM_HMM_DMIRROR_H */
