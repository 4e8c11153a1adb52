// SPDX-License-Identifier: GPL-2.0
/*
 * HMM selftests, run against the dmirror test device (lib/test_hmm.c).
 *
 * /dev/hmm_dmirror0 and 1 own device-private memory, 2 and 3 device-coherent
 * memory. Four fixtures cover:
 *
 *   mirror     what a device sees through hmm_range_fault(): READ, WRITE and
 *              SNAPSHOT over every kind of mapping the CPU can have;
 *   migrate    moving pages to device memory and back (migrate_vma), and
 *              what every mm operation does to pages that live there;
 *   exclusive  device-exclusive (atomic) access and its revocation;
 *   badarg     how each command rejects malformed requests, from a table.
 *
 * Tests check data, not only return codes: page contents after each step,
 * exact errno values, the device's view from SNAPSHOT and the per-device
 * counters. Counters are shared by every user of a device, so tests only
 * ever compare a reading before and after their own actions.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "../kselftest_harness.h"
#include "hmm-dmirror.h"

#define NPAGES		16
#define RW		(PROT_READ | PROT_WRITE)

#define SNAP_NONE	HMM_DMIRROR_PROT_NONE
#define SNAP_RO		HMM_DMIRROR_PROT_READ
#define SNAP_RW		HMM_DMIRROR_PROT_WRITE
#define SNAP_ZERO	(HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ)
#define SNAP_ERROR	HMM_DMIRROR_PROT_ERROR

/* Every entry of snapshot @snap in [@from, @to) is @want. */
#define EXPECT_SNAP(snap, from, to, want) do {					\
	const uint8_t *__snap = (snap);						\
	size_t __to = (to);							\
	uint8_t __want = (want);						\
	size_t __at = snap_mismatch(__snap, (from), __to, __want);		\
	EXPECT_EQ(__to, __at)							\
		TH_LOG("snapshot entry %zu is 0x%02x, expected 0x%02x",	\
		       __at, __snap[__at], __want);				\
} while (0)

/* @len bytes at @buf hold pattern @seed. */
#define EXPECT_PATTERN(buf, len, seed) do {					\
	size_t __len = (len);							\
	uint32_t __seed = (seed);						\
	size_t __off = pattern_check((buf), __len, __seed);			\
	EXPECT_EQ(__len, __off)							\
		TH_LOG("pattern %u broken at byte %zu (page %zu)",		\
		       __seed, __off, __off / page_bytes());			\
} while (0)

/* @len bytes at @buf read as zero. */
#define EXPECT_ZEROS(buf, len) do {						\
	size_t __len = (len);							\
	size_t __off = zero_check((buf), __len);				\
	EXPECT_EQ(__len, __off)							\
		TH_LOG("nonzero byte at %zu (page %zu)",			\
		       __off, __off / page_bytes());				\
} while (0)

/*
 * Open /dev/hmm_dmirror<index> for a fixture. Returns the descriptor, or
 * -ENOENT after marking the test skipped when this kernel has no such device.
 */
static int open_device(struct __test_metadata *_metadata, int index)
{
	int fd = dmirror_open(index);

	if (fd == -ENOENT)
		SKIP(return fd, "no /dev/hmm_dmirror%d: needs CONFIG_TEST_HMM%s",
		     index, index >= 2 ?
		     " and test_hmm.spm_addr_dev* soft-reserved memory" : "");
	ASSERT_LE(0, fd);
	return fd;
}

static int snapshot(int fd, const void *addr, size_t npages, uint8_t *out)
{
	memset(out, 0xee, npages);
	return dmirror_call(fd, HMM_DMIRROR_SNAPSHOT, addr, out, npages, NULL);
}

static void *scratch(struct __test_metadata *_metadata, size_t len)
{
	void *p = calloc(1, len);

	ASSERT_NE(NULL, p);
	return p;
}

static char *rw_area(struct __test_metadata *_metadata, size_t len)
{
	char *p = anon_map(len, RW);

	ASSERT_NE(MAP_FAILED, p);
	return p;
}

/*
 * A 2 MiB aligned private area with MADV_HUGEPAGE. With @seed nonzero it is
 * written (pattern @seed) and must then be backed by one THP.
 */
static char *thp_area(struct __test_metadata *_metadata, uint32_t seed)
{
	char *p;

	if (!strcmp(thp_mode(), "never"))
		SKIP(return NULL, "transparent hugepages disabled (CONFIG_TRANSPARENT_HUGEPAGE)");
	p = anon_map_aligned(HUGE_2M, HUGE_2M, RW);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, madvise(p, HUGE_2M, MADV_HUGEPAGE));
	if (seed) {
		pattern_fill(p, HUGE_2M, seed);
		ASSERT_EQ(2048, smaps_kb(p, "AnonHugePages:"))
			TH_LOG("the area did not get a THP");
	}
	return p;
}

/* One 2 MiB hugetlb page, private anonymous. */
static char *hugetlb_area(struct __test_metadata *_metadata)
{
	char *p;

	p = mmap(NULL, HUGE_2M, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED && (errno == ENOMEM || errno == EINVAL))
		SKIP(return NULL, "no free 2 MiB hugetlb page (CONFIG_HUGETLBFS, hugepages=)");
	ASSERT_NE(MAP_FAILED, p);
	return p;
}

/* @npages pages of a new memfd, mapped shared and holding pattern @seed. */
static char *memfd_area(struct __test_metadata *_metadata, size_t npages,
			uint32_t seed, int *fdp)
{
	size_t len = npages * page_bytes();
	char *p;
	int fd;

	fd = memfd_create("hmm-tests", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, len));
	p = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	pattern_fill(p, len, seed);
	*fdp = fd;
	return p;
}

/* ------------------------------------------------------------------------
 * mirror: the device's view of process memory
 */

FIXTURE(mirror) {
	int fd;
	size_t page;
};

FIXTURE_VARIANT(mirror) {
	int device;
};

FIXTURE_VARIANT_ADD(mirror, private0) {
	.device = 0,
};

FIXTURE_VARIANT_ADD(mirror, coherent2) {
	.device = 2,
};

FIXTURE_SETUP(mirror)
{
	self->page = page_bytes();
	self->fd = open_device(_metadata, variant->device);
	if (self->fd < 0)
		return;
}

FIXTURE_TEARDOWN(mirror)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(mirror, read_populated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	char *out = scratch(_metadata, len);

	pattern_fill(mem, len, 1);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_PATTERN(out, len, 1);

	/* The device kept its mirror: a second read needs no fault. */
	memset(out, 0, len);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(0, res.faults);
	EXPECT_PATTERN(out, len, 1);
	EXPECT_PATTERN(mem, len, 1);
}

TEST_F(mirror, read_unpopulated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	char *out = scratch(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(out, len, 2);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_ZEROS(out, len);

	/* A read fault maps the shared zero page, read-only. */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_ZERO);
	EXPECT_ZEROS(mem, len);
}

TEST_F(mirror, read_follows_cpu_writes)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	char *out = scratch(_metadata, len);

	pattern_fill(mem, len, 3);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_PATTERN(out, len, 3);

	/*
	 * The CPU rewrites the lot. The device maps the very same pages and
	 * the PTEs do not change, so it sees the new data without a fault.
	 */
	pattern_fill(mem, len, 4);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(0, res.faults);
	EXPECT_PATTERN(out, len, 4);
}

TEST_F(mirror, write_populated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	char *in = scratch(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 5);
	pattern_fill(in, len, 6);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_PATTERN(mem, len, 6);

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
}

TEST_F(mirror, write_unpopulated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(in, len, 7);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_PATTERN(mem, len, 7);

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);

	/* Round trip through the device. */
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_PATTERN(out, len, 7);
}

TEST_F(mirror, write_readonly_is_eperm)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);

	pattern_fill(mem, len, 8);
	ASSERT_EQ(0, mprotect(mem, len, PROT_READ));
	pattern_fill(in, len, 9);
	EXPECT_EQ(-EPERM, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_PATTERN(mem, len, 8);

	/* Reading is still allowed. */
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 8);
}

TEST_F(mirror, write_unpopulated_readonly_is_eperm)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = anon_map(len, PROT_READ);

	ASSERT_NE(MAP_FAILED, mem);
	pattern_fill(in, len, 10);
	EXPECT_EQ(-EPERM, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_ZEROS(mem, len);
}

TEST_F(mirror, write_breaks_cow)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	int go[2], done[2];
	uint8_t snap[NPAGES];
	pid_t pid;
	char c;

	pattern_fill(mem, len, 11);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child holds the old data until the parent's device wrote. */
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(pattern_check(mem, len, 11) == len ? 0 : 1);
	}

	/* Shared with the child, the pages are write-protected in the parent. */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RO);

	pattern_fill(in, len, 12);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_PATTERN(mem, len, 12);
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, child_status(pid));
	close(done[0]);
	close(done[1]);
}

TEST_F(mirror, prot_none_is_efault)
{
	size_t len = NPAGES * self->page;
	char *buf = scratch(_metadata, len);
	char *mem = anon_map(len, PROT_NONE);
	uint8_t snap[NPAGES];

	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, buf, NPAGES, NULL));

	/* A snapshot does not fault: the device is told it has no access. */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_ERROR);
}

TEST_F(mirror, hole_is_efault)
{
	size_t len = 3 * self->page;
	char *buf = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[3];

	pattern_fill(mem, len, 13);
	ASSERT_EQ(0, munmap(mem + self->page, self->page));
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, 3, NULL));
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, buf, 3, NULL));
	/* A snapshot does not fault: it reports the hole as an error entry. */
	ASSERT_EQ(0, snapshot(self->fd, mem, 3, snap));
	EXPECT_SNAP(snap, 0, 1, SNAP_RW);
	EXPECT_SNAP(snap, 1, 2, SNAP_ERROR);
	EXPECT_SNAP(snap, 2, 3, SNAP_RW);

	/* The pages around the hole are intact and still mirrored. */
	EXPECT_PATTERN(mem, self->page, 13);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem + 2 * self->page,
				  buf, 1, NULL));
	EXPECT_EQ(self->page, pattern_check_from(buf, self->page, 13,
						 2 * self->page / 4));
}

/*
 * A device write dirties the page like a CPU write would: data the device
 * wrote after MADV_FREE survives reclaim (MADV_PAGEOUT), which drops a page
 * MADV_FREE left clean.
 */
TEST_F(mirror, write_after_madv_free_survives_pageout)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	struct hmm_dmirror_cmd res;

	ASSERT_EQ(0, madvise(mem, len, MADV_NOHUGEPAGE));
	pattern_fill(mem, len, 65);
	/* MADV_FREE only marks pages that are on the LRU already. */
	ASSERT_EQ(0, drain_lru_batches());
	ASSERT_EQ(0, madvise(mem, len, MADV_FREE));
	pattern_fill(in, len, 66);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, &res));
	ASSERT_EQ(NPAGES, res.cpages);
	ASSERT_EQ(0, madvise(mem, len, MADV_PAGEOUT));
	EXPECT_PATTERN(mem, len, 66);
}

TEST_F(mirror, munmap_drops_mirror)
{
	size_t len = NPAGES * self->page;
	char *buf = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);

	pattern_fill(mem, len, 14);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
	EXPECT_PATTERN(buf, len, 14);
	ASSERT_EQ(0, munmap(mem, len));
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
}

/*
 * The device keeps its mirror in tables of 2 MiB of address space each. A
 * zap that starts and ends inside such tables and covers one whole drops
 * the entries inside and keeps those around it.
 */
TEST_F(mirror, partial_zap_across_tables)
{
	size_t len = 3 * HUGE_2M, n = len / self->page;
	size_t lo = HUGE_2M / 2, hi = len - HUGE_2M / 2;	/* zapped: [lo, hi) */
	char *out = scratch(_metadata, len);
	struct hmm_dmirror_cmd res;
	char *mem;

	mem = anon_map_aligned(len, HUGE_2M, RW);
	ASSERT_NE(MAP_FAILED, mem);
	/* Small pages: splitting a huge one would invalidate all of it. */
	ASSERT_EQ(0, madvise(mem, len, MADV_NOHUGEPAGE));
	pattern_fill(mem, len, 120);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, n, &res));
	EXPECT_EQ(n, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_PATTERN(out, len, 120);

	ASSERT_EQ(0, madvise(mem + lo, hi - lo, MADV_DONTNEED));

	/* Both sides are still mirrored: no fault, same data. */
	memset(out, 0, len);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out,
				  lo / self->page, &res));
	EXPECT_EQ(0, res.faults);
	EXPECT_EQ(lo, pattern_check(out, lo, 120));
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem + hi, out + hi,
				  (len - hi) / self->page, &res));
	EXPECT_EQ(0, res.faults);
	EXPECT_EQ(len - hi, pattern_check_from(out + hi, len - hi, 120,
					       hi / sizeof(uint32_t)));

	/* The inside is not: the device faults the now empty range in. */
	pattern_fill(out, len, 121);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem + lo, out + lo,
				  (hi - lo) / self->page, &res));
	EXPECT_EQ((hi - lo) / self->page, res.cpages);
	EXPECT_EQ(1, res.faults);
	EXPECT_ZEROS(out + lo, hi - lo);
	EXPECT_EQ(0, munmap(mem, len));
	free(out);
}

TEST_F(mirror, dontneed_invalidates)
{
	size_t len = NPAGES * self->page;
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 90);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 90);
	ASSERT_EQ(0, madvise(mem, len, MADV_DONTNEED));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_NONE);
	pattern_fill(out, len, 91);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_ZEROS(out, len);
}

TEST_F(mirror, shared_anon_across_fork)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	int go[2], back[2];
	pid_t pid;
	char *mem;
	char c;

	mem = mmap(NULL, len, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	pattern_fill(mem, len, 92);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 92);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(back));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child sees the device's write, then writes itself. */
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		if (pattern_check(mem, len, 93) != len)
			_exit(1);
		pattern_fill(mem, len, 94);
		_exit(write(back[1], "d", 1) == 1 ? 0 : 3);
	}
	pattern_fill(in, len, 93);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(1, read(back[0], &c, 1));
	EXPECT_EQ(0, child_status(pid));
	/* The child's CPU writes invalidated the parent's device mirror. */
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 94);
}

/* Many more pages than the device handles in one go. */
#define BIG_PAGES	300

TEST_F(mirror, large_range)
{
	size_t len = BIG_PAGES * self->page, half = len / 2;
	struct hmm_dmirror_cmd res;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[BIG_PAGES];

	/*
	 * Small pages only, as the snapshot below expects: under
	 * THP=always a 2 MiB block that starts inside the area and ends in
	 * a neighbouring anonymous mapping merged with it may get a THP.
	 */
	ASSERT_EQ(0, madvise(mem, len, MADV_NOHUGEPAGE));
	pattern_fill(mem, half, 97);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, BIG_PAGES, &res));
	EXPECT_EQ(BIG_PAGES, res.cpages);
	EXPECT_PATTERN(out, half, 97);
	EXPECT_ZEROS(out + half, len - half);

	pattern_fill(in, len, 98);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, BIG_PAGES, &res));
	EXPECT_EQ(BIG_PAGES, res.cpages);
	EXPECT_PATTERN(mem, len, 98);
	ASSERT_EQ(0, snapshot(self->fd, mem, BIG_PAGES, snap));
	EXPECT_SNAP(snap, 0, BIG_PAGES, SNAP_RW);
}

TEST_F(mirror, snapshot_unpopulated)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_NONE);
	/* Looking must not populate anything. */
	EXPECT_EQ(0, resident_pages(mem, len));
}

TEST_F(mirror, snapshot_zero_page)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	EXPECT_ZEROS(mem, len);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_ZERO);
}

TEST_F(mirror, snapshot_mixed_vmas)
{
	/* Four two-page VMAs: untouched, written, zero page read-only, no access. */
	static const struct {
		int prot;
		uint8_t want;
	} part[] = {
		{ RW,		SNAP_NONE },
		{ RW,		SNAP_RW },
		{ PROT_READ,	SNAP_ZERO },
		{ PROT_NONE,	SNAP_ERROR },
	};
	size_t n = 2 * ARRAY_SIZE(part), each = 2 * self->page;
	char *buf = scratch(_metadata, n * self->page);
	char *mem = rw_area(_metadata, n * self->page);
	uint8_t snap[2 * ARRAY_SIZE(part)];
	int ret = 0;
	size_t i;

	memset(mem + each, 0x5a, each);
	EXPECT_ZEROS(mem + 2 * each, each);
	for (i = 0; i < ARRAY_SIZE(part); i++)
		ret |= mprotect(mem + i * each, each, part[i].prot);
	ASSERT_EQ(0, ret);

	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	for (i = 0; i < ARRAY_SIZE(part); i++)
		EXPECT_SNAP(snap, 2 * i, 2 * i + 2, part[i].want);

	/* A fault over the whole range stops at the no-access VMA. */
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, n, NULL));
	/* Without it, the device reads through all three. */
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, n - 2, NULL));
	EXPECT_ZEROS(buf, each);
	for (i = 0; i < each; i++)
		if (buf[each + i] != 0x5a)
			break;
	EXPECT_EQ(each, i);
	EXPECT_ZEROS(buf + 2 * each, each);
}

TEST_F(mirror, alternating_protections)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];
	int i;

	pattern_fill(mem, len, 15);
	ASSERT_EQ(0, protect_odd_pages(mem, NPAGES, PROT_READ));

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(i & 1 ? SNAP_RO : SNAP_RW, snap[i])
			TH_LOG("page %d", i);
	}

	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 15);

	pattern_fill(in, len, 16);
	EXPECT_EQ(-EPERM, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	for (i = 1; i < NPAGES; i += 2) {
		EXPECT_EQ(self->page,
			  pattern_check_from(mem + i * self->page, self->page, 15,
					     i * self->page / 4))
			TH_LOG("read-only page %d changed", i);
	}
}

TEST_F(mirror, snapshot_readonly_mapping)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 17);
	ASSERT_EQ(0, mprotect(mem, len, PROT_READ));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RO);
	EXPECT_PATTERN(mem, len, 17);
}

TEST_F(mirror, thp_snapshot_pmd)
{
	size_t n = HUGE_2M / self->page;
	char *out = scratch(_metadata, HUGE_2M);
	char *mem = thp_area(_metadata, 18);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW | HMM_DMIRROR_PROT_PMD);

	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, n, NULL));
	EXPECT_PATTERN(out, HUGE_2M, 18);
}

TEST_F(mirror, thp_device_write)
{
	size_t n = HUGE_2M / self->page;
	char *in = scratch(_metadata, HUGE_2M);
	char *mem = thp_area(_metadata, 19);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	pattern_fill(in, HUGE_2M, 20);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, n, NULL));
	EXPECT_PATTERN(mem, HUGE_2M, 20);
	/* Writing through the mirror did not split the huge page. */
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW | HMM_DMIRROR_PROT_PMD);
}

TEST_F(mirror, thp_read_unpopulated)
{
	size_t n = HUGE_2M / self->page;
	char *out = scratch(_metadata, HUGE_2M);
	char *mem = thp_area(_metadata, 0);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	pattern_fill(out, HUGE_2M, 21);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, n, NULL));
	EXPECT_ZEROS(out, HUGE_2M);
	/* A read fault in a huge-page area maps the huge zero page. */
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RO | HMM_DMIRROR_PROT_PMD);
}

TEST_F(mirror, hugetlb_snapshot)
{
	size_t n = HUGE_2M / self->page;
	char *out = scratch(_metadata, HUGE_2M);
	char *mem = hugetlb_area(_metadata);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	pattern_fill(mem, HUGE_2M, 22);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW | HMM_DMIRROR_PROT_PMD);

	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, n, NULL));
	EXPECT_PATTERN(out, HUGE_2M, 22);
}

TEST_F(mirror, hugetlb_device_write)
{
	size_t n = HUGE_2M / self->page;
	char *in = scratch(_metadata, HUGE_2M);
	char *mem = hugetlb_area(_metadata);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	pattern_fill(in, HUGE_2M, 23);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, n, NULL));
	EXPECT_PATTERN(mem, HUGE_2M, 23);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW | HMM_DMIRROR_PROT_PMD);
}

TEST_F(mirror, memfd_shared)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	uint8_t snap[NPAGES];
	char *mem, *other;
	int mfd;

	mem = memfd_area(_metadata, NPAGES, 24, &mfd);
	other = mmap(NULL, len, PROT_READ, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, other);

	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 24);

	/* What the device writes is the file: the second mapping sees it. */
	pattern_fill(in, len, 25);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_PATTERN(other, len, 25);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
	ASSERT_EQ(0, snapshot(self->fd, other, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RO);
	close(mfd);
}

TEST_F(mirror, tmpfs_file)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *out = scratch(_metadata, len);
	char path[] = "/tmp/hmm-tests-XXXXXX";
	char *mem, *ro;
	int wfd, rfd;

	wfd = mkstemp(path);
	ASSERT_LE(0, wfd);
	rfd = open(path, O_RDONLY);
	ASSERT_LE(0, rfd);
	unlink(path);
	pattern_fill(in, len, 26);
	ASSERT_EQ((ssize_t)len, pwrite(wfd, in, len, 0));
	mem = mmap(NULL, len, RW, MAP_SHARED, wfd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	ro = mmap(NULL, len, PROT_READ, MAP_SHARED, rfd, 0);
	ASSERT_NE(MAP_FAILED, ro);

	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 26);

	pattern_fill(in, len, 27);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	memset(out, 0, len);
	ASSERT_EQ((ssize_t)len, pread(rfd, out, len, 0));
	EXPECT_PATTERN(out, len, 27);

	/* A read-only shared mapping of the same file refuses device writes. */
	pattern_fill(in, len, 28);
	EXPECT_EQ(-EPERM, dmirror_call(self->fd, HMM_DMIRROR_WRITE, ro, in, NPAGES, NULL));
	EXPECT_PATTERN(ro, len, 27);
	memset(out, 0, len);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, ro, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 27);
	close(wfd);
	close(rfd);
}

TEST_F(mirror, device_file_mapping)
{
	size_t len = 4 * self->page;
	char *buf = scratch(_metadata, len);
	uint8_t snap[4];
	char *mem;

	/*
	 * The device file maps ordinary kernel pages into a VM_MIXEDMAP vma.
	 * They have struct pages, so the device may mirror them, but they are
	 * not anonymous memory and cannot migrate.
	 */
	mem = mmap(NULL, len, RW, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_ZEROS(mem, len);
	pattern_fill(mem, len, 96);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, 4, NULL));
	EXPECT_PATTERN(buf, len, 96);
	ASSERT_EQ(0, snapshot(self->fd, mem, 4, snap));
	EXPECT_SNAP(snap, 0, 4, SNAP_RW);
	EXPECT_EQ(-EINVAL, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem, 4, NULL));
	EXPECT_PATTERN(mem, len, 96);
}

TEST_F(mirror, device_faults_counted)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);

	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	/* One device fault brought in all the pages; the counter counts pages. */
	EXPECT_EQ(1, res.faults);
	EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_DEVICE_FAULTS));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
}

/* ------------------------------------------------------------------------
 * migrate: pages in device memory
 */

FIXTURE(migrate) {
	int fd;
	int peer_fd;
	size_t page;
	uint8_t local;		/* SNAPSHOT of a writable page on this device */
	uint8_t remote;		/* ... of one on the peer device */
};

FIXTURE_VARIANT(migrate) {
	int device;
	int peer;		/* the other device of the same memory type */
	bool coherent;
};

FIXTURE_VARIANT_ADD(migrate, private0) {
	.device = 0, .peer = 1, .coherent = false,
};

FIXTURE_VARIANT_ADD(migrate, private1) {
	.device = 1, .peer = 0, .coherent = false,
};

FIXTURE_VARIANT_ADD(migrate, coherent2) {
	.device = 2, .peer = 3, .coherent = true,
};

FIXTURE_VARIANT_ADD(migrate, coherent3) {
	.device = 3, .peer = 2, .coherent = true,
};

FIXTURE_SETUP(migrate)
{
	self->page = page_bytes();
	self->peer_fd = -1;
	self->fd = open_device(_metadata, variant->device);
	if (self->fd < 0)
		return;
	self->peer_fd = open_device(_metadata, variant->peer);
	if (self->peer_fd < 0)
		return;
	/*
	 * Device pages are reported with their access, like system pages.
	 * Another device's private page is invisible to a snapshot: it is
	 * not present for the CPU, and only its owner may use it unfaulted.
	 */
	if (variant->coherent) {
		self->local = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | SNAP_RW;
		self->remote = HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | SNAP_RW;
	} else {
		self->local = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | SNAP_RW;
		self->remote = SNAP_NONE;
	}
}

FIXTURE_TEARDOWN(migrate)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->peer_fd >= 0)
		close(self->peer_fd);
}

/* Migrate @npages at @mem to @fd's memory; all of them must move. */
static void to_device(struct __test_metadata *_metadata, int fd, void *mem,
		      size_t npages)
{
	struct hmm_dmirror_cmd res;

	ASSERT_EQ(0, dmirror_range(fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
				   npages, &res));
	ASSERT_EQ(npages, res.cpages);
}

TEST_F(migrate, to_device)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 31);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_SYS));
	EXPECT_LE(after.val[ST_PAGES_IN_USE], after.val[ST_PAGES_TOTAL]);

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
}

TEST_F(migrate, cpu_read_after_migration)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 32);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	EXPECT_PATTERN(mem, len, 32);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	if (variant->coherent) {
		/* The CPU reaches coherent memory directly: nothing moves. */
		EXPECT_SNAP(snap, 0, NPAGES, self->local);
		EXPECT_EQ(0, stat_delta(&before, &after, ST_CPU_FAULTS));
		EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_SYS));
	} else {
		/* Private memory is faulted back, page by page. */
		EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
		EXPECT_LE(1, stat_delta(&before, &after, ST_CPU_FAULTS));
		EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_TO_SYS));
		EXPECT_EQ(-NPAGES, stat_delta(&before, &after, ST_PAGES_IN_USE));
	}
}

TEST_F(migrate, cpu_write_after_migration)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 33);
	to_device(_metadata, self->fd, mem, NPAGES);
	/* Rewrite page 0 only; the rest stays where it is. */
	pattern_fill(mem, self->page, 34);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_EQ(variant->coherent ? self->local : SNAP_RW, snap[0]);
	EXPECT_SNAP(snap, 1, NPAGES, self->local);
	EXPECT_PATTERN(mem, self->page, 34);
	EXPECT_EQ(len - self->page,
		  pattern_check_from(mem + self->page, len - self->page, 33,
				     self->page / 4));
}

TEST_F(migrate, to_system)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 35);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_TO_SYS));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_CPU_FAULTS));

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
	EXPECT_PATTERN(mem, len, 35);
}

TEST_F(migrate, to_system_not_migrated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 36);
	EXPECT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, &res));
	EXPECT_EQ(0, res.cpages);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
	EXPECT_PATTERN(mem, len, 36);
}

TEST_F(migrate, twice)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 37);
	to_device(_metadata, self->fd, mem, NPAGES);
	/*
	 * Pages already on the device stay where they are; the command
	 * still reports every page as held by the device.
	 */
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	EXPECT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
				   NPAGES, &res));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 37);
}

TEST_F(migrate, unpopulated)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_ZEROS(mem, len);
}

TEST_F(migrate, half_populated)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len / 2, 95);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len / 2, 95);
	EXPECT_ZEROS(mem + len / 2, len / 2);
}

TEST_F(migrate, large_range)
{
	size_t len = BIG_PAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[BIG_PAGES];

	pattern_fill(mem, len, 99);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, BIG_PAGES);
	ASSERT_EQ(0, snapshot(self->fd, mem, BIG_PAGES, snap));
	EXPECT_SNAP(snap, 0, BIG_PAGES, self->local);
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   BIG_PAGES, &res));
	EXPECT_EQ(BIG_PAGES, res.cpages);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(BIG_PAGES, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(BIG_PAGES, stat_delta(&before, &after, ST_TO_SYS));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_PATTERN(mem, len, 99);
}

TEST_F(migrate, device_reads_local)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 38);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, out, NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_PATTERN(out, len, 38);
	/* Reading its own memory does not move the pages. */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
}

TEST_F(migrate, device_writes_local)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 39);
	to_device(_metadata, self->fd, mem, NPAGES);
	pattern_fill(in, len, 40);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 40);
}

TEST_F(migrate, peer_snapshot)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 41);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, snapshot(self->peer_fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->remote);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 41);
}

TEST_F(migrate, peer_reads)
{
	size_t len = NPAGES * self->page;
	char *out = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 42);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_call(self->peer_fd, HMM_DMIRROR_READ, mem, out, NPAGES, NULL));
	EXPECT_PATTERN(out, len, 42);
	/*
	 * Another device cannot reach private memory: its fault brings the
	 * pages back to system memory. Coherent memory it reads in place.
	 */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, variant->coherent ? self->local : SNAP_RW);
	EXPECT_PATTERN(mem, len, 42);
}

TEST_F(migrate, to_peer_directly)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 43);
	to_device(_metadata, self->fd, mem, NPAGES);
	/*
	 * The peer only migrates from system memory: nothing moves, and the
	 * peer does not hold the pages it was asked for.
	 */
	EXPECT_EQ(-ENOENT, dmirror_range(self->peer_fd, HMM_DMIRROR_MIGRATE_TO_DEV,
					 mem, NPAGES, &res));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 43);
}

/*
 * After a migration the device maps what landed in its memory. When the
 * first page stays out (here: in the peer's memory), every later page must
 * still be mapped at its own address: a device read without faulting
 * returns each page's own data, not its neighbour's.
 */
TEST_F(migrate, view_after_foreign_first_page)
{
	size_t len = NPAGES * self->page, rest = len - self->page;
	char *mem = rw_area(_metadata, len);
	char *out = scratch(_metadata, rest);
	struct hmm_dmirror_cmd res;

	pattern_fill(mem, len, 64);
	to_device(_metadata, self->peer_fd, mem, 1);
	EXPECT_EQ(-ENOENT, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
					 NPAGES, &res));
	EXPECT_EQ(NPAGES - 1, res.cpages);
	/* No fault: only what the migration mapped is read. */
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem + self->page, out,
				  NPAGES - 1, &res));
	EXPECT_EQ(0, res.faults);
	EXPECT_EQ(rest, pattern_check_from(out, rest, 64, self->page / 4));
	EXPECT_PATTERN(mem, len, 64);
}

TEST_F(migrate, to_peer_through_system)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after, pbefore, pafter;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 44);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, dmirror_stats_read(variant->peer, &pbefore));
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	to_device(_metadata, self->peer_fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	ASSERT_EQ(0, dmirror_stats_read(variant->peer, &pafter));
	EXPECT_EQ(-NPAGES, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_EQ(NPAGES, stat_delta(&pbefore, &pafter, ST_PAGES_IN_USE));
	EXPECT_EQ(NPAGES, stat_delta(&pbefore, &pafter, ST_TO_DEV));

	ASSERT_EQ(0, snapshot(self->peer_fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->remote);
	EXPECT_PATTERN(mem, len, 44);
}

TEST_F(migrate, fork_cow)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	int go[2];
	pid_t pid;
	char c;

	pattern_fill(mem, len, 45);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child sees the device data, then makes it its own. */
		if (pattern_check(mem, len, 45) != len)
			_exit(1);
		pattern_fill(mem, len, 46);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(pattern_check(mem, len, 46) == len ? 0 : 3);
	}
	/* The parent writes half, the child's copy stays the child's. */
	pattern_fill(mem, len / 2, 47);
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, child_status(pid));
	EXPECT_PATTERN(mem, len / 2, 47);
	EXPECT_EQ(len / 2, pattern_check_from(mem + len / 2, len / 2, 45, len / 8));
}

TEST_F(migrate, fork_then_device_write)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	int go[2];
	pid_t pid;
	char c;

	pattern_fill(mem, len, 48);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(pattern_check(mem, len, 48) == len ? 0 : 1);
	}
	/*
	 * A device write in the parent breaks COW; the child keeps its data.
	 * Private pages shared with the child are read-only device entries:
	 * the write has to go through the CPU's COW in system memory.
	 */
	pattern_fill(in, len, 49);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_PATTERN(mem, len, 49);
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, child_status(pid));
}

TEST_F(migrate, mremap)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *buf = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];
	char *dst, *moved;

	pattern_fill(mem, len, 50);
	to_device(_metadata, self->fd, mem, NPAGES);
	dst = unmapped_range(len);
	ASSERT_NE(NULL, dst);
	moved = mremap(mem, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, moved);

	/* The device entries moved with the page tables... */
	ASSERT_EQ(0, snapshot(self->fd, moved, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
	/* ... so the device finds its pages at the new address, in place. */
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, moved, buf, NPAGES, &res));
	EXPECT_EQ(1, res.faults);
	EXPECT_PATTERN(buf, len, 50);
	ASSERT_EQ(0, snapshot(self->fd, moved, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, moved,
				   NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, moved, buf, NPAGES, NULL));
	EXPECT_PATTERN(buf, len, 50);
	EXPECT_PATTERN(moved, len, 50);
}

TEST_F(migrate, mremap_grow)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, 2 * len);
	uint8_t snap[2 * NPAGES];
	char *moved;

	/* Keep the second half free so the area can grow in place or move. */
	ASSERT_EQ(0, munmap(mem + len, len));
	pattern_fill(mem, len, 51);
	to_device(_metadata, self->fd, mem, NPAGES);
	moved = mremap(mem, len, 2 * len, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, moved);
	ASSERT_EQ(0, snapshot(self->fd, moved, 2 * NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_SNAP(snap, NPAGES, 2 * NPAGES, SNAP_NONE);
	EXPECT_PATTERN(moved, len, 51);
	EXPECT_ZEROS(moved + len, len);
}

TEST_F(migrate, mprotect_readonly)
{
	size_t len = NPAGES * self->page;
	char *in = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);

	pattern_fill(mem, len, 52);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, mprotect(mem, len, PROT_READ));
	pattern_fill(in, len, 53);
	EXPECT_EQ(-EPERM, dmirror_call(self->fd, HMM_DMIRROR_WRITE, mem, in, NPAGES, NULL));
	EXPECT_PATTERN(mem, len, 52);
	ASSERT_EQ(0, mprotect(mem, len, RW));
	pattern_fill(mem, len, 54);
	EXPECT_PATTERN(mem, len, 54);
}

TEST_F(migrate, mprotect_none)
{
	size_t len = NPAGES * self->page;
	char *buf = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 55);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, mprotect(mem, len, PROT_NONE));
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_ERROR);
	ASSERT_EQ(0, mprotect(mem, len, RW));
	EXPECT_PATTERN(mem, len, 55);
}

TEST_F(migrate, madv_dontneed)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 56);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, madvise(mem, len, MADV_DONTNEED));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	/* The device memory is freed, not migrated back. */
	EXPECT_EQ(-NPAGES, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_SYS));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_NONE);
	EXPECT_ZEROS(mem, len);
}

TEST_F(migrate, madv_free)
{
	size_t len = NPAGES * self->page;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 57);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, madvise(mem, len, MADV_FREE));
	/* Without memory pressure nothing is reclaimed, device pages least of all. */
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 57);
	pattern_fill(mem, len, 58);
	EXPECT_PATTERN(mem, len, 58);
}

TEST_F(migrate, partial_munmap)
{
	size_t len = NPAGES * self->page, quarter = len / 4;
	struct dmirror_stats before, after;
	char *buf = scratch(_metadata, len);
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 59);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, munmap(mem + quarter, 2 * quarter));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(-NPAGES / 2, stat_delta(&before, &after, ST_PAGES_IN_USE));

	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES / 4, snap));
	EXPECT_SNAP(snap, 0, NPAGES / 4, self->local);
	ASSERT_EQ(0, snapshot(self->fd, mem + 3 * quarter, NPAGES / 4, snap));
	EXPECT_SNAP(snap, 0, NPAGES / 4, self->local);
	EXPECT_EQ(-EFAULT, dmirror_call(self->fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL));
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, mem + 3 * quarter, buf,
				  NPAGES / 4, NULL));
	EXPECT_EQ(quarter, pattern_check_from(buf, quarter, 59, 3 * quarter / 4));
	EXPECT_PATTERN(mem, quarter, 59);
	EXPECT_EQ(quarter, pattern_check_from(mem + 3 * quarter, quarter, 59,
					      3 * quarter / 4));
}

TEST_F(migrate, exit_frees_device_memory)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	pid_t pid;

	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A file mirrors its opener: the child needs its own. */
		int fd = dmirror_open(variant->device);
		struct hmm_dmirror_cmd res;
		char *mem = anon_map(len, RW);

		if (fd < 0 || mem == MAP_FAILED)
			_exit(1);
		pattern_fill(mem, len, 60);
		if (dmirror_range(fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
				  NPAGES, &res) || res.cpages != NPAGES)
			_exit(2);
		/* Exit with the pages still on the device, the file open. */
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(NPAGES, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_SYS));
}

TEST_F(migrate, alloc_failure)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];
	int ret;

	pattern_fill(mem, len, 61);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL,
				  HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL));
	ret = dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem, NPAGES, &res);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	/* Out of device memory: an errno, or fewer pages than asked for. */
	EXPECT_EQ(ret ? -ENOMEM : 0, ret);
	if (!ret)
		EXPECT_GT(NPAGES, res.cpages);
	EXPECT_EQ(1, stat_delta(&before, &after, ST_ALLOC_FAILURES));
	EXPECT_EQ(ret ? 0 : (long long)res.cpages,
		  stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_PATTERN(mem, len, 61);

	/* The failure was a one-shot: the next migration moves everything. */
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, NULL));
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_PATTERN(mem, len, 61);
}

/*
 * A device-private page keeps its backing system page when it is freed, so
 * the next migration into the device reuses it; the driver's shrinker gives
 * the backing of free pages back. drop_caches runs every shrinker to the
 * end, after which the device allocates backing again and data still
 * arrives intact.
 */
TEST_F(migrate, backing_kept_then_shrunk)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];
	int fd;

	if (variant->coherent)
		SKIP(return, "device-coherent memory needs no backing pages");
	pattern_fill(mem, len, 64);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, NULL));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	/* Cached ones were used first; all NPAGES came back cached. */
	EXPECT_EQ(before.val[ST_BACKING_CACHED] > NPAGES ?
		  before.val[ST_BACKING_CACHED] : NPAGES,
		  after.val[ST_BACKING_CACHED]);
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	EXPECT_PATTERN(mem, len, 64);

	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(2, write(fd, "2\n", 2));
	close(fd);
	EXPECT_EQ(0, dmirror_stat(variant->device, ST_BACKING_CACHED));

	pattern_fill(mem, len, 65);
	to_device(_metadata, self->fd, mem, NPAGES);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, self->local);
	EXPECT_EQ(0, dmirror_stat(variant->device, ST_BACKING_CACHED));
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   NPAGES, NULL));
	EXPECT_EQ(NPAGES, dmirror_stat(variant->device, ST_BACKING_CACHED));
	EXPECT_PATTERN(mem, len, 65);
}

/*
 * Asking for more than a device-coherent device holds (its soft-reserved
 * range, 256 MiB in the test VM): the device fills up, the command stops
 * with -ENOMEM, the rest stays in system memory and every page keeps its
 * data. Device-private memory is bounded only by system RAM here.
 */
TEST_F(migrate, exhaust_device)
{
	const size_t capacity = 256UL << 20, len = capacity + (8UL << 20);
	size_t npages = len / self->page;
	struct dmirror_stats before, full, after;
	char *mem;

	if (!variant->coherent)
		SKIP(return, "device-private memory grows until system RAM runs out");
	mem = rw_area(_metadata, len);
	pattern_fill(mem, len, 62);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	EXPECT_EQ(-ENOMEM, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
					 npages, NULL));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &full));
	EXPECT_EQ(capacity / self->page, full.val[ST_PAGES_TOTAL]);
	EXPECT_LT(0, stat_delta(&before, &full, ST_ALLOC_FAILURES));
	/* Full but for the batch (a PMD's worth) that could not be had whole. */
	EXPECT_LT(full.val[ST_PAGES_TOTAL] - 512, full.val[ST_PAGES_IN_USE]);
	EXPECT_PATTERN(mem, len, 62);

	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem,
				   npages, NULL));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(before.val[ST_PAGES_IN_USE], after.val[ST_PAGES_IN_USE]);
	EXPECT_EQ(stat_delta(&before, &full, ST_PAGES_IN_USE),
		  stat_delta(&full, &after, ST_TO_SYS));
	EXPECT_PATTERN(mem, len, 62);
	munmap(mem, len);
}

TEST_F(migrate, flags_reject_unknown_bits)
{
	int bit;

	for (bit = 2; bit < 64; bit++) {
		EXPECT_EQ(-EINVAL, dmirror_call(self->fd, HMM_DMIRROR_FLAGS, NULL,
						NULL, 1ULL << bit, NULL))
			TH_LOG("flag bit %d", bit);
	}
	/* Clearing every flag is always allowed. */
	EXPECT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL, 0, NULL));
}

TEST_F(migrate, thp)
{
	size_t n = HUGE_2M / self->page;
	struct hmm_dmirror_cmd res;
	char *mem = thp_area(_metadata, 62);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	to_device(_metadata, self->fd, mem, n);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, self->local);
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem, n, &res));
	EXPECT_EQ(n, res.cpages);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	/* The huge page was split on the way: it comes back as base pages. */
	EXPECT_SNAP(snap, 0, n, SNAP_RW);
	EXPECT_PATTERN(mem, HUGE_2M, 62);
}

TEST_F(migrate, thp_cpu_fault_back)
{
	size_t n = HUGE_2M / self->page;
	char *mem = thp_area(_metadata, 63);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	to_device(_metadata, self->fd, mem, n);
	EXPECT_PATTERN(mem, HUGE_2M, 63);
	pattern_fill(mem, HUGE_2M, 64);
	EXPECT_PATTERN(mem, HUGE_2M, 64);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	if (variant->coherent)
		EXPECT_SNAP(snap, 0, n, self->local);
	else
		EXPECT_SNAP(snap, 0, n, SNAP_RW);
}

/*
 * A THP that the migration covers exactly is not split: the core unmaps it
 * in one step, each of its pages moves to a device page of its own, and the
 * THP is freed whole. The pages come back one by one.
 */
TEST_F(migrate, thp_moves_whole)
{
	size_t n = HUGE_2M / self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = thp_area(_metadata, 65);
	uint8_t *snap = scratch(_metadata, n);
	long long splits;

	if (!mem)
		return;
	splits = vmstat_count("thp_split_page");
	ASSERT_LE(0, splits);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, n);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(splits, vmstat_count("thp_split_page"));
	EXPECT_EQ((long long)n, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(0, smaps_kb(mem, "AnonHugePages:"));
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, self->local);

	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem, n, &res));
	EXPECT_EQ(n, res.cpages);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW);
	EXPECT_PATTERN(mem, HUGE_2M, 65);
	EXPECT_EQ(splits, vmstat_count("thp_split_page"));
}

/*
 * The device cannot take a THP collected whole: nothing moves, the pages
 * are mapped again where they were (by the same THP, now through a page
 * table) with their data, and the next attempt moves them.
 */
TEST_F(migrate, thp_whole_alloc_failure)
{
	size_t n = HUGE_2M / self->page;
	struct dmirror_stats before, after;
	char *mem = thp_area(_metadata, 66);
	uint8_t *snap = scratch(_metadata, n);
	long long splits;

	if (!mem)
		return;
	splits = vmstat_count("thp_split_page");
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL,
				  HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL));
	EXPECT_EQ(-ENOMEM, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV,
					 mem, n, NULL));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(1, stat_delta(&before, &after, ST_ALLOC_FAILURES));
	EXPECT_EQ(splits, vmstat_count("thp_split_page"));
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW);
	EXPECT_PATTERN(mem, HUGE_2M, 66);
	pattern_fill(mem, HUGE_2M, 67);
	EXPECT_PATTERN(mem, HUGE_2M, 67);

	to_device(_metadata, self->fd, mem, n);
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, self->local);
	EXPECT_PATTERN(mem, HUGE_2M, 67);
}

/*
 * The device takes only every other page of a THP collected whole: those
 * move, the others are mapped again from the THP, which is queued for
 * deferred splitting; every page keeps its data.
 */
TEST_F(migrate, thp_whole_partly_taken)
{
	size_t n = HUGE_2M / self->page, i;
	struct dmirror_stats before, after;
	char *mem = thp_area(_metadata, 71);
	uint8_t *snap = scratch(_metadata, n);
	long long queued;

	if (!mem)
		return;
	queued = vmstat_count("thp_deferred_split_page");
	ASSERT_LE(0, queued);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_FLAGS, NULL, NULL,
				  HMM_DMIRROR_FLAG_HALF_MIGRATE, NULL));
	/* The pages left in system memory make the command fail. */
	EXPECT_EQ(-ENOENT, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV,
					 mem, n, NULL));
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ((long long)n / 2, stat_delta(&before, &after, ST_TO_DEV));
	EXPECT_EQ(queued + 1, vmstat_count("thp_deferred_split_page"));
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	for (i = 0; i < n; i += 2) {
		EXPECT_SNAP(snap, i, i + 1, SNAP_RW);
		EXPECT_SNAP(snap, i + 1, i + 2, self->local);
	}
	EXPECT_PATTERN(mem, HUGE_2M, 71);
	pattern_fill(mem, HUGE_2M, 72);
	EXPECT_PATTERN(mem, HUGE_2M, 72);
	to_device(_metadata, self->fd, mem, n);
	EXPECT_PATTERN(mem, HUGE_2M, 72);
}

/*
 * Half a THP: the range does not cover it, so it is split and only the
 * pages asked for move.
 */
TEST_F(migrate, thp_half_is_split)
{
	size_t n = HUGE_2M / self->page;
	char *mem = thp_area(_metadata, 68);
	uint8_t *snap = scratch(_metadata, n);
	long long splits;

	if (!mem)
		return;
	splits = vmstat_count("thp_split_page");
	to_device(_metadata, self->fd, mem + HUGE_2M / 2, n / 2);
	EXPECT_EQ(splits + 1, vmstat_count("thp_split_page"));
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n / 2, SNAP_RW);
	EXPECT_SNAP(snap, n / 2, n, self->local);
	EXPECT_PATTERN(mem, HUGE_2M, 68);
}

/*
 * A THP shared with a child after fork is mapped twice: it is split and its
 * pages move as base pages; each process keeps its data.
 */
TEST_F(migrate, thp_shared_after_fork)
{
	size_t n = HUGE_2M / self->page;
	char *mem = thp_area(_metadata, 69);
	long long splits;
	int go[2];
	pid_t pid;
	char c;

	if (!mem)
		return;
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		_exit(pattern_check(mem, HUGE_2M, 69) == HUGE_2M ? 0 : 1);
	}
	splits = vmstat_count("thp_split_page");
	to_device(_metadata, self->fd, mem, n);
	EXPECT_EQ(splits + 1, vmstat_count("thp_split_page"));
	EXPECT_PATTERN(mem, HUGE_2M, 69);
	pattern_fill(mem, HUGE_2M, 70);
	ASSERT_EQ(1, write(go[1], "g", 1));
	EXPECT_EQ(0, child_status(pid));
	EXPECT_PATTERN(mem, HUGE_2M, 70);
}

TEST_F(migrate, hugetlb_refused)
{
	size_t n = HUGE_2M / self->page;
	struct hmm_dmirror_cmd res;
	char *mem = hugetlb_area(_metadata);
	uint8_t *snap = scratch(_metadata, n);

	if (!mem)
		return;

	pattern_fill(mem, HUGE_2M, 65);
	EXPECT_EQ(-EINVAL, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
					 n, &res));
	ASSERT_EQ(0, snapshot(self->fd, mem, n, snap));
	EXPECT_SNAP(snap, 0, n, SNAP_RW | HMM_DMIRROR_PROT_PMD);
	EXPECT_PATTERN(mem, HUGE_2M, 65);
}

TEST_F(migrate, shared_file_not_migrated)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	uint8_t snap[NPAGES];
	char *mem;
	int mfd;

	mem = memfd_area(_metadata, NPAGES, 66, &mfd);
	/* Only private anonymous pages can move to device memory. */
	EXPECT_EQ(-ENOENT, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
					 NPAGES, &res));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
	EXPECT_PATTERN(mem, len, 66);
	close(mfd);
}

TEST_F(migrate, release)
{
	size_t len = NPAGES * self->page;
	struct dmirror_stats before, after;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];

	pattern_fill(mem, len, 67);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &before));
	to_device(_metadata, self->fd, mem, NPAGES);
	/* The device gives all its memory back: pages return to the system. */
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_RELEASE, mem, NPAGES, &res));
	EXPECT_LE(NPAGES, res.cpages);
	ASSERT_EQ(0, dmirror_stats_read(variant->device, &after));
	EXPECT_EQ(0, stat_delta(&before, &after, ST_PAGES_IN_USE));
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	EXPECT_SNAP(snap, 0, NPAGES, SNAP_RW);
	EXPECT_PATTERN(mem, len, 67);

	/* and can be used again. */
	to_device(_metadata, self->fd, mem, NPAGES);
	EXPECT_PATTERN(mem, len, 67);
}

TEST_F(migrate, many_vmas)
{
	size_t len = NPAGES * self->page;
	struct hmm_dmirror_cmd res;
	char *mem = rw_area(_metadata, len);
	uint8_t snap[NPAGES];
	int i;

	pattern_fill(mem, len, 68);
	ASSERT_EQ(0, protect_odd_pages(mem, NPAGES, PROT_READ));
	/* Migration walks all eight read-only and eight writable VMAs. */
	ASSERT_EQ(0, dmirror_range(self->fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem,
				   NPAGES, &res));
	EXPECT_EQ(NPAGES, res.cpages);
	ASSERT_EQ(0, snapshot(self->fd, mem, NPAGES, snap));
	for (i = 0; i < NPAGES; i++) {
		uint8_t want = i & 1 ? (self->local & ~SNAP_RW) | SNAP_RO : self->local;

		EXPECT_EQ(want, snap[i])
			TH_LOG("page %d", i);
	}
	EXPECT_PATTERN(mem, len, 68);
}

/* ------------------------------------------------------------------------
 * exclusive: device atomics on system memory
 *
 * EXCLUSIVE replaces the CPU's mappings with device-exclusive entries; any
 * CPU access restores them and revokes the device's access. CHECK_EXCLUSIVE
 * fails with EPERM while the device still holds any page of the range
 * exclusively, and succeeds once all of it was revoked.
 */

FIXTURE(exclusive) {
	int fd;
	size_t npages;
	size_t len;
	char *mem;
};

FIXTURE_VARIANT(exclusive) {
	int device;
	bool thp;	/* the range is one THP, split on the way */
};

FIXTURE_VARIANT_ADD(exclusive, private0) {
	.device = 0,
};

FIXTURE_VARIANT_ADD(exclusive, coherent2) {
	.device = 2,
};

FIXTURE_VARIANT_ADD(exclusive, private0_thp) {
	.device = 0,
	.thp = true,
};

FIXTURE_SETUP(exclusive)
{
	self->fd = open_device(_metadata, variant->device);
	if (self->fd < 0)
		return;
	if (variant->thp) {
		self->len = HUGE_2M;
		self->mem = thp_area(_metadata, 70);
	} else {
		self->len = NPAGES * page_bytes();
		self->mem = rw_area(_metadata, self->len);
		pattern_fill(self->mem, self->len, 70);
	}
	self->npages = self->len / page_bytes();
}

FIXTURE_TEARDOWN(exclusive)
{
	if (self->fd >= 0)
		close(self->fd);
}

static int grant(int fd, void *mem, size_t npages, struct hmm_dmirror_cmd *res)
{
	return dmirror_range(fd, HMM_DMIRROR_EXCLUSIVE, mem, npages, res);
}

/* 0 once every page was revoked, -EPERM while the device holds one. */
static int revoked(int fd, void *mem, size_t npages)
{
	return dmirror_call(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, mem, NULL, npages, NULL);
}

TEST_F(exclusive, grant)
{
	struct hmm_dmirror_cmd res;

	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, &res));
	EXPECT_EQ(self->npages, res.cpages);
	EXPECT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
}

TEST_F(exclusive, cpu_read_revokes)
{
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	ASSERT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 70);
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
}

TEST_F(exclusive, cpu_write_revokes)
{
	size_t page = page_bytes(), rest = self->len - page;

	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	pattern_fill(self->mem, page, 71);
	/* One page is back with the CPU, the others are still the device's. */
	EXPECT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	EXPECT_EQ(rest, pattern_check_from(self->mem + page, rest, 70, page / 4));
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, page, 71);
}

TEST_F(exclusive, regrant_after_revoke)
{
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	pattern_fill(self->mem, self->len, 72);
	ASSERT_EQ(0, revoked(self->fd, self->mem, self->npages));
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	EXPECT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 72);
}

TEST_F(exclusive, device_access_keeps_it)
{
	char *in = scratch(_metadata, self->len);
	char *out = scratch(_metadata, self->len);

	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	/* The holder reads and writes through its atomic mapping... */
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_READ, self->mem, out,
				  self->npages, NULL));
	EXPECT_PATTERN(out, self->len, 70);
	pattern_fill(in, self->len, 76);
	ASSERT_EQ(0, dmirror_call(self->fd, HMM_DMIRROR_WRITE, self->mem, in,
				  self->npages, NULL));
	/* ... without giving up exclusive access. */
	EXPECT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 76);
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
}

TEST_F(exclusive, fork_revokes)
{
	pid_t pid;

	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	ASSERT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(pattern_check(self->mem, self->len, 70) == self->len ? 0 : 1);
	EXPECT_EQ(0, child_status(pid));
	/* Copying the mappings gave the pages back to the CPU. */
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 70);
}

TEST_F(exclusive, readonly_is_eperm)
{
	ASSERT_EQ(0, mprotect(self->mem, self->len, PROT_READ));
	EXPECT_EQ(-EPERM, grant(self->fd, self->mem, self->npages, NULL));
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 70);
}

TEST_F(exclusive, unpopulated)
{
	struct hmm_dmirror_cmd res;

	ASSERT_EQ(0, madvise(self->mem, self->len, MADV_DONTNEED));
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, &res));
	EXPECT_EQ(self->npages, res.cpages);
	EXPECT_EQ(-EPERM, revoked(self->fd, self->mem, self->npages));
	EXPECT_ZEROS(self->mem, self->len);
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
}

TEST_F(exclusive, mprotect_revokes)
{
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	ASSERT_EQ(0, mprotect(self->mem, self->len, PROT_READ));
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
	EXPECT_PATTERN(self->mem, self->len, 70);
	ASSERT_EQ(0, mprotect(self->mem, self->len, RW));
	pattern_fill(self->mem, self->len, 73);
	EXPECT_PATTERN(self->mem, self->len, 73);
}

TEST_F(exclusive, munmap_revokes)
{
	ASSERT_EQ(0, grant(self->fd, self->mem, self->npages, NULL));
	ASSERT_EQ(0, munmap(self->mem, self->len));
	EXPECT_EQ(0, revoked(self->fd, self->mem, self->npages));
}

/* ------------------------------------------------------------------------
 * badarg: malformed requests, one row per kind of mistake
 */

enum cmd_index {
	C_READ, C_WRITE, C_TO_DEV, C_TO_SYS, C_SNAPSHOT, C_EXCLUSIVE, C_CHECK,
	NR_CMDS
};

static const unsigned long cmd_request[NR_CMDS] = {
	[C_READ]	= HMM_DMIRROR_READ,
	[C_WRITE]	= HMM_DMIRROR_WRITE,
	[C_TO_DEV]	= HMM_DMIRROR_MIGRATE_TO_DEV,
	[C_TO_SYS]	= HMM_DMIRROR_MIGRATE_TO_SYS,
	[C_SNAPSHOT]	= HMM_DMIRROR_SNAPSHOT,
	[C_EXCLUSIVE]	= HMM_DMIRROR_EXCLUSIVE,
	[C_CHECK]	= HMM_DMIRROR_CHECK_EXCLUSIVE,
};

enum bad_input {
	BAD_UNALIGNED,		/* addr not page aligned */
	BAD_ZERO_PAGES,		/* npages == 0 */
	BAD_WRAP,		/* addr + npages * PAGE_SIZE wraps around */
	BAD_KERNEL_ADDR,	/* range above TASK_SIZE */
	BAD_UNMAPPED,		/* range with no VMA */
	BAD_BUFFER,		/* ptr is not a user buffer */
};

FIXTURE(badarg) {
	int fd;
	char *mem;		/* BADARG_PAGES pages, populated */
	char *buf;		/* a buffer big enough for any command */
};

#define BADARG_PAGES	4

FIXTURE_VARIANT(badarg) {
	enum bad_input input;
	int err[NR_CMDS];	/* the errno each command must fail with, 0: success */
};

FIXTURE_VARIANT_ADD(badarg, unaligned) {
	.input = BAD_UNALIGNED,
	.err = { EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL },
};

FIXTURE_VARIANT_ADD(badarg, zero_pages) {
	.input = BAD_ZERO_PAGES,
	.err = { EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL },
};

FIXTURE_VARIANT_ADD(badarg, wrap) {
	.input = BAD_WRAP,
	.err = { EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL },
};

/* A range outside user space is refused before anything looks at it. */
FIXTURE_VARIANT_ADD(badarg, kernel_addr) {
	.input = BAD_KERNEL_ADDR,
	.err = { EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL },
};

/*
 * With no VMA to act on, a device fault fails (EFAULT, also for the fault
 * EXCLUSIVE takes first) and migration finds no VMA (EINVAL), while
 * SNAPSHOT reports error entries and CHECK_EXCLUSIVE finds nothing held:
 * both succeed.
 */
FIXTURE_VARIANT_ADD(badarg, unmapped) {
	.input = BAD_UNMAPPED,
	.err = {
		[C_READ] = EFAULT, [C_WRITE] = EFAULT, [C_TO_DEV] = EINVAL,
		[C_TO_SYS] = EINVAL, [C_SNAPSHOT] = 0, [C_EXCLUSIVE] = EFAULT,
		[C_CHECK] = 0,
	},
};

/*
 * Commands that hand data back fail to copy it: READ, SNAPSHOT, and
 * MIGRATE_TO_DEV and EXCLUSIVE (which return what the device now holds).
 * WRITE fails to fetch its input. MIGRATE_TO_SYS of pages that are not on
 * the device has nothing to copy; CHECK_EXCLUSIVE copies nothing.
 */
FIXTURE_VARIANT_ADD(badarg, bad_buffer) {
	.input = BAD_BUFFER,
	.err = {
		[C_READ] = EFAULT, [C_WRITE] = EFAULT, [C_TO_DEV] = EFAULT,
		[C_TO_SYS] = 0, [C_SNAPSHOT] = EFAULT, [C_EXCLUSIVE] = EFAULT,
		[C_CHECK] = 0,
	},
};

FIXTURE_SETUP(badarg)
{
	size_t len = BADARG_PAGES * page_bytes();

	self->fd = open_device(_metadata, 0);
	if (self->fd < 0)
		return;
	self->mem = rw_area(_metadata, len);
	pattern_fill(self->mem, len, 80);
	self->buf = scratch(_metadata, len);
}

FIXTURE_TEARDOWN(badarg)
{
	if (self->fd >= 0)
		close(self->fd);
}

static void run_bad(struct __test_metadata *_metadata, int fd, char *mem,
		    char *buf, enum bad_input input, enum cmd_index c, int err)
{
	size_t page = page_bytes(), len = BADARG_PAGES * page;
	uint64_t npages = BADARG_PAGES;
	uintptr_t addr = (uintptr_t)mem;
	void *ptr = buf;
	struct hmm_dmirror_cmd cmd;
	int ret;

	switch (input) {
	case BAD_UNALIGNED:
		addr += 8;
		break;
	case BAD_ZERO_PAGES:
		npages = 0;
		break;
	case BAD_WRAP:
		/* Just enough pages to run past 2^64 and wrap to a low address. */
		npages = (0 - (uint64_t)addr) / page + 1;
		break;
	case BAD_KERNEL_ADDR:
		addr = 0xffff800000000000ULL;
		break;
	case BAD_UNMAPPED:
		addr = (uintptr_t)unmapped_range(len);
		ASSERT_NE(0, addr);
		break;
	case BAD_BUFFER:
		ptr = unmapped_range(len);
		ASSERT_NE(NULL, ptr);
		break;
	}

	memset(&cmd, 0, sizeof(cmd));
	ret = dmirror_call(fd, cmd_request[c], (void *)addr, ptr, npages, &cmd);
	EXPECT_EQ(-err, ret)
		TH_LOG("got %s, want %s", ret ? strerror(-ret) : "success",
		       err ? strerror(err) : "success");
	/* A successful snapshot of nothing is all error entries. */
	if (c == C_SNAPSHOT && !ret)
		EXPECT_SNAP((uint8_t *)ptr, 0, npages, SNAP_ERROR);
	/* Whatever failed, the memory the request named is intact. */
	EXPECT_PATTERN(mem, len, 80);
}

TEST_F(badarg, read)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_READ, variant->err[C_READ]);
}

TEST_F(badarg, write)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_WRITE, variant->err[C_WRITE]);
}

TEST_F(badarg, migrate_to_dev)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_TO_DEV, variant->err[C_TO_DEV]);
}

TEST_F(badarg, migrate_to_sys)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_TO_SYS, variant->err[C_TO_SYS]);
}

TEST_F(badarg, snapshot)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_SNAPSHOT, variant->err[C_SNAPSHOT]);
}

TEST_F(badarg, exclusive)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_EXCLUSIVE, variant->err[C_EXCLUSIVE]);
}

TEST_F(badarg, check_exclusive)
{
	run_bad(_metadata, self->fd, self->mem, self->buf, variant->input,
		C_CHECK, variant->err[C_CHECK]);
}

/* Requests that are wrong as a whole, whatever the range. */

TEST(unknown_request)
{
	struct hmm_dmirror_cmd cmd = { 0 };
	int fd;

	fd = dmirror_open(0);
	if (fd == -ENOENT)
		SKIP(return, "no /dev/hmm_dmirror0: needs CONFIG_TEST_HMM");
	ASSERT_LE(0, fd);
	/* A command number past the last one, and a foreign ioctl type. */
	EXPECT_EQ(-1, ioctl(fd, _IOWR('H', 0x3f, struct hmm_dmirror_cmd), &cmd));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, _IOWR('Z', 0x00, struct hmm_dmirror_cmd), &cmd));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(command_block_fault)
{
	void *hole = unmapped_range(page_bytes());
	int fd;

	fd = dmirror_open(0);
	if (fd == -ENOENT)
		SKIP(return, "no /dev/hmm_dmirror0: needs CONFIG_TEST_HMM");
	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, hole);
	EXPECT_EQ(-1, ioctl(fd, HMM_DMIRROR_READ, hole));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hole));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(fd, HMM_DMIRROR_FLAGS, hole));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

TEST(other_process_memory)
{
	size_t len = NPAGES * page_bytes();
	char *mem = anon_map(len, RW);
	char *buf = malloc(len);
	int fd, status;
	pid_t pid;

	fd = dmirror_open(0);
	if (fd == -ENOENT)
		SKIP(return, "no /dev/hmm_dmirror0: needs CONFIG_TEST_HMM");
	ASSERT_LE(0, fd);
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_NE(NULL, buf);
	pattern_fill(mem, len, 81);
	/*
	 * A file mirrors the process that opened it. A child inheriting the
	 * descriptor still addresses its parent's memory, not its own.
	 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		pattern_fill(mem, len, 82);
		if (dmirror_call(fd, HMM_DMIRROR_READ, mem, buf, NPAGES, NULL))
			_exit(1);
		_exit(pattern_check(buf, len, 81) == len ? 0 : 2);
	}
	status = child_status(pid);
	EXPECT_EQ(0, status);
	close(fd);
}

TEST_HARNESS_MAIN
