// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-fuzz: random and boundary arguments against every ioctl of the dmirror
 * test device (lib/test_hmm.c), the defined ones, HMM_DMIRROR_FLAGS and
 * numbers the device does not know.
 *
 * Each call gets a command, an argument pointer (a good struct, NULL, a
 * kernel address, a struct that runs into an inaccessible page or sits in
 * read-only memory) and struct fields picked from lists of interesting
 * values: addresses in every kind of mapping the process has (anonymous,
 * read-only, PROT_NONE, unmapped, shared, file, hugetlb, THP, the device's
 * own mapping, the kernel, the end of user space), misaligned ones, page
 * counts from zero to 2^64 - 1, and data buffers that are missing, too short,
 * read-only, inaccessible or overlap the range itself.
 *
 * A call may succeed or fail with an errno of a known set; where the outcome
 * is certain it must be exactly that (a bad argument pointer is EFAULT, an
 * unknown command EINVAL or ENOTTY, a device write into read-only memory
 * never succeeds and never changes it, a successful device read returns what
 * the CPU sees). A return other than 0 or -1, another errno or a signal is a
 * failure. Device files whose process has exited, and files used from a
 * process other than their opener, are fuzzed the same way.
 *
 * The sequence of calls follows from -s SEED; -n CALLS sets how many (default
 * 100000). A background thread migrating the same ranges back and forth
 * (-c 0 turns it off) makes outcomes depend on timing, not the sequence.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"
#include "hmm-dmirror.h"

#define PAGE_SZ		4096UL
#define NR_DEVICES	4
#define BASE		0x5000000000UL	/* the areas, far below the mmap area */
#define SLOT		0x400000UL	/* 4 MiB per area, unmapped in between */
#define BUF_PAGES	16

enum area {
	A_RW, A_RO, A_NONE, A_HOLE, A_SHARED, A_FILE, A_HUGETLB, A_THP, A_DEVMAP,
	NR_AREAS
};

static const char *const area_name[NR_AREAS] = {
	"anon", "read-only", "prot-none", "unmapped", "shared", "file", "hugetlb",
	"thp", "device-mmap",
};

static const unsigned long area_pages[NR_AREAS] = {
	[A_RW] = 64, [A_RO] = 16, [A_NONE] = 16, [A_HOLE] = 16, [A_SHARED] = 16,
	[A_FILE] = 16, [A_HUGETLB] = 512, [A_THP] = 512, [A_DEVMAP] = 4,
};

static bool area_ok[NR_AREAS];

static unsigned long area_addr(enum area a)
{
	unsigned long addr = BASE + a * SLOT;

	/* THP and hugetlb want a PMD aligned start: the slots are. */
	return addr;
}

#define NR_CMDS 9
static const unsigned long cmds[NR_CMDS] = {
	HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
	HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE,
	HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS,
};

static const char *const cmd_name[NR_CMDS + 1] = {
	"read", "write", "migrate-to-dev", "migrate-to-sys", "snapshot",
	"exclusive", "check-exclusive", "release", "flags", "unknown",
};

/* Every errno a dmirror ioctl may return; anything else fails the test. */
static const int known_errno[] = {
	EINVAL, EFAULT, ENOENT, ENOMEM, EBUSY, EPERM, ENOTTY, ENOSPC, EAGAIN,
	EOPNOTSUPP,	/* exclusive access to hugetlb pages */
	0
};

#define MAX_ERRNO 160
static unsigned long hist[NR_CMDS + 1][MAX_ERRNO + 1];	/* [MAX_ERRNO]: success */
static unsigned long nr_calls, nr_bad, nr_data_bad;
static uint64_t rng;
static int fds[NR_DEVICES];
static bool new_device;		/* HMM_DMIRROR_FLAGS works: lib/test_hmm.c rewrite */
static char *buf, *buf_ro, *ro_copy;
static struct hmm_dmirror_cmd *cmd_guard, *cmd_ro;
static atomic_bool churn_stop;
static bool verbose;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned long rnd_below(unsigned long n)
{
	return rnd() % n;
}

static bool errno_in(int err, const int *set)
{
	for (; *set; set++)
		if (err == *set)
			return true;
	return false;
}

/* ---- the process's mappings ----------------------------------------------- */

static void fill(char *p, unsigned long pages, unsigned int seed)
{
	unsigned long i;

	for (i = 0; i < pages * PAGE_SZ / 8; i++)
		((uint64_t *)p)[i] = (seed + i) * 0x9e3779b97f4a7c15ULL;
}

static void *map_at(enum area a, int prot, int flags, int fd)
{
	void *want = (void *)area_addr(a), *p;

	p = mmap(want, area_pages[a] * PAGE_SZ, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (p != want)
		ksft_exit_fail_msg("mmap placed %s at %p\n", area_name[a], p);
	area_ok[a] = true;
	return p;
}

static void setup_areas(void)
{
	size_t len;
	char *p;
	int fd;

	p = map_at(A_RW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!p)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	fill(p, area_pages[A_RW] / 2, 1);	/* the rest is never touched */

	p = map_at(A_RO, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!p)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	fill(p, area_pages[A_RO], 2);
	mprotect(p, area_pages[A_RO] * PAGE_SZ, PROT_READ);
	len = area_pages[A_RO] * PAGE_SZ;
	ro_copy = malloc(len);
	memcpy(ro_copy, p, len);

	map_at(A_NONE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	p = map_at(A_SHARED, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	if (p)
		fill(p, area_pages[A_SHARED], 3);

	fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (fd >= 0 && !ftruncate(fd, area_pages[A_FILE] * PAGE_SZ)) {
		p = map_at(A_FILE, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
		if (p)
			fill(p, area_pages[A_FILE], 4);
	}
	if (fd >= 0)
		close(fd);

	p = map_at(A_HUGETLB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1);
	if (p)
		fill(p, 1, 5);

	p = map_at(A_THP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (p) {
		madvise(p, area_pages[A_THP] * PAGE_SZ, MADV_HUGEPAGE);
		fill(p, area_pages[A_THP], 6);
	}
	/* The device's own mmap: kernel pages in a VM_MIXEDMAP vma. */
	map_at(A_DEVMAP, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0]);

	/* A data buffer with a PROT_NONE page after it, and a read-only one. */
	p = mmap(NULL, (BUF_PAGES + 1) * PAGE_SZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	mprotect(p + BUF_PAGES * PAGE_SZ, PAGE_SZ, PROT_NONE);
	buf = p;
	buf_ro = mmap(NULL, BUF_PAGES * PAGE_SZ, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	/* Command structs: a read-only one, one running into a PROT_NONE page. */
	p = mmap(NULL, 3 * PAGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED || buf_ro == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	mprotect(p, PAGE_SZ, PROT_READ);
	mprotect(p + 2 * PAGE_SZ, PAGE_SZ, PROT_NONE);
	cmd_ro = (void *)p;
	cmd_guard = (void *)(p + 2 * PAGE_SZ - 16);
}

/* ---- argument generators --------------------------------------------------- */

static const uint64_t kernel_addrs[] = {
	0xffff888000000000ULL, 0xffffffff81000000ULL, 0xffffffffff600000ULL,
	0xfffffffffffff000ULL, 0x0000800000000000ULL, 0x00007ffffffff000ULL,
};

static uint64_t pick_addr(enum area *where)
{
	enum area a = rnd_below(NR_AREAS);
	uint64_t addr;

	*where = NR_AREAS;
	switch (rnd_below(16)) {
	case 0:
		return 0;
	case 1:
		return kernel_addrs[rnd_below(ARRAY_SIZE(kernel_addrs))];
	case 2:
		return rnd();
	case 3:	/* the last pages of user space */
		return 0x800000000000ULL - (1 + rnd_below(4)) * PAGE_SZ;
	case 4:	/* misaligned */
		return area_addr(a) + 1 + rnd_below(PAGE_SZ - 1);
	case 5:	/* just before an area: starts in the hole */
		return area_addr(a) - PAGE_SZ;
	default:
		addr = area_addr(a) + rnd_below(area_pages[a]) * PAGE_SZ;
		if (rnd_below(3) == 0)
			addr = area_addr(a);
		*where = a;
		return addr;
	}
}

static uint64_t pick_npages(uint64_t addr, enum area where)
{
	static const uint64_t huge[] = {
		1ULL << 20, 1ULL << 36, 1ULL << 52, 1ULL << 63, ~0ULL, ~0ULL >> 12,
		(~0ULL >> 12) + 1, 0x800000000000ULL >> 12,
	};
	uint64_t left = where < NR_AREAS ?
		area_pages[where] - (addr - area_addr(where)) / PAGE_SZ : 16;

	switch (rnd_below(12)) {
	case 0:
		return 0;
	case 1:
		return huge[rnd_below(ARRAY_SIZE(huge))];
	case 2:
		return rnd();
	case 3:	/* runs past the end of the area into the hole */
		return left + 1 + rnd_below(16);
	case 4:
		return left;
	default:
		return 1 + rnd_below(left < BUF_PAGES ? left : BUF_PAGES);
	}
}

enum ptr_kind { PTR_BUF, PTR_SHORT, PTR_NULL, PTR_KERNEL, PTR_RO, PTR_NONE,
		PTR_SELF, PTR_ODD, PTR_RANDOM };

static uint64_t pick_ptr(uint64_t addr, uint64_t npages, enum ptr_kind *kind)
{
	*kind = rnd_below(16);
	switch (*kind) {
	case PTR_SHORT:	/* ends in the guard page before the data does */
		return (uintptr_t)buf + BUF_PAGES * PAGE_SZ -
			(npages < BUF_PAGES ? npages : BUF_PAGES) * PAGE_SZ / 2;
	case PTR_NULL:
		return 0;
	case PTR_KERNEL:
		return kernel_addrs[rnd_below(4)];
	case PTR_RO:
		return (uintptr_t)buf_ro;
	case PTR_NONE:
		return area_addr(A_NONE);
	case PTR_SELF:
		return addr;
	case PTR_ODD:
		return (uintptr_t)buf + 1 + rnd_below(64);
	case PTR_RANDOM:
		return rnd();
	default:
		*kind = PTR_BUF;
		return (uintptr_t)buf;
	}
}

static unsigned long pick_cmd(int *idx)
{
	unsigned int nr, type, size, dir;

	*idx = rnd_below(NR_CMDS + 1);
	if (*idx < NR_CMDS)
		return cmds[*idx];
	/* Numbers the device does not know; types the VFS keeps for itself excluded. */
	nr = rnd_below(4) ? 0x09 + rnd_below(0xf7) : rnd_below(0x09);
	type = rnd_below(4) ? 'H' : 'A' + rnd_below(26);
	if (type == 'T' || type == 'X')
		type = 'H';
	size = rnd_below(2) ? sizeof(struct hmm_dmirror_cmd) : rnd_below(64);
	dir = rnd_below(4);
	if (type == 'H' && nr < 0x09 && size == sizeof(struct hmm_dmirror_cmd) &&
	    dir == (_IOC_READ | _IOC_WRITE))
		size++;
	return _IOC(dir, type, nr, size);
}

/* ---- one call and its oracle ---------------------------------------------- */

static bool range_cmd(int idx)
{
	return idx <= 6;	/* READ .. CHECK_EXCLUSIVE */
}

static void report(const char *what, unsigned long req, const struct hmm_dmirror_cmd *c,
		   int ret, int err)
{
	nr_bad++;
	ksft_print_msg("call %lu: %s: ioctl %#lx addr %#llx ptr %#llx npages %#llx -> %d (%s)\n",
		       nr_calls, what, req, (unsigned long long)c->addr,
		       (unsigned long long)c->ptr, (unsigned long long)c->npages, ret,
		       ret ? strerror(err) : "success");
}

/* Whose file a call goes to. */
enum owner { OWN, FOREIGN, DEAD };

#define USER_TOP	0x7ffffffff000ULL	/* x86-64 TASK_SIZE with 4 levels */

/*
 * Issue @req on @fd with @c through @argp (normally @c itself) and check the
 * outcome against what is certain about it.
 */
static void call(int fd, unsigned long req, int idx, struct hmm_dmirror_cmd *c,
		 void *argp, enum area where, enum ptr_kind pk, enum owner owner)
{
	struct hmm_dmirror_cmd in = *c;
	bool bad_argp = argp != c && argp != cmd_ro;
	uint64_t end = in.addr + in.npages * PAGE_SZ;
	bool in_area = where < NR_AREAS && in.npages &&
		in.npages <= area_pages[where] &&
		end <= area_addr(where) + area_pages[where] * PAGE_SZ && end > in.addr;
	bool bad_range = in.addr % PAGE_SZ || !in.npages || in.npages > USER_TOP / PAGE_SZ ||
		in.addr > USER_TOP - in.npages * PAGE_SZ;
	int ret, err;

	if (in_area && !area_ok[where])
		where = A_HOLE;		/* a mapping this run could not make */

	if (argp == cmd_ro) {	/* the struct is readable, not writable */
		mprotect(cmd_ro, PAGE_SZ, PROT_READ | PROT_WRITE);
		*cmd_ro = in;
		mprotect(cmd_ro, PAGE_SZ, PROT_READ);
	} else if (argp == cmd_guard) {
		memcpy(cmd_guard, &in, 16);	/* addr and ptr, then the guard page */
	}
	errno = 0;
	ret = ioctl(fd, req, argp);
	err = errno;
	nr_calls++;
	if (verbose)
		ksft_print_msg("#%lu: %#lx (%s) argp %p addr %#llx ptr %#llx npages %#llx: %d %s\n",
			       nr_calls, req, cmd_name[idx], argp, (unsigned long long)in.addr,
			       (unsigned long long)in.ptr, (unsigned long long)in.npages, ret,
			       ret ? strerror(err) : "");
	hist[idx][ret == 0 ? MAX_ERRNO : err < MAX_ERRNO ? err : 0]++;

	if (ret != 0 && ret != -1) {
		report("return value neither 0 nor -1", req, &in, ret, err);
		return;
	}
	if (ret && !errno_in(err, known_errno)) {
		report("errno outside the known set", req, &in, ret, err);
		return;
	}
	if (idx == NR_CMDS) {
		if (!ret || (err != EINVAL && err != ENOTTY))
			report("unknown command not refused with EINVAL/ENOTTY", req, &in,
			       ret, err);
		return;
	}
	if (bad_argp) {
		if (!ret || err != EFAULT)
			report("bad argument pointer not refused with EFAULT", req, &in,
			       ret, err);
		return;
	}
	if (argp == cmd_ro && !ret)
		report("results written to a read-only struct", req, &in, ret, err);
	if (!range_cmd(idx))
		return;
	/* Below: commands on a range, with a good struct. */
	if (owner == DEAD && new_device && !ret)
		report("range command on an exited process succeeded", req, &in, ret, err);
	if (new_device && bad_range && (!ret || err != EINVAL))
		report("bad range not refused with EINVAL", req, &in, ret, err);
	if (owner == DEAD)
		return;
	if ((idx == 0 || idx == 1 || idx == 4) && in.npages && !ret &&
	    (pk == PTR_NULL || pk == PTR_KERNEL || pk == PTR_NONE))
		report("data moved through a bad buffer pointer", req, &in, ret, err);
	if (!in_area || owner == FOREIGN)
		return;
	if ((where == A_NONE || where == A_HOLE) && (idx <= 3 || idx == 5) && !ret)
		report("access to an inaccessible range succeeded", req, &in, ret, err);
	if (where == A_RO && (idx == 1 || idx == 5) && !ret)
		report("write access to a read-only range succeeded", req, &in, ret, err);
	if (where == A_RO && idx == 1 && ret && err != EPERM && err != EFAULT)
		report("device write to read-only memory: wrong errno", req, &in, ret, err);
	/* A successful read returns what the CPU sees, a write leaves it there. */
	if (!ret && (idx == 0 || idx == 1) && pk == PTR_BUF && where != A_DEVMAP &&
	    area_ok[where] &&
	    where != A_NONE && where != A_HOLE && in.npages <= BUF_PAGES &&
	    memcmp(buf, (void *)(uintptr_t)in.addr, in.npages * PAGE_SZ)) {
		nr_data_bad++;
		report(idx ? "device write: memory differs from the data written" :
		       "device read: data differs from memory", req, &in, ret, err);
	}
}

static void check_ro_area(void)
{
	if (memcmp((void *)area_addr(A_RO), ro_copy, area_pages[A_RO] * PAGE_SZ)) {
		nr_data_bad++;
		nr_bad++;
		ksft_print_msg("call %lu: read-only memory changed\n", nr_calls);
		memcpy(ro_copy, (void *)area_addr(A_RO), area_pages[A_RO] * PAGE_SZ);
	}
}

/* One random call on @fd. */
static void fuzz_one(int fd, enum owner owner)
{
	struct hmm_dmirror_cmd c = { 0 };
	enum ptr_kind pk;
	enum area where;
	void *argp = &c;
	unsigned long req;
	int idx;

	req = pick_cmd(&idx);
	c.addr = pick_addr(&where);
	c.npages = pick_npages(c.addr, where);
	c.ptr = pick_ptr(c.addr, c.npages, &pk);
	if (idx == NR_CMDS - 1)	/* FLAGS: mostly valid flags, some junk */
		c.npages = rnd_below(4) ? rnd_below(2) : rnd();
	c.cpages = rnd_below(2) ? 0 : rnd();
	c.faults = rnd_below(2) ? 0 : rnd();
	switch (rnd_below(24)) {
	case 0:
		argp = NULL;
		break;
	case 1:
		argp = (void *)(uintptr_t)kernel_addrs[rnd_below(4)];
		break;
	case 2:
		argp = cmd_guard;
		break;
	case 3:
		argp = cmd_ro;
		break;
	}
	if (pk == PTR_BUF && idx == 1)
		fill(buf, c.npages < BUF_PAGES ? c.npages : BUF_PAGES, rnd());
	call(fd, req, idx, &c, argp, where, pk, owner);
	if (idx == 1 || idx == 5)
		check_ro_area();
	/* Never leave an allocation failure armed for the next test. */
	if (idx == NR_CMDS - 1 && new_device) {
		struct hmm_dmirror_cmd off = { 0 };

		ioctl(fd, HMM_DMIRROR_FLAGS, &off);
	}
}

/* Now and then the address space changes under the device. */
static void churn_mm(void)
{
	char *rw = (char *)area_addr(A_RW);
	size_t len = area_pages[A_RW] * PAGE_SZ;

	unsigned long what = rnd_below(4);

	if (verbose)
		ksft_print_msg("mm change %lu\n", what);
	switch (what) {
	case 0:
		madvise(rw, len, MADV_DONTNEED);
		fill(rw, area_pages[A_RW] / 2, rnd());
		break;
	case 1:
		madvise(rw, len, MADV_FREE);
		break;
	case 2:
		if (area_ok[A_THP])
			madvise((void *)area_addr(A_THP), area_pages[A_THP] * PAGE_SZ,
				MADV_DONTNEED);
		break;
	default:
		fill(rw + rnd_below(area_pages[A_RW]) * PAGE_SZ, 1, rnd());
	}
}

/* A second thread migrating the same ranges to devices and back. */
static void *churn_main(void *arg)
{
	uint64_t r = (uintptr_t)arg;
	int fd[NR_DEVICES], d;

	for (d = 0; d < NR_DEVICES; d++)
		fd[d] = open(d == 0 ? "/dev/hmm_dmirror0" : d == 1 ? "/dev/hmm_dmirror1" :
			     d == 2 ? "/dev/hmm_dmirror2" : "/dev/hmm_dmirror3", O_RDWR);
	while (!atomic_load(&churn_stop)) {
		static const enum area areas[] = { A_RW, A_THP, A_SHARED, A_RO };
		enum area a;
		struct hmm_dmirror_cmd c = { 0 };
		char tmp[4 * PAGE_SZ];

		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		a = areas[(r >> 33) % 4];
		d = (r >> 40) % NR_DEVICES;
		if (!area_ok[a] || fd[d] < 0)
			continue;
		c.addr = area_addr(a) + ((r >> 20) % area_pages[a]) * PAGE_SZ;
		c.npages = 1 + (r >> 50) % 4;
		if (c.addr + c.npages * PAGE_SZ > area_addr(a) + area_pages[a] * PAGE_SZ)
			c.npages = 1;
		c.ptr = (uintptr_t)tmp;
		ioctl(fd[d], (r >> 60) & 1 ? HMM_DMIRROR_MIGRATE_TO_DEV :
		      HMM_DMIRROR_MIGRATE_TO_SYS, &c);
		usleep(500);	/* leave the CPU to the fuzzer */
	}
	for (d = 0; d < NR_DEVICES; d++)
		if (fd[d] >= 0)
			close(fd[d]);
	return NULL;
}

/* ---- files whose process is gone, files used by another process ----------- */

static bool wait_ok(pid_t pid, const char *who)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		ksft_exit_fail_msg("waitpid: %s\n", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	ksft_print_msg("%s: %s %d\n", who, WIFEXITED(status) ? "exit status" : "signal",
		       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return false;
}

#define ORPHAN_FD	100
static uint64_t clone_stack[8192];	/* clone() aligns the top itself */

/* In a child sharing our file table but not our mm. */
static int open_in_shared_table(void *arg)
{
	int d, fd;

	for (d = 0; d < NR_DEVICES; d++) {
		fd = dmirror_open(d);
		if (fd < 0 || dup2(fd, ORPHAN_FD + d) < 0)
			return 2;
		close(fd);
	}
	return 0;
}

/*
 * A child with its own mm but our file table opens the devices and exits:
 * we hold files whose mm is gone, fuzz them.
 */
static bool fuzz_orphaned_files(unsigned long calls)
{
	unsigned long i, bad = nr_bad;
	int fd[NR_DEVICES], d;
	pid_t pid;

	fflush(stdout);
	pid = clone(open_in_shared_table, clone_stack + ARRAY_SIZE(clone_stack),
		    CLONE_FILES | SIGCHLD, NULL);
	if (pid < 0)
		ksft_exit_fail_msg("clone: %s\n", strerror(errno));
	if (!wait_ok(pid, "device-opening child"))
		return false;
	for (d = 0; d < NR_DEVICES; d++)
		fd[d] = ORPHAN_FD + d;
	for (i = 0; i < calls; i++)
		fuzz_one(fd[rnd_below(NR_DEVICES)], DEAD);
	for (d = 0; d < NR_DEVICES; d++)
		close(fd[d]);
	return nr_bad == bad;
}

/*
 * The reverse: a child opens the devices and forks a grandchild, then exits;
 * the grandchild fuzzes the inherited files of its dead parent. We are the
 * subreaper that collects it.
 */
static bool fuzz_inherited_from_dead(unsigned long calls)
{
	pid_t pid, gpid;
	int fd[NR_DEVICES], d, status;
	unsigned long i;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		pid = getpid();
		for (d = 0; d < NR_DEVICES; d++) {
			fd[d] = dmirror_open(d);
			if (fd[d] < 0)
				_exit(2);
		}
		gpid = fork();
		if (gpid < 0)
			_exit(2);
		if (gpid == 0) {
			/* Wait for the parent, and its mm, to be gone. */
			while (getppid() == pid)
				usleep(1000);
			for (i = 0; i < calls; i++)
				fuzz_one(fd[rnd_below(NR_DEVICES)], DEAD);
			fflush(stdout);
			_exit(nr_bad ? 1 : 0);
		}
		_exit(0);
	}
	if (!wait_ok(pid, "device-opening child"))
		return false;
	gpid = wait(&status);
	if (gpid < 0)
		ksft_exit_fail_msg("wait: %s\n", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		ksft_print_msg("grandchild: %s %d\n",
			       WIFEXITED(status) ? "exit status" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return false;
	}
	return true;
}

/* A child fuzzes our files: commands act on our mm from another process. */
static bool fuzz_from_other_process(unsigned long calls)
{
	unsigned long i;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < calls; i++)
			fuzz_one(fds[rnd_below(NR_DEVICES)], FOREIGN);
		fflush(stdout);
		_exit(nr_bad ? 1 : 0);
	}
	return wait_ok(pid, "child using the parent's files");
}

/* ---- main ------------------------------------------------------------------ */

/*
 * With every area unmapped and every file closed, no device page may stay
 * in use: each device's dev_pages_in_use returns to @before (LRU batches,
 * which can hold coherent pages for a while, are drained first).
 */
static bool device_memory_back(const long long *before)
{
	long long now[NR_DEVICES];
	bool same = false;
	int d, tries;

	for (d = 0; d < NR_DEVICES; d++)
		close(fds[d]);
	munmap((void *)BASE, NR_AREAS * SLOT);
	for (tries = 0; tries < 20 && !same; tries++) {
		if (tries)
			usleep(100000);
		drain_lru_batches();
		same = true;
		for (d = 0; d < NR_DEVICES; d++) {
			now[d] = dmirror_stat(d, ST_PAGES_IN_USE);
			same &= now[d] == before[d];
		}
	}
	for (d = 0; d < NR_DEVICES && !same; d++)
		if (now[d] != before[d])
			ksft_print_msg("dmirror%d: %lld device pages in use, %lld before\n",
				       d, now[d], before[d]);
	return same;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	char line[160];
	int len;

	len = snprintf(line, sizeof(line),
		       "# signal %d at %p after %lu calls\nnot ok 1 hmm-fuzz: killed by a signal\n",
		       sig, si->si_addr, nr_calls);
	if (write(STDOUT_FILENO, line, len) < 0)
		_exit(KSFT_FAIL);
	_exit(KSFT_FAIL);
}

static void print_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-s SEED] [-n CALLS] [-c 0|1] [-x CALLS] [-v]\n"
		"  -s SEED   seed (default: from the clock; printed)\n"
		"  -n CALLS  calls in the main loop (default 100000)\n"
		"  -c 0      no background migration thread: a seed replays exactly\n"
		"  -x CALLS  calls on each kind of file of another process (default 2000)\n"
		"  -v        print every call\n",
		prog);
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO };
	unsigned long calls = 100000, i, bad, side = 2000;
	unsigned long long seed = 0;
	bool have_seed = false, churn = true, ok;
	struct hmm_dmirror_cmd probe = { 0 };
	struct timespec t0, t1;
	pthread_t churn_tid;
	long long in_use[NR_DEVICES];
	int opt, d, e;

	while ((opt = getopt(argc, argv, "s:n:c:x:vh")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'n':
			calls = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			churn = atoi(optarg);
			break;
		case 'x':
			side = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			print_usage(argv[0]);
		}
	}
	if (!have_seed) {
		clock_gettime(CLOCK_REALTIME, &t0);
		seed = t0.tv_sec * 1000003ULL ^ t0.tv_nsec ^ getpid();
	}
	rng = seed;

	ksft_print_header();
	ksft_print_msg("seed %llu (replay: -s %llu -n %lu%s)\n", seed, seed, calls,
		       churn ? " -c 0 for an exact replay" : " -c 0");
	drain_lru_batches();
	for (d = 0; d < NR_DEVICES; d++)
		in_use[d] = dmirror_stat(d, ST_PAGES_IN_USE);
	for (d = 0; d < NR_DEVICES; d++) {
		fds[d] = dmirror_open(d);
		if (fds[d] < 0)
			ksft_exit_skip("/dev/hmm_dmirror%d: %s (is CONFIG_TEST_HMM on?)\n",
				       d, strerror(errno));
	}
	ksft_set_plan(6);
	new_device = !ioctl(fds[0], HMM_DMIRROR_FLAGS, &probe);
	ksft_print_msg("HMM_DMIRROR_FLAGS %s\n", new_device ? "supported" :
		       "not supported: checks of the rewritten device's argument rules off");
	setup_areas();
	for (e = 0; e < NR_AREAS; e++)
		if (!area_ok[e] && e != A_HOLE)
			ksft_print_msg("no %s mapping in this run\n", area_name[e]);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	if (churn && pthread_create(&churn_tid, NULL, churn_main, (void *)(uintptr_t)seed))
		ksft_exit_fail_msg("pthread_create failed\n");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < calls; i++) {
		fuzz_one(fds[rnd_below(NR_DEVICES)], OWN);
		if (rnd_below(64) == 0)
			churn_mm();
		if ((i + 1) % 25000 == 0)
			ksft_print_msg("%lu calls\n", i + 1);
	}
	bad = nr_bad;
	ksft_test_result(!bad, "random calls: %lu, all succeeded or failed as allowed\n",
			 nr_calls);
	ksft_test_result(!nr_data_bad, "data: device reads and writes matched memory\n");

	ok = fuzz_orphaned_files(side);
	ksft_test_result(ok, "files of an exited process: %lu calls\n", side);
	ok = fuzz_inherited_from_dead(side);
	ksft_test_result(ok, "files inherited from an exited parent: %lu calls\n", side);
	ok = fuzz_from_other_process(side);
	ksft_test_result(ok, "files used by a child of their opener: %lu calls\n", side);
	check_ro_area();
	atomic_store(&churn_stop, true);
	if (churn)
		pthread_join(churn_tid, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ksft_test_result(device_memory_back(in_use),
			 "device memory: back to its starting level once unmapped and closed\n");

	ksft_print_msg("%lu calls in this process (plus %lu in children) in %.1f s\n",
		       nr_calls, 2 * side,
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (i = 0; i <= NR_CMDS; i++) {
		char line[512];
		int len = 0;

		for (e = 0; e <= MAX_ERRNO; e++) {
			if (!hist[i][e] || len > (int)sizeof(line) - 32)
				continue;
			len += snprintf(line + len, sizeof(line) - len, " %s:%lu",
					e == MAX_ERRNO ? "ok" : e ? strerrorname_np(e) ?: "?" :
					"other", hist[i][e]);
		}
		ksft_print_msg("%-16s%s\n", cmd_name[i], line);
	}
	ksft_finished();
}
