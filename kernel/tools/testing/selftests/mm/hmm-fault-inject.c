// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-fault-inject: allocation failures injected into migrations and device
 * faults of the dmirror test device (lib/test_hmm.c) must cost no data and
 * no device memory.
 *
 * Three sources of failure, one case each:
 *  - HMM_DMIRROR_FLAG_FAIL_ALLOC: the device's next page allocation fails;
 *  - failslab: slab allocations of this task fail at random;
 *  - fail_page_alloc: page allocations of this task fail at random.
 * The last two use the fault injection debugfs files of a kernel built with
 * CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS
 * (configs/debug.config), restricted to this task with its make-it-fail
 * flag, which is raised only around the ioctls: the CPU's own checks run
 * without injected failures. Each case moves a stamped buffer between
 * system memory and every device many times, writes it from the devices,
 * then checks every page from the CPU and through a device, and checks that
 * the devices' dev_pages_in_use returns to its starting value once the
 * buffer is unmapped and the files are closed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../kselftest.h"
#include "hmm-dmirror.h"

#define PAGE_SZ		4096UL
#define NPAGES		64
#define NR_DEVICES	4
#define ROUNDS		200

static int fds[NR_DEVICES];
static char *buf, *bounce;
static uint32_t gens[NPAGES];
static uint64_t rng = 0x2545f4914f6cdd1dULL;
static int make_it_fail = -1;	/* /proc/self/make-it-fail, if injecting */

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void stamp(char *page, unsigned long i, uint32_t gen)
{
	uint64_t *w = (uint64_t *)page;
	unsigned long k;

	for (k = 0; k < PAGE_SZ / 8; k++)
		w[k] = ((uint64_t)gen << 32 | i) * 0x9e3779b97f4a7c15ULL + k;
}

static bool stamped(const char *page, unsigned long i, uint32_t gen)
{
	const uint64_t *w = (const uint64_t *)page;
	unsigned long k;

	for (k = 0; k < PAGE_SZ / 8; k++)
		if (w[k] != ((uint64_t)gen << 32 | i) * 0x9e3779b97f4a7c15ULL + k)
			return false;
	return true;
}

static void inject(bool on)
{
	if (make_it_fail >= 0 && pwrite(make_it_fail, on ? "1" : "0", 1, 0) != 1)
		ksft_exit_fail_msg("make-it-fail: %s\n", strerror(errno));
}

/* An ioctl on the buffer, with failures injected while it runs. */
static int dmirror(int fd, unsigned long req, unsigned long first, unsigned long n,
		   void *ptr)
{
	int ret;

	inject(true);
	ret = dmirror_call(fd, req, buf + first * PAGE_SZ, ptr, n, NULL);
	inject(false);
	return ret;
}

/* Every errno an ioctl may fail with when allocations fail under it. */
static bool allowed(int err)
{
	return !err || err == -ENOMEM || err == -EBUSY || err == -ENOENT || err == -EFAULT ||
	       err == -EAGAIN;
}

/*
 * Move the buffer around and write it from the devices for ROUNDS rounds,
 * @arm_flag: arm HMM_DMIRROR_FLAG_FAIL_ALLOC before each migration. Returns
 * the number of failures seen (not counting allowed errnos).
 */
static int rounds(bool arm_flag, unsigned long *nr_failed)
{
	static const uint64_t fail = HMM_DMIRROR_FLAG_FAIL_ALLOC;
	unsigned long i, r, first, n;
	int bad = 0, ret, dev, fd;

	for (r = 0; r < ROUNDS; r++) {
		dev = rnd() % NR_DEVICES;
		fd = fds[dev];
		first = rnd() % NPAGES;
		n = 1 + rnd() % (NPAGES - first);
		switch (rnd() % 4) {
		case 0:
		case 1:
			if (arm_flag) {
				struct hmm_dmirror_cmd cmd = { .npages = fail };

				if (ioctl(fd, HMM_DMIRROR_FLAGS, &cmd))
					ksft_exit_fail_msg("FLAGS: %s\n", strerror(errno));
			}
			ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, first, n, bounce);
			if (arm_flag) {
				struct hmm_dmirror_cmd cmd = { .npages = 0 };

				ioctl(fd, HMM_DMIRROR_FLAGS, &cmd);
			}
			break;
		case 2:
			ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_SYS, first, n, bounce);
			break;
		default:
			for (i = 0; i < n; i++)
				stamp(bounce + i * PAGE_SZ, first + i, gens[first + i] + 1);
			ret = dmirror(fd, HMM_DMIRROR_WRITE, first, n, bounce);
			/* Failed part way: each page holds the old or the new data. */
			for (i = 0; i < n; i++) {
				const char *page = buf + (first + i) * PAGE_SZ;

				if (!ret || stamped(page, first + i, gens[first + i] + 1))
					gens[first + i]++;
			}
		}
		if (ret)
			(*nr_failed)++;
		if (!allowed(ret)) {
			ksft_print_msg("round %lu: %s\n", r, strerror(-ret));
			bad++;
		}
		/* The data, from the CPU: no failures injected here. */
		for (i = 0; i < NPAGES; i++) {
			if (!stamped(buf + i * PAGE_SZ, i, gens[i])) {
				ksft_print_msg("round %lu: page %lu lost its data\n", r, i);
				bad++;
				stamp(buf + i * PAGE_SZ, i, gens[i]);
			}
		}
	}
	/* And through each device, without injection. */
	for (dev = 0; dev < NR_DEVICES; dev++) {
		struct hmm_dmirror_cmd cmd = {
			.addr = (uintptr_t)buf, .ptr = (uintptr_t)bounce, .npages = NPAGES,
		};

		if (ioctl(fds[dev], HMM_DMIRROR_READ, &cmd)) {
			ksft_print_msg("device %d read: %s\n", dev, strerror(errno));
			bad++;
			continue;
		}
		for (i = 0; i < NPAGES; i++)
			if (!stamped(bounce + i * PAGE_SZ, i, gens[i])) {
				ksft_print_msg("device %d read: page %lu lost its data\n", dev, i);
				bad++;
			}
	}
	return bad;
}

/* One case: set up, run the rounds, tear down, check device memory. */
static void run_case(const char *name, bool arm_flag)
{
	long long before[NR_DEVICES], after;
	unsigned long i, failed = 0;
	int bad, d, tries, saved;

	for (d = 0; d < NR_DEVICES; d++) {
		fds[d] = dmirror_open(d);
		if (fds[d] < 0)
			ksft_exit_fail_msg("open: %s\n", strerror(-fds[d]));
	}
	buf = mmap(NULL, NPAGES * PAGE_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bounce = mmap(NULL, NPAGES * PAGE_SZ, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED || bounce == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	for (i = 0; i < NPAGES; i++) {
		gens[i] = 1;
		stamp(buf + i * PAGE_SZ, i, gens[i]);
	}
	/*
	 * Give every device its first chunk of memory before failing
	 * allocations: a failure inside memory hotplug (memremap_pages())
	 * warns in arch code, which is not what this test is about.
	 */
	saved = make_it_fail;
	make_it_fail = -1;
	for (d = 0; d < NR_DEVICES; d++) {
		if (dmirror(fds[d], HMM_DMIRROR_MIGRATE_TO_DEV, 0, NPAGES, bounce) ||
		    dmirror(fds[d], HMM_DMIRROR_MIGRATE_TO_SYS, 0, NPAGES, bounce))
			ksft_exit_fail_msg("dmirror%d: migration without injection: %s\n", d,
					   strerror(errno));
	}
	make_it_fail = saved;
	drain_lru_batches();
	for (d = 0; d < NR_DEVICES; d++)
		before[d] = dmirror_stat(d, ST_PAGES_IN_USE);

	bad = rounds(arm_flag, &failed);

	munmap(buf, NPAGES * PAGE_SZ);
	munmap(bounce, NPAGES * PAGE_SZ);
	for (d = 0; d < NR_DEVICES; d++)
		close(fds[d]);
	for (d = 0; d < NR_DEVICES && before[d] >= 0; d++) {
		for (tries = 0; tries < 20; tries++) {
			drain_lru_batches();
			after = dmirror_stat(d, ST_PAGES_IN_USE);
			if (after == before[d])
				break;
			usleep(100000);
		}
		if (after != before[d]) {
			ksft_print_msg("dmirror%d: %lld device pages in use, %lld before\n", d,
				       after, before[d]);
			bad++;
		}
	}
	ksft_print_msg("%s: %d rounds, %lu ioctls failed%s\n", name, ROUNDS, failed,
		       before[0] < 0 ? ", device memory not checked (no stats in sysfs)" : "");
	ksft_test_result(!bad && (failed || !arm_flag), "%s\n", name);
}

static bool write_file(const char *dir, const char *file, const char *val)
{
	char path[128];
	int fd, len = strlen(val);
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	ok = write(fd, val, len) == len;
	close(fd);
	return ok;
}

/* Fail 1 in 10 of this task's allocations of the kind @dir controls. */
static void debugfs_case(const char *name, const char *dir)
{
	if (access(dir, F_OK)) {
		/* Only the debug kernel (configs/debug.config) has them. */
		ksft_test_result_skip("%s: no %s (CONFIG_FAULT_INJECTION_DEBUG_FS)\n", name, dir);
		return;
	}
	make_it_fail = open("/proc/self/make-it-fail", O_WRONLY);
	if (make_it_fail < 0 || !write_file(dir, "task-filter", "Y") ||
	    !write_file(dir, "probability", "10") || !write_file(dir, "interval", "1") ||
	    !write_file(dir, "times", "-1") || !write_file(dir, "verbose", "0")) {
		ksft_test_result_fail("%s: cannot set up %s: %s\n", name, dir, strerror(errno));
		return;
	}
	/* Page allocations that may sleep are failed too. */
	write_file(dir, "ignore-gfp-wait", "N");
	write_file(dir, "ignore-gfp-highmem", "N");
	run_case(name, false);
	write_file(dir, "probability", "0");
	close(make_it_fail);
	make_it_fail = -1;
}

int main(void)
{
	struct hmm_dmirror_cmd cmd = { 0 };
	int fd;

	ksft_print_header();
	fd = open("/dev/hmm_dmirror0", O_RDWR);
	if (fd < 0)
		ksft_exit_skip("/dev/hmm_dmirror0: %s (is CONFIG_TEST_HMM on?)\n", strerror(errno));
	ksft_set_plan(3);

	if (ioctl(fd, HMM_DMIRROR_FLAGS, &cmd))
		ksft_test_result_skip("fail-alloc flag: HMM_DMIRROR_FLAGS: %s\n", strerror(errno));
	else
		run_case("fail-alloc flag", true);
	close(fd);
	debugfs_case("failslab", "/sys/kernel/debug/failslab");
	debugfs_case("fail_page_alloc", "/sys/kernel/debug/fail_page_alloc");
	ksft_finished();
}
