// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-stress: many threads racing device accesses of the dmirror test device
 * (lib/test_hmm.c) against address space changes, with every byte checked.
 *
 * The test region is a run of chunks of CHUNK_PAGES pages. Each chunk has a
 * mutex, held by a thread across one operation and its checks, and the
 * state the operation leaves: how the chunk is mapped and, per page, the set
 * of contents the page may hold. A page holds either zeroes or a stamp: every
 * 64-bit word is derived from the address the stamp was written at and a
 * generation unique to that write. The allowed set is at most "zero" plus
 * two stamps, because:
 *  - a write (CPU or device) makes the set exactly the new stamp;
 *  - munmap + mmap, MADV_DONTNEED and MREMAP_DONTUNMAP make it exactly zero;
 *  - MADV_FREE adds zero (the kernel may drop the page until it is written);
 *  - a device write that failed part way adds the new stamp to the old one;
 *  - migration, mprotect, MADV_COLD/PAGEOUT, fork, exclusive access, mremap
 *    and THP collapse change nothing (mremap carries the set to the new
 *    address, stamps keep the address they were written at);
 *  - reading a page narrows the set to what was read, except that a page
 *    still holding its data after MADV_FREE may lose it until written.
 * Anything read outside the set is a failure: zeroes where only stamps are
 * allowed are a lost page, an allowed address with a generation not in the
 * set is a lost write, anything else is corruption.
 *
 * Device threads read, write, snapshot, migrate to each device and back, take
 * exclusive access and release device memory; mm threads munmap/mmap,
 * mprotect, madvise, mremap and collapse; a fork thread forks children that
 * check a copy of the state by CPU and by device before exiting; a CPU thread
 * reads and writes pages. Threads are seeded from -s SEED; with -1 one
 * thread runs every role in turn, so a seed replays exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"
#include "hmm-dmirror.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE			25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP		4
#endif

#define PAGE_SZ		4096UL
#define CHUNK_PAGES	16
#define SPAN_PAGES	512			/* one PMD */
#define NR_SPANS	4
#define NR_PAGES	(SPAN_PAGES * NR_SPANS)
#define NR_CHUNKS	(NR_PAGES / CHUNK_PAGES)
#define REGION_BASE	0x4000000000UL		/* far below the mmap area */
#define REGION_SIZE	(NR_PAGES * PAGE_SZ)
#define SCRATCH_BASE	(REGION_BASE + 0x40000000UL)
#define NR_DEVICES	4
#define MAX_THREADS	16

#define MAX_REPORTS	40			/* bad pages printed */
#define HANG_GRACE	90			/* seconds past the deadline */
#define STAMP_MAGIC	0x484d4d5354000000ULL	/* "HMMST" */

enum prot { P_HOLE, P_NONE, P_RO, P_RW };

#define HIST_LEN	8			/* events kept per page */

/*
 * One change of a page's allowed set, kept for the report of a bad page:
 * 'W' a write made it one stamp, 'P' a write that failed part way added one,
 * 'Z' it became zero, 'z' zero was added (MADV_FREE), 'R' a read narrowed
 * it to the stamp (or zero) seen.
 */
struct hist_event {
	uint32_t gen;
	uint8_t op;			/* enum op_kind, 0xff: setup */
	uint8_t thread;
	char kind;
};

/* The contents a page may hold; gen 0 marks an unused slot. */
struct pstate {
	uint64_t addr[2];
	uint32_t gen[2];
	bool zero_ok;
	uint8_t hist_next;
	struct hist_event hist[HIST_LEN];
};

struct chunk {
	pthread_mutex_t lock;
	enum prot prot;
};

enum op_kind {
	OP_DEV_READ, OP_DEV_WRITE, OP_SNAPSHOT, OP_MIGRATE_DEV, OP_MIGRATE_SYS,
	OP_EXCLUSIVE, OP_RELEASE, OP_FAIL_ALLOC,
	OP_REMAP, OP_MUNMAP, OP_MPROTECT, OP_DONTNEED, OP_FREE, OP_COLD,
	OP_PAGEOUT, OP_MREMAP, OP_MREMAP_DONTUNMAP, OP_COLLAPSE,
	OP_FORK, OP_CPU_READ, OP_CPU_WRITE,
	NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"dev-read", "dev-write", "snapshot", "migrate-to-dev", "migrate-to-sys",
	"exclusive", "release", "fail-alloc",
	"remap", "munmap", "mprotect", "dontneed", "free", "cold",
	"pageout", "mremap", "mremap-dontunmap", "collapse",
	"fork", "cpu-read", "cpu-write",
};

#define MAX_ERRNO	160
static atomic_ulong op_count[NR_OPS];
static atomic_ulong op_errno[NR_OPS][MAX_ERRNO];
static atomic_ulong nr_corrupt, nr_lost_page, nr_lost_write, nr_bad_errno;
static atomic_ulong nr_bad_snapshot, nr_bad_exclusive, nr_child_fail;
static atomic_ulong nr_fail_alloc_hit, nr_checked_pages, nr_reports;
static atomic_uint gen_counter;
static atomic_bool stop;

static __thread struct thread *self;	/* NULL in setup and children */
static struct chunk chunks[NR_CHUNKS];
static struct pstate pages[NR_PAGES];
static char *region = (char *)REGION_BASE;
static int shared_fd[NR_DEVICES];
static bool have_flags;
static int thp_madvise;
static struct timespec deadline;
static unsigned long ops_limit;

struct thread {
	pthread_t tid;
	int id;
	uint64_t rng;
	int role;
	int fd[NR_DEVICES];
	char *buf;		/* SPAN_PAGES pages */
	char *scratch;		/* mremap round trip target */
	unsigned long ops;
	/* What the thread is doing, for the hang report. */
	pid_t os_tid;
	atomic_int cur_op;	/* -1: between operations */
	atomic_ulong cur_pg, cur_n;
	atomic_int child;
	atomic_bool done;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd(struct thread *t)
{
	/* splitmix64: small, seedable, good enough to pick operations */
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned long rnd_below(struct thread *t, unsigned long n)
{
	return rnd(t) % n;
}

static uint64_t word_of(uint64_t addr, uint32_t gen, unsigned int i)
{
	uint64_t x = addr * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)gen << 20) ^ i;

	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ULL;
}

static void stamp(void *dst, uint64_t addr, uint32_t gen)
{
	uint64_t *w = dst;
	unsigned int i;

	w[0] = addr;
	w[1] = STAMP_MAGIC | gen;
	for (i = 2; i < PAGE_SZ / 8; i++)
		w[i] = word_of(addr, gen, i);
}

static bool is_stamp(const void *src, uint64_t addr, uint32_t gen)
{
	const uint64_t *w = src;
	unsigned int i;

	if (w[0] != addr || w[1] != (STAMP_MAGIC | gen))
		return false;
	for (i = 2; i < PAGE_SZ / 8; i++)
		if (w[i] != word_of(addr, gen, i))
			return false;
	return true;
}

static bool is_zero(const void *src)
{
	const uint64_t *w = src;
	unsigned int i;

	for (i = 0; i < PAGE_SZ / 8; i++)
		if (w[i])
			return false;
	return true;
}

static uint32_t new_gen(void)
{
	uint32_t g;

	do	/* 24 bits, to fit the stamp's magic word; 0 is not a stamp */
		g = (atomic_fetch_add(&gen_counter, 1) + 1) & 0xffffff;
	while (!g);
	return g;
}

static unsigned long page_addr(unsigned long pg)
{
	return REGION_BASE + pg * PAGE_SZ;
}

static void note(struct pstate *ps, char kind, uint32_t gen)
{
	struct hist_event *e = &ps->hist[ps->hist_next++ % HIST_LEN];

	e->kind = kind;
	e->gen = gen;
	e->op = self ? atomic_load(&self->cur_op) : 0xff;
	e->thread = self ? self->id : 0xff;
}

static void print_history(const struct pstate *ps)
{
	char line[HIST_LEN * 40];
	int i, len = 0;

	for (i = 0; i < HIST_LEN; i++) {
		const struct hist_event *e = &ps->hist[(ps->hist_next + i) % HIST_LEN];

		if (!e->kind)
			continue;
		len += snprintf(line + len, sizeof(line) - len, " %c%u(t%d %s)", e->kind,
				e->gen, e->thread == 0xff ? -1 : e->thread,
				e->op < NR_OPS ? op_name[e->op] : "setup");
	}
	ksft_print_msg("  history, oldest first:%s\n", len ? line : " none");
}

/* Forget the allowed set, keep the history. */
static void clear_set(struct pstate *ps)
{
	memset(ps->addr, 0, sizeof(ps->addr));
	memset(ps->gen, 0, sizeof(ps->gen));
	ps->zero_ok = false;
}

static void set_stamp(struct pstate *ps, uint64_t addr, uint32_t gen)
{
	clear_set(ps);
	ps->addr[0] = addr;
	ps->gen[0] = gen;
	note(ps, 'W', gen);
}

static void set_zero(struct pstate *ps)
{
	clear_set(ps);
	ps->zero_ok = true;
	note(ps, 'Z', 0);
}

/* MADV_FREE: the kernel may drop the page until it is written again. */
static void add_zero(struct pstate *ps)
{
	ps->zero_ok = true;
	note(ps, 'z', 0);
}

/*
 * A write that failed part way: the page holds what it held or the new
 * stamp. The writer narrows the set by reading the page back right away, so
 * it never needs more than two stamps.
 */
static void add_stamp(struct pstate *ps, uint64_t addr, uint32_t gen)
{
	int slot = ps->gen[0] ? 1 : 0;

	if (ps->gen[1])
		ksft_exit_fail_msg("test bug: a third stamp for page %#lx\n",
				   (unsigned long)addr);
	ps->addr[slot] = addr;
	ps->gen[slot] = gen;
	note(ps, 'P', gen);
}

/* An earlier stamp of an allowed address: a write that did not stick. */
static bool is_old_stamp(const void *data, const struct pstate *ps)
{
	const uint64_t *w = data;

	return (w[1] & ~0xffffffULL) == STAMP_MAGIC &&
	       (w[0] == ps->addr[0] || w[0] == ps->addr[1]) &&
	       is_stamp(data, w[0], w[1] & 0xffffff);
}

/*
 * Check one page's bytes against its allowed set, narrow the set to what was
 * seen and count a failure otherwise. @who names the reader for the report.
 */
static bool check_page(unsigned long pg, struct pstate *ps, const void *data,
		       const char *who)
{
	const uint64_t *w = data;
	int i;

	atomic_fetch_add(&nr_checked_pages, 1);
	for (i = 0; i < 2; i++) {
		if (ps->gen[i] && is_stamp(data, ps->addr[i], ps->gen[i])) {
			uint64_t addr = ps->addr[i];
			uint32_t gen = ps->gen[i];

			if (!ps->gen[!i])
				return true;	/* nothing to narrow */
			/* A lazily freed page read back is still lazily freed. */
			ps->addr[1] = 0;
			ps->gen[1] = 0;
			ps->addr[0] = addr;
			ps->gen[0] = gen;
			note(ps, 'R', gen);
			return true;
		}
	}
	if (ps->zero_ok && is_zero(data)) {
		if (ps->gen[0] || ps->gen[1]) {
			clear_set(ps);
			ps->zero_ok = true;
			note(ps, 'R', 0);
		}
		return true;
	}
	if (atomic_fetch_add(&nr_reports, 1) >= MAX_REPORTS) {
		/* counted below, not printed */
	} else if (is_zero(data)) {
		ksft_print_msg("%s: page %#lx lost: zeroes, expected gen %u/%u\n", who,
			       page_addr(pg), ps->gen[0], ps->gen[1]);
	} else if (is_old_stamp(data, ps)) {
		ksft_print_msg("%s: page %#lx stale: gen %u, expected %u/%u%s\n", who,
			       page_addr(pg), (unsigned int)(w[1] & 0xffffff),
			       ps->gen[0], ps->gen[1], ps->zero_ok ? "/zero" : "");
	} else {
		ksft_print_msg("%s: page %#lx corrupt: %016llx %016llx, expected gen %u/%u%s\n",
			       who, page_addr(pg), (unsigned long long)w[0],
			       (unsigned long long)w[1], ps->gen[0], ps->gen[1],
			       ps->zero_ok ? "/zero" : "");
	}
	if (atomic_load(&nr_reports) <= MAX_REPORTS)
		print_history(ps);
	if (is_zero(data))
		atomic_fetch_add(&nr_lost_page, 1);
	else if (is_old_stamp(data, ps))
		atomic_fetch_add(&nr_lost_write, 1);
	else
		atomic_fetch_add(&nr_corrupt, 1);
	/* Resynchronise on what is there so one loss is reported once. */
	if (is_zero(data))
		set_zero(ps);
	else if ((w[1] & ~0xffffffULL) == STAMP_MAGIC)
		set_stamp(ps, w[0], w[1] & 0xffffff);
	else
		ps->zero_ok = true, ps->gen[0] = ps->gen[1] = 0;
	return false;
}

static void lock_range(unsigned int c0, unsigned int c1)
{
	unsigned int c;

	for (c = c0; c < c1; c++)
		pthread_mutex_lock(&chunks[c].lock);
}

static void unlock_range(unsigned int c0, unsigned int c1)
{
	unsigned int c;

	for (c = c0; c < c1; c++)
		pthread_mutex_unlock(&chunks[c].lock);
}

/* Weakest mapping over chunks [c0, c1). */
static enum prot range_prot(unsigned int c0, unsigned int c1)
{
	enum prot p = P_RW;
	unsigned int c;

	for (c = c0; c < c1; c++)
		if (chunks[c].prot < p)
			p = chunks[c].prot;
	return p;
}

static bool errno_in(int err, const int *set)
{
	for (; *set; set++)
		if (err == *set)
			return true;
	return false;
}

static void count(enum op_kind op, int ret, int err)
{
	atomic_fetch_add(&op_count[op], 1);
	if (ret)
		atomic_fetch_add(&op_errno[op][err < MAX_ERRNO ? err : 0], 1);
}

/* Count an outcome and report it if it is not 0 or an errno of @ok. */
static bool expect(enum op_kind op, int ret, int err, const int *ok, unsigned long pg,
		   unsigned long n)
{
	count(op, ret, err);
	if (ret == 0 || (ret == -1 && errno_in(err, ok)))
		return true;
	atomic_fetch_add(&nr_bad_errno, 1);
	ksft_print_msg("%s [%#lx, +%lu pages): returned %d errno %d (%s)\n",
		       op_name[op], page_addr(pg), n, ret, err, strerror(err));
	return false;
}

static int dmirror(int fd, unsigned long req, unsigned long addr, void *buf,
		   unsigned long npages, struct hmm_dmirror_cmd *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = addr, .ptr = (uintptr_t)buf, .npages = npages,
	};
	int ret;

	ret = ioctl(fd, req, &cmd);
	if (out)
		*out = cmd;
	return ret;
}

static int pick_fd(struct thread *t, int dev)
{
	return rnd_below(t, 2) ? t->fd[dev] : shared_fd[dev];
}

/* ---- checks by CPU and by device -------------------------------------- */

/* Read and check every readable page of [pg, pg + n) from the CPU. */
static void cpu_check(unsigned long pg, unsigned long n, const char *who)
{
	unsigned long i;

	for (i = pg; i < pg + n; i++)
		if (chunks[i / CHUNK_PAGES].prot >= P_RO)
			check_page(i, &pages[i], region + i * PAGE_SZ, who);
}

/* Device read of [pg, pg + n), checked; the range must be readable. */
static void dev_check(struct thread *t, int fd, unsigned long pg, unsigned long n)
{
	static const int ok[] = { EBUSY, 0 };
	struct hmm_dmirror_cmd cmd;
	unsigned long i;
	int ret;

	ret = dmirror(fd, HMM_DMIRROR_READ, page_addr(pg), t->buf, n, &cmd);
	if (!expect(OP_DEV_READ, ret, errno, ok, pg, n) || ret)
		return;
	if (cmd.cpages != n) {
		atomic_fetch_add(&nr_bad_errno, 1);
		ksft_print_msg("dev-read [%#lx, +%lu): cpages %llu\n", page_addr(pg), n,
			       (unsigned long long)cmd.cpages);
	}
	for (i = 0; i < n; i++)
		check_page(pg + i, &pages[pg + i], t->buf + i * PAGE_SZ, "dev-read");
}

/* After a device operation: check the range by CPU or by a device. */
static void verify(struct thread *t, unsigned long pg, unsigned long n)
{
	enum prot p = range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1);

	if (p < P_RO)
		return;
	if (rnd_below(t, 2))
		cpu_check(pg, n, "cpu-recheck");
	else
		dev_check(t, pick_fd(t, rnd_below(t, NR_DEVICES)), pg, n);
}

/* ---- device operations -------------------------------------------------- */

static void op_dev_read(struct thread *t, unsigned long pg, unsigned long n)
{
	static const int bad[] = { EFAULT, 0 };
	int fd = pick_fd(t, rnd_below(t, NR_DEVICES)), ret;

	if (range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1) >= P_RO) {
		dev_check(t, fd, pg, n);
		return;
	}
	ret = dmirror(fd, HMM_DMIRROR_READ, page_addr(pg), t->buf, n, NULL);
	if (ret == 0) {
		atomic_fetch_add(&nr_bad_errno, 1);
		ksft_print_msg("dev-read of an inaccessible range [%#lx, +%lu) succeeded\n",
			       page_addr(pg), n);
	}
	expect(OP_DEV_READ, ret, errno, bad, pg, n);
}

static void op_dev_write(struct thread *t, unsigned long pg, unsigned long n)
{
	static const int ok_rw[] = { EBUSY, 0 }, ok_ro[] = { EPERM, EFAULT, 0 };
	int fd = pick_fd(t, rnd_below(t, NR_DEVICES)), ret, err;
	enum prot p = range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1);
	uint32_t gens[SPAN_PAGES];
	struct hmm_dmirror_cmd cmd;
	unsigned long i;

	for (i = 0; i < n; i++) {
		gens[i] = new_gen();
		stamp(t->buf + i * PAGE_SZ, page_addr(pg + i), gens[i]);
	}
	ret = dmirror(fd, HMM_DMIRROR_WRITE, page_addr(pg), t->buf, n, &cmd);
	err = errno;
	if (p == P_RW) {
		expect(OP_DEV_WRITE, ret, err, ok_rw, pg, n);
		if (!ret && cmd.cpages != n) {
			atomic_fetch_add(&nr_bad_errno, 1);
			ksft_print_msg("dev-write [%#lx, +%lu): cpages %llu\n",
				       page_addr(pg), n, (unsigned long long)cmd.cpages);
		}
	} else {
		if (ret == 0) {
			atomic_fetch_add(&nr_bad_errno, 1);
			ksft_print_msg("dev-write without write access [%#lx, +%lu) succeeded\n",
				       page_addr(pg), n);
		}
		expect(OP_DEV_WRITE, ret, err, ok_ro, pg, n);
	}
	for (i = 0; i < n; i++) {
		if (chunks[(pg + i) / CHUNK_PAGES].prot != P_RW)
			continue;
		if (ret == 0)
			set_stamp(&pages[pg + i], page_addr(pg + i), gens[i]);
		else	/* failed part way: either content is allowed */
			add_stamp(&pages[pg + i], page_addr(pg + i), gens[i]);
	}
	/*
	 * Narrow the pages a failed write may have reached to what they hold,
	 * even when part of the range cannot be read (and verify() skips it):
	 * the next failed write adds another stamp.
	 */
	if (ret)
		cpu_check(pg, n, "cpu-after-failed-write");
	verify(t, pg, n);
}

static bool snapshot_byte_ok(unsigned char b, enum prot p, const struct pstate *ps,
			     const char **why)
{
	unsigned char kind = b & 0xf0, access = b & 0x03;

	if (p < P_RO) {
		*why = "inaccessible page not reported as an error";
		return b == HMM_DMIRROR_PROT_ERROR;
	}
	if (b == HMM_DMIRROR_PROT_ERROR) {
		*why = "accessible page reported as an error";
		return false;
	}
	if (b == HMM_DMIRROR_PROT_NONE)
		return true;	/* not mapped, or mapped where the CPU cannot see */
	*why = "bad access bits";
	if (access == 0 || (b & HMM_DMIRROR_PROT_PUD))
		return false;
	*why = "read-only mapping reported writable";
	if (p == P_RO && (access & HMM_DMIRROR_PROT_WRITE))
		return false;
	*why = "zero page where data is expected";
	if (kind == HMM_DMIRROR_PROT_ZERO && !ps->zero_ok)
		return false;
	*why = "unknown page kind";
	return kind == 0 || kind == HMM_DMIRROR_PROT_ZERO ||
	       kind == HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL ||
	       kind == HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE ||
	       kind == HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL ||
	       kind == HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
}

static void op_snapshot(struct thread *t, unsigned long pg, unsigned long n)
{
	static const int ok[] = { EBUSY, 0 };
	int fd = pick_fd(t, rnd_below(t, NR_DEVICES)), ret;
	unsigned char *b = (unsigned char *)t->buf;
	struct hmm_dmirror_cmd cmd;
	const char *why = "";
	unsigned long i;

	memset(b, 0xaa, n);
	ret = dmirror(fd, HMM_DMIRROR_SNAPSHOT, page_addr(pg), b, n, &cmd);
	if (!expect(OP_SNAPSHOT, ret, errno, ok, pg, n) || ret)
		return;
	for (i = 0; i < n; i++) {
		if (snapshot_byte_ok(b[i], chunks[(pg + i) / CHUNK_PAGES].prot,
				     &pages[pg + i], &why))
			continue;
		atomic_fetch_add(&nr_bad_snapshot, 1);
		ksft_print_msg("snapshot: page %#lx byte %#x: %s\n", page_addr(pg + i),
			       b[i], why);
	}
}

static void op_migrate(struct thread *t, enum op_kind op, unsigned long pg, unsigned long n)
{
	static const int ok[] = { ENOENT, ENOMEM, EBUSY, 0 };
	static const int bad[] = { EINVAL, 0 };
	enum prot p = range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1);
	int dev = rnd_below(t, NR_DEVICES);
	int fd = pick_fd(t, dev), ret, err;
	bool armed = false;

	if (op == OP_FAIL_ALLOC) {
		if (!have_flags)
			return;
		fd = t->fd[dev];
		if (dmirror(fd, HMM_DMIRROR_FLAGS, 0, NULL,
			    HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL)) {
			atomic_fetch_add(&nr_bad_errno, 1);
			ksft_print_msg("arming FAIL_ALLOC: %s\n", strerror(errno));
			return;
		}
		armed = true;
	}
	ret = dmirror(fd, op == OP_MIGRATE_SYS ? HMM_DMIRROR_MIGRATE_TO_SYS :
		      HMM_DMIRROR_MIGRATE_TO_DEV, page_addr(pg), t->buf, n, NULL);
	err = errno;
	if (armed) {
		if (ret && err == ENOMEM)
			atomic_fetch_add(&nr_fail_alloc_hit, 1);
		dmirror(fd, HMM_DMIRROR_FLAGS, 0, NULL, 0, NULL);
	}
	if (p >= P_RO) {
		expect(op, ret, err, op == OP_MIGRATE_SYS ? ok + 2 : ok, pg, n);
	} else {
		if (ret == 0) {
			atomic_fetch_add(&nr_bad_errno, 1);
			ksft_print_msg("%s of an inaccessible range [%#lx, +%lu) succeeded\n",
				       op_name[op], page_addr(pg), n);
		}
		expect(op, ret, err, bad, pg, n);
	}
	verify(t, pg, n);
}

static void op_exclusive(struct thread *t, unsigned long pg, unsigned long n)
{
	/*
	 * ENOENT: the rewritten device reads the range back without faulting,
	 * and a fork() anywhere in the process revokes exclusive access.
	 */
	static const int ok[] = { EBUSY, ENOENT, 0 }, bad[] = { EPERM, EFAULT, EBUSY, 0 };
	enum prot p = range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1);
	int fd = pick_fd(t, rnd_below(t, NR_DEVICES)), ret;

	ret = dmirror(fd, HMM_DMIRROR_EXCLUSIVE, page_addr(pg), t->buf, n, NULL);
	expect(OP_EXCLUSIVE, ret, errno, p == P_RW ? ok : bad, pg, n);
	if (p < P_RO)
		return;
	/* Any CPU access takes exclusive access back from the device. */
	cpu_check(pg, n, "cpu-after-exclusive");
	ret = dmirror(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, page_addr(pg), NULL, n, NULL);
	if (ret) {
		atomic_fetch_add(&nr_bad_exclusive, 1);
		ksft_print_msg("exclusive [%#lx, +%lu): still granted after CPU access: %s\n",
			       page_addr(pg), n, strerror(errno));
	}
}

static void op_release(struct thread *t)
{
	static const int ok[] = { ENOMEM, 0 };
	int ret;

	/* The range is ignored; some devices still want a valid one. */
	ret = dmirror(shared_fd[rnd_below(t, NR_DEVICES)], HMM_DMIRROR_RELEASE,
		      REGION_BASE, t->buf, 1, NULL);
	expect(OP_RELEASE, ret, errno, ok, 0, 0);
}

/* ---- address space operations ------------------------------------------ */

static int prot_bits(enum prot p)
{
	return p == P_RW ? PROT_READ | PROT_WRITE : p == P_RO ? PROT_READ : PROT_NONE;
}

static void set_range_zero(unsigned int c0, unsigned int c1)
{
	unsigned long i;

	for (i = c0 * CHUNK_PAGES; i < c1 * CHUNK_PAGES; i++)
		set_zero(&pages[i]);
}

static void op_mm(struct thread *t, enum op_kind op, unsigned int c0, unsigned int c1)
{
	static const int none[] = { 0 }, hole[] = { ENOMEM, 0 };
	static const int collapse[] = { EINVAL, EAGAIN, ENOMEM, EBUSY, 0 };
	static const int advice[] = {
		[OP_DONTNEED] = MADV_DONTNEED, [OP_FREE] = MADV_FREE,
		[OP_COLD] = MADV_COLD, [OP_PAGEOUT] = MADV_PAGEOUT,
	};
	void *addr = region + c0 * CHUNK_PAGES * PAGE_SZ;
	size_t len = (c1 - c0) * CHUNK_PAGES * PAGE_SZ;
	enum prot p = range_prot(c0, c1);
	bool holes = p == P_HOLE;
	unsigned int c;
	void *m;
	int ret;

	switch (op) {
	case OP_REMAP:
		m = mmap(addr, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (m != addr)
			ksft_exit_fail_msg("remap at %p: %s\n", addr, strerror(errno));
		if (thp_madvise)
			madvise(addr, len, rnd_below(t, 4) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		count(op, 0, 0);
		for (c = c0; c < c1; c++)
			chunks[c].prot = P_RW;
		set_range_zero(c0, c1);
		return;
	case OP_MUNMAP:
		ret = munmap(addr, len);
		expect(op, ret, errno, none, c0 * CHUNK_PAGES, len / PAGE_SZ);
		for (c = c0; c < c1; c++)
			chunks[c].prot = P_HOLE;
		set_range_zero(c0, c1);
		return;
	case OP_MPROTECT: {
		enum prot np = P_NONE + rnd_below(t, 3);

		/* One call per chunk: a hole would stop mprotect() half way. */
		for (c = c0; c < c1; c++) {
			if (chunks[c].prot == P_HOLE)
				continue;
			ret = mprotect(region + c * CHUNK_PAGES * PAGE_SZ,
				       CHUNK_PAGES * PAGE_SZ, prot_bits(np));
			expect(op, ret, errno, none, c * CHUNK_PAGES, CHUNK_PAGES);
			if (!ret)
				chunks[c].prot = np;
		}
		return;
	}
	case OP_DONTNEED:
	case OP_FREE:
	case OP_COLD:
	case OP_PAGEOUT:
		ret = madvise(addr, len, advice[op]);
		/* MADV_FREE refuses VM_LOCKED/VM_PFNMAP only; holes: ENOMEM */
		expect(op, ret, errno, holes ? hole : none, c0 * CHUNK_PAGES, len / PAGE_SZ);
		for (c = c0; c < c1; c++) {
			unsigned long i;

			if (chunks[c].prot == P_HOLE)
				continue;
			for (i = c * CHUNK_PAGES; i < (c + 1) * CHUNK_PAGES; i++) {
				if (op == OP_DONTNEED)
					set_zero(&pages[i]);
				else if (op == OP_FREE)
					add_zero(&pages[i]);
			}
		}
		return;
	case OP_COLLAPSE:
		ret = madvise(addr, len, MADV_COLLAPSE);
		expect(op, ret, errno, collapse, c0 * CHUNK_PAGES, len / PAGE_SZ);
		cpu_check(c0 * CHUNK_PAGES, len / PAGE_SZ, "cpu-after-collapse");
		return;
	default:
		return;
	}
}

/*
 * Move chunks [c0, c1) to the hole [d0, d0 + c1 - c0) and their state with
 * them; with MREMAP_DONTUNMAP the source stays mapped, empty. Without a hole
 * to go to, move out to scratch space and back.
 */
static void op_mremap(struct thread *t, enum op_kind op, unsigned int c0, unsigned int c1)
{
	static const int efault[] = { EFAULT, 0 };
	unsigned int n = c1 - c0, d0 = rnd_below(t, NR_CHUNKS - n + 1), c;
	size_t len = n * CHUNK_PAGES * PAGE_SZ;
	char *src = region + c0 * CHUNK_PAGES * PAGE_SZ;
	char *dst = region + d0 * CHUNK_PAGES * PAGE_SZ;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	bool to_hole = d0 >= c1 || d0 + n <= c0;
	void *m;

	if (op == OP_MREMAP_DONTUNMAP)
		flags |= MREMAP_DONTUNMAP;
	if (to_hole) {
		if (d0 < c0) {
			lock_range(d0, d0 + n);
			lock_range(c0, c1);
		} else {
			lock_range(c0, c1);
			lock_range(d0, d0 + n);
		}
		for (c = 0; c < n; c++)
			if (chunks[d0 + c].prot != P_HOLE)
				to_hole = false;
		if (to_hole)
			for (c = c0; c < c1; c++)
				if (chunks[c].prot == P_HOLE ||
				    chunks[c].prot != chunks[c0].prot)
					to_hole = false;
		if (!to_hole) {
			unlock_range(d0, d0 + n);
			unlock_range(c0, c1);
			return;
		}
		m = mremap(src, len, len, flags, dst);
		/* Chunks of one protection can still be several vmas: EFAULT. */
		if (m != dst) {
			expect(op, -1, errno, efault, c0 * CHUNK_PAGES, n * CHUNK_PAGES);
			unlock_range(d0, d0 + n);
			unlock_range(c0, c1);
			return;
		}
		count(op, 0, 0);
		memcpy(&pages[d0 * CHUNK_PAGES], &pages[c0 * CHUNK_PAGES],
		       n * CHUNK_PAGES * sizeof(pages[0]));
		for (c = 0; c < n; c++) {
			chunks[d0 + c].prot = chunks[c0 + c].prot;
			if (op == OP_MREMAP)
				chunks[c0 + c].prot = P_HOLE;
		}
		set_range_zero(c0, c1);
		unlock_range(d0, d0 + n);
		unlock_range(c0, c1);
		return;
	}
	lock_range(c0, c1);
	if (range_prot(c0, c1) == P_HOLE || op == OP_MREMAP_DONTUNMAP) {
		unlock_range(c0, c1);
		return;
	}
	for (c = c0; c < c1; c++)
		if (chunks[c].prot != chunks[c0].prot)
			goto out;
	m = mremap(src, len, len, flags, t->scratch);
	if (m != t->scratch) {
		expect(op, -1, errno, efault, c0 * CHUNK_PAGES, n * CHUNK_PAGES);
		goto out;
	}
	m = mremap(t->scratch, len, len, flags, src);
	if (m != src)
		ksft_exit_fail_msg("mremap scratch -> %p: %s\n", src, strerror(errno));
	count(op, 0, 0);
	cpu_check(c0 * CHUNK_PAGES, n * CHUNK_PAGES, "cpu-after-mremap");
out:
	unlock_range(c0, c1);
}

/* ---- fork and CPU ---------------------------------------------------------- */

static void child_say(const char *msg, unsigned long addr)
{
	char line[128];
	int len;

	len = snprintf(line, sizeof(line), "# fork child: %s at %#lx\n", msg, addr);
	if (write(STDOUT_FILENO, line, len) < 0)
		_exit(3);
}

/*
 * In the child: the state of [pg, pg + n) was copied by fork() while the
 * parent held the chunks' locks. Check it by CPU, then through a device file
 * of the child's own, and exit. Only async-signal-safe calls from here on.
 */
static __noreturn void child_check(struct thread *t, unsigned long pg, unsigned long n)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = page_addr(pg), .ptr = (uintptr_t)t->buf, .npages = n,
	};
	char name[32] = "/dev/hmm_dmirror0";
	int bad = 0, fd, i;

	/* A child reports at most four bad pages, by CPU and by device each. */
	unsigned long j;

	for (j = 0; j < n; j++) {
		struct pstate *ps = &pages[pg + j];
		const char *data = region + (pg + j) * PAGE_SZ;
		bool good = false;

		if (chunks[(pg + j) / CHUNK_PAGES].prot < P_RO)
			continue;
		for (i = 0; i < 2; i++)
			good |= ps->gen[i] && is_stamp(data, ps->addr[i], ps->gen[i]);
		good |= ps->zero_ok && is_zero(data);
		if (!good && bad++ < 4)
			child_say("bad data by CPU", page_addr(pg + j));
	}
	if (range_prot(pg / CHUNK_PAGES, (pg + n - 1) / CHUNK_PAGES + 1) < P_RO)
		_exit(!!bad);
	name[16] += rnd_below(t, NR_DEVICES);
	fd = open(name, O_RDWR);
	if (fd < 0)
		_exit(2);
	if (ioctl(fd, HMM_DMIRROR_READ, &cmd)) {
		child_say(errno == EBUSY ? "device read busy" : "device read failed",
			  page_addr(pg));
		_exit(errno == EBUSY ? !!bad : 1);
	}
	for (j = 0; j < n; j++) {
		struct pstate *ps = &pages[pg + j];
		const char *data = t->buf + j * PAGE_SZ;
		bool good = false;

		for (i = 0; i < 2; i++)
			good |= ps->gen[i] && is_stamp(data, ps->addr[i], ps->gen[i]);
		good |= ps->zero_ok && is_zero(data);
		if (!good && bad++ < 8)
			child_say("bad data by device", page_addr(pg + j));
	}
	close(fd);
	_exit(!!bad);
}

static void op_fork(struct thread *t, unsigned int c0, unsigned int c1,
		    unsigned long pg, unsigned long n)
{
	static const int ok[] = { ENOMEM, EAGAIN, 0 };
	int status, tries = 0;
	pid_t pid;

	/*
	 * fork() restores device exclusive entries it copies and fails with
	 * ENOMEM when it cannot lock such a page (copy_pte_range()); a device
	 * thread holding one locked is enough. Count it and try again.
	 */
	while ((pid = fork()) < 0) {
		if (!expect(OP_FORK, -1, errno, ok, pg, n) || ++tries == 20)
			return;
		usleep(1000);
	}
	if (pid == 0)
		child_check(t, pg, n);
	atomic_store(&t->child, pid);
	count(OP_FORK, 0, 0);
	/* The parent changes the range while the child still reads it. */
	unlock_range(c0, c1);
	if (waitpid(pid, &status, 0) != pid)
		ksft_exit_fail_msg("waitpid: %s\n", strerror(errno));
	atomic_store(&t->child, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		atomic_fetch_add(&nr_child_fail, 1);
		ksft_print_msg("fork child for [%#lx, +%lu) %s %d\n", page_addr(pg), n,
			       WIFEXITED(status) ? "exited" : "killed by signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	lock_range(c0, c1);
}

static void op_cpu(struct thread *t, enum op_kind op, unsigned long pg, unsigned long n)
{
	unsigned long i;

	count(op, 0, 0);
	for (i = pg; i < pg + n; i++) {
		enum prot p = chunks[i / CHUNK_PAGES].prot;
		char *data = region + i * PAGE_SZ;

		if (p >= P_RO && (op == OP_CPU_READ || rnd_below(t, 2)))
			check_page(i, &pages[i], data, "cpu-read");
		if (p == P_RW && op == OP_CPU_WRITE) {
			uint32_t g = new_gen();

			stamp(data, page_addr(i), g);
			set_stamp(&pages[i], page_addr(i), g);
		}
	}
}

/* ---- threads ------------------------------------------------------------ */

enum role { ROLE_DEVICE, ROLE_MM, ROLE_FORK, ROLE_CPU, NR_ROLES, ROLE_ALL = NR_ROLES };

static const struct { enum op_kind op; unsigned int weight; } role_ops[NR_ROLES][12] = {
	[ROLE_DEVICE] = {
		{ OP_DEV_READ, 6 }, { OP_DEV_WRITE, 6 }, { OP_SNAPSHOT, 3 },
		{ OP_MIGRATE_DEV, 8 }, { OP_MIGRATE_SYS, 4 }, { OP_EXCLUSIVE, 3 },
		{ OP_RELEASE, 1 }, { OP_FAIL_ALLOC, 1 },
	},
	[ROLE_MM] = {
		{ OP_REMAP, 3 }, { OP_MUNMAP, 2 }, { OP_MPROTECT, 4 },
		{ OP_DONTNEED, 3 }, { OP_FREE, 3 }, { OP_COLD, 2 }, { OP_PAGEOUT, 3 },
		{ OP_MREMAP, 3 }, { OP_MREMAP_DONTUNMAP, 1 }, { OP_COLLAPSE, 1 },
	},
	[ROLE_FORK] = { { OP_FORK, 1 } },
	[ROLE_CPU] = { { OP_CPU_READ, 1 }, { OP_CPU_WRITE, 1 } },
};

static enum op_kind pick_op(struct thread *t, enum role role)
{
	unsigned int i, total = 0, r;

	for (i = 0; role_ops[role][i].weight; i++)
		total += role_ops[role][i].weight;
	r = rnd_below(t, total);
	for (i = 0; r >= role_ops[role][i].weight; i++)
		r -= role_ops[role][i].weight;
	return role_ops[role][i].op;
}

static bool time_up(void)
{
	struct timespec now;

	if (atomic_load(&stop))
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline.tv_sec ||
	       (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

/* A range of whole chunks: mostly one, sometimes many, now and then a PMD. */
static void pick_chunks(struct thread *t, unsigned int *c0, unsigned int *c1)
{
	unsigned int per_span = SPAN_PAGES / CHUNK_PAGES, n;

	switch (rnd_below(t, 8)) {
	case 0:
		*c0 = rnd_below(t, NR_SPANS) * per_span;
		*c1 = *c0 + per_span;
		return;
	case 1:
	case 2:
		n = 1 + rnd_below(t, 4);
		break;
	default:
		n = 1;
	}
	*c0 = rnd_below(t, NR_CHUNKS - n + 1);
	*c1 = *c0 + n;
}

static void one_op(struct thread *t, enum role role)
{
	unsigned int c0, c1;
	unsigned long pg, n;
	enum op_kind op = pick_op(t, role);

	atomic_store(&t->cur_op, op);
	atomic_store(&t->cur_pg, 0);
	atomic_store(&t->cur_n, 0);
	if (op == OP_RELEASE) {
		op_release(t);
		return;
	}
	pick_chunks(t, &c0, &c1);
	if (op == OP_COLLAPSE) {	/* whole PMDs only */
		c0 -= c0 % (SPAN_PAGES / CHUNK_PAGES);
		c1 = c0 + SPAN_PAGES / CHUNK_PAGES;
	}
	atomic_store(&t->cur_pg, c0 * CHUNK_PAGES);
	atomic_store(&t->cur_n, (c1 - c0) * CHUNK_PAGES);
	if (op == OP_MREMAP || op == OP_MREMAP_DONTUNMAP) {
		op_mremap(t, op, c0, c1);
		return;
	}
	/* Device and CPU operations take a sub-range of the chunks. */
	pg = c0 * CHUNK_PAGES;
	n = (c1 - c0) * CHUNK_PAGES;
	if (role == ROLE_DEVICE || role == ROLE_CPU || role == ROLE_FORK) {
		unsigned long skip = rnd_below(t, 4) ? 0 : rnd_below(t, n);

		pg += skip;
		n -= skip;
		n -= rnd_below(t, 4) ? 0 : rnd_below(t, n);
	}
	atomic_store(&t->cur_pg, pg);
	atomic_store(&t->cur_n, n);
	lock_range(c0, c1);
	switch (op) {
	case OP_DEV_READ:
		op_dev_read(t, pg, n);
		break;
	case OP_DEV_WRITE:
		op_dev_write(t, pg, n);
		break;
	case OP_SNAPSHOT:
		op_snapshot(t, pg, n);
		break;
	case OP_MIGRATE_DEV:
	case OP_MIGRATE_SYS:
	case OP_FAIL_ALLOC:
		op_migrate(t, op, pg, n);
		break;
	case OP_EXCLUSIVE:
		op_exclusive(t, pg, n);
		break;
	case OP_FORK:
		op_fork(t, c0, c1, pg, n);
		break;
	case OP_CPU_READ:
	case OP_CPU_WRITE:
		op_cpu(t, op, pg, n);
		break;
	default:
		op_mm(t, op, c0, c1);
	}
	unlock_range(c0, c1);
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;

	self = t;
	t->os_tid = gettid();
	while (!time_up() && (!ops_limit || t->ops < ops_limit)) {
		if (t->role == ROLE_ALL)
			one_op(t, rnd_below(t, NR_ROLES));
		else
			one_op(t, t->role);
		t->ops++;
		atomic_store(&t->cur_op, -1);
	}
	atomic_store(&t->done, true);
	return NULL;
}

/*
 * The hang report is written with write(2) from static buffers: a wedged
 * worker may hold the stdio lock, and a page fault could wait for an mmap
 * lock a worker will never release.
 */
static char hang_text[4096];

static void say(const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(hang_text, sizeof(hang_text), fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(hang_text) - 1)
		len = sizeof(hang_text) - 1;
	if (write(STDOUT_FILENO, hang_text, len) < 0)
		_exit(KSFT_FAIL);
}

static void dump_file(const char *path)
{
	static char text[2048];
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len <= 0)
		return;
	text[len] = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		say("#     %s\n", line);
}

/*
 * Wait for the workers; if they are not done @grace seconds after the
 * deadline, say what each one is doing, with its kernel stack, and fail.
 */
static void watch(struct thread *threads, int nthreads, int grace)
{
	static char path[64];
	int i, fd, waited = 0;

	for (;;) {
		bool all = true;

		for (i = 0; i < nthreads; i++)
			all &= atomic_load(&threads[i].done);
		if (all)
			return;
		if (!time_up() || waited++ < grace) {
			sleep(1);
			continue;
		}
		break;
	}
	fflush(stdout);
	say("# hang: workers still busy %d s after the deadline\n", grace);
	for (i = 0; i < nthreads; i++) {
		struct thread *t = &threads[i];
		int op = atomic_load(&t->cur_op), child = atomic_load(&t->child);

		if (atomic_load(&t->done))
			continue;
		say("# thread %d (tid %d): %s [%#lx, +%lu pages)%s\n", i, t->os_tid,
		    op < 0 ? "between operations" : op_name[op],
		    page_addr(atomic_load(&t->cur_pg)),
		    (unsigned long)atomic_load(&t->cur_n), child ? ", child:" : "");
		snprintf(path, sizeof(path), "/proc/self/task/%d/stack", t->os_tid);
		dump_file(path);
		if (child) {
			snprintf(path, sizeof(path), "/proc/%d/stack", child);
			dump_file(path);
		}
	}
	/*
	 * Every blocked task and, with lockdep, every lock held, on the
	 * kernel console: the task holding what the workers wait for may be
	 * none of ours.
	 */
	fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "w", 1) != 1 || write(fd, "d", 1) != 1)
			say("# sysrq: %s\n", strerror(errno));
		close(fd);
		say("# blocked tasks and held locks (sysrq w, d) are on the kernel console\n");
	}
	say("not ok 1 hmm-stress: hang\n");
	_exit(KSFT_FAIL);
}

/* ---- setup and report ----------------------------------------------------- */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	char line[160];
	int len;

	len = snprintf(line, sizeof(line),
		       "# signal %d at %p (code %d)\nnot ok 1 hmm-stress: killed by a signal\n",
		       sig, si->si_addr, si->si_code);
	if (write(STDOUT_FILENO, line, len) < 0)
		_exit(KSFT_FAIL);
	_exit(KSFT_FAIL);
}

static void print_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-s SEED] [-t SECONDS] [-n OPS] [-1]\n"
		"  -s SEED     seed (default: from the clock; printed)\n"
		"  -t SECONDS  run time (default 60)\n"
		"  -n OPS      stop each thread after OPS operations\n"
		"  -1          one thread running every role: a seed replays exactly\n",
		prog);
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	static const enum role roles[] = {
		ROLE_DEVICE, ROLE_DEVICE, ROLE_DEVICE, ROLE_MM, ROLE_MM,
		ROLE_FORK, ROLE_CPU,
	};
	static struct thread threads[MAX_THREADS];
	unsigned long long seed = 0;
	long long in_use_before[NR_DEVICES], in_use_after[NR_DEVICES];
	unsigned long total = 0, bad_data;
	int nthreads = ARRAY_SIZE(roles);
	int seconds = 60, opt, i, d, e;
	bool have_seed = false, serial = false, have_stats = true;
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO };
	char thp[128] = "?";
	FILE *f;

	while ((opt = getopt(argc, argv, "s:t:n:1h")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 't':
			seconds = atoi(optarg);
			break;
		case 'n':
			ops_limit = strtoul(optarg, NULL, 0);
			break;
		case '1':
			serial = true;
			break;
		default:
			print_usage(argv[0]);
		}
	}
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ts.tv_sec * 1000003ULL ^ ts.tv_nsec ^ getpid();
	}
	if (serial)
		nthreads = 1;

	ksft_print_header();
	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(thp, sizeof(thp), f))
			snprintf(thp, sizeof(thp), "?");
		fclose(f);
		thp[strcspn(thp, "\n")] = 0;
	}
	thp_madvise = !!strstr(thp, "[madvise]");
	ksft_print_msg("seed %llu (replay: -s %llu -t %d%s), THP %s\n", seed, seed,
		       seconds, serial ? " -1" : "", thp);

	for (d = 0; d < NR_DEVICES; d++) {
		shared_fd[d] = dmirror_open(d);
		if (shared_fd[d] < 0)
			ksft_exit_skip("/dev/hmm_dmirror%d: %s (is CONFIG_TEST_HMM on?)\n",
				       d, strerror(errno));
		in_use_before[d] = dmirror_stat(d, ST_PAGES_IN_USE);
		if (in_use_before[d] < 0)
			have_stats = false;
	}
	ksft_set_plan(7);
	have_flags = !dmirror(shared_fd[0], HMM_DMIRROR_FLAGS, 0, NULL, 0, NULL);
	if (!have_flags)
		ksft_print_msg("HMM_DMIRROR_FLAGS: %s: device without fault injection\n",
			       strerror(errno));

	if (mmap(region, REGION_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != region)
		ksft_exit_fail_msg("mmap of the test region: %s\n", strerror(errno));
	if (thp_madvise)
		madvise(region, REGION_SIZE, MADV_HUGEPAGE);
	for (i = 0; i < NR_CHUNKS; i++) {
		pthread_mutex_init(&chunks[i].lock, NULL);
		chunks[i].prot = P_RW;
	}
	for (i = 0; i < NR_PAGES; i++) {
		uint32_t g = new_gen();

		stamp(region + i * PAGE_SZ, page_addr(i), g);
		set_stamp(&pages[i], page_addr(i), g);
	}

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += seconds;
	for (i = 0; i < nthreads; i++) {
		struct thread *t = &threads[i];

		t->id = i;
		t->rng = seed + (i + 1) * 0x632be59bd9b4e019ULL;
		t->role = serial ? ROLE_ALL : roles[i];
		t->cur_op = -1;
		t->buf = mmap(NULL, SPAN_PAGES * PAGE_SZ, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		t->scratch = (char *)SCRATCH_BASE + i * 2 * SPAN_PAGES * PAGE_SZ;
		if (t->buf == MAP_FAILED)
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		for (d = 0; d < NR_DEVICES; d++) {
			t->fd[d] = dmirror_open(d);
			if (t->fd[d] < 0)
				ksft_exit_fail_msg("open: %s\n", strerror(errno));
		}
	}
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]))
			ksft_exit_fail_msg("pthread_create failed\n");
	watch(threads, nthreads, HANG_GRACE);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i].tid, NULL);

	/* Last word: every page that can be read is read once more. */
	for (i = 0; i < NR_CHUNKS; i++) {
		char *chunk = region + i * CHUNK_PAGES * PAGE_SZ;

		if (chunks[i].prot == P_NONE &&
		    !mprotect(chunk, CHUNK_PAGES * PAGE_SZ, PROT_READ))
			chunks[i].prot = P_RO;
	}
	cpu_check(0, NR_PAGES, "final-cpu-read");

	for (e = 0; e < NR_OPS; e++) {
		char hist[512];
		int len = 0;

		total += op_count[e];
		for (i = 1; i < MAX_ERRNO; i++)
			if (op_errno[e][i] && len < (int)sizeof(hist) - 32)
				len += snprintf(hist + len, sizeof(hist) - len, " %s:%lu",
						strerrorname_np(i) ?: "?",
						(unsigned long)op_errno[e][i]);
		ksft_print_msg("%-17s %8lu%s%s\n", op_name[e], (unsigned long)op_count[e],
			       len ? "  errors" : "", len ? hist : "");
	}
	ksft_print_msg("operations %lu in %d s by %d threads, pages checked %lu\n", total,
		       seconds, nthreads, (unsigned long)nr_checked_pages);
	ksft_print_msg("corruptions %lu, lost pages %lu, lost writes %lu\n",
		       (unsigned long)nr_corrupt, (unsigned long)nr_lost_page,
		       (unsigned long)nr_lost_write);
	for (d = 0; d < NR_DEVICES && have_stats; d++) {
		struct dmirror_stats st;
		char line[256];
		int len = 0, k;

		if (dmirror_stats_read(d, &st))
			continue;
		for (k = ST_TO_DEV; k < NR_DMIRROR_STATS; k++)
			len += snprintf(line + len, sizeof(line) - len, " %s %lld",
					dmirror_stat_file[k], st.val[k]);
		ksft_print_msg("dmirror%d:%s\n", d, line);
	}

	bad_data = nr_corrupt + nr_lost_page + nr_lost_write;
	ksft_test_result(!bad_data, "data: no corruption or loss in %lu checked pages\n",
			 (unsigned long)nr_checked_pages);
	ksft_test_result(!nr_bad_errno, "errno: every call succeeded or failed as allowed\n");
	ksft_test_result(!nr_bad_snapshot, "snapshot: access and page kinds consistent\n");
	ksft_test_result(!nr_bad_exclusive, "exclusive: revoked by CPU access\n");
	ksft_test_result(!nr_child_fail && (serial || op_count[OP_FORK]),
			 "fork: %lu children saw the parent's data\n",
			 (unsigned long)op_count[OP_FORK]);

	if (!have_flags)
		ksft_test_result_skip("fail-alloc: device without HMM_DMIRROR_FLAGS\n");
	else
		ksft_test_result(!bad_data && (serial || nr_fail_alloc_hit),
				 "fail-alloc: %lu migrations failed on an injected allocation failure, data intact\n",
				 (unsigned long)nr_fail_alloc_hit);

	/* Everything in device memory is freed with the last mapping. */
	munmap(region, REGION_SIZE);
	for (i = 0; i < nthreads; i++)
		for (d = 0; d < NR_DEVICES; d++)
			close(threads[i].fd[d]);
	for (d = 0; d < NR_DEVICES; d++)
		close(shared_fd[d]);
	if (!have_stats) {
		ksft_test_result_skip("device memory: device without stats/dev_pages_in_use\n");
	} else {
		bool same = true;

		for (d = 0; d < NR_DEVICES; d++) {
			long long now = dmirror_stat(d, ST_PAGES_IN_USE);

			if (now != in_use_before[d])
				ksft_print_msg("dmirror%d: %lld pages in use, %lld at start\n",
					       d, now, in_use_before[d]);
		}
		for (i = 0; i < 20; i++) {
			drain_lru_batches();
			same = true;
			for (d = 0; d < NR_DEVICES; d++) {
				in_use_after[d] = dmirror_stat(d, ST_PAGES_IN_USE);
				same &= in_use_after[d] == in_use_before[d];
			}
			if (same)
				break;
			usleep(100000);
		}
		for (d = 0; d < NR_DEVICES; d++)
			if (in_use_after[d] != in_use_before[d])
				ksft_print_msg("dmirror%d: %lld device pages in use, %lld before\n",
					       d, in_use_after[d], in_use_before[d]);
		ksft_test_result(same, "device memory: all pages back after unmap and close\n");
	}
	ksft_finished();
}
