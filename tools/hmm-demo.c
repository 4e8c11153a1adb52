// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-demo: the short tour `make run` shows. It drives the dmirror test
 * device through its ioctls and narrates what HMM did: which pages the device
 * mirrored, which device faults that took, what migrated to device memory and
 * back, and whether every byte survived, then the counters each device keeps
 * in sysfs. Exit status 0 only if every check held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <lib/test_hmm_uapi.h>

#define NPAGES 64
/* The bits of a snapshot byte that say what kind of page it is. */
#define KIND 0xf0

static long page_size;
static int failures;
static int section = 3;

/* The per-device counters under /sys/dev/char/<major>:<minor>/stats/. */
static const char *const stat_names[] = {
	"dev_pages_total", "dev_pages_in_use", "migrated_to_dev", "migrated_to_sys",
	"cpu_faults", "device_faults", "alloc_failures",
};
#define NSTATS (sizeof(stat_names) / sizeof(stat_names[0]))
enum { TOTAL, IN_USE, TO_DEV, TO_SYS, CPU_FAULTS, DEV_FAULTS, ALLOC_FAIL };

struct stats {
	long long v[NSTATS];
	int ok;
};

static void check(int ok, const char *what)
{
	printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
	if (!ok)
		failures++;
}

/* One ioctl on the mirror; returns 0 or -errno and fills *cmd. */
static int dmirror(int fd, unsigned long req, void *addr, void *buf,
		   unsigned long npages, struct hmm_dmirror_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->addr = (uintptr_t)addr;
	cmd->ptr = (uintptr_t)buf;
	cmd->npages = npages;
	return ioctl(fd, req, cmd) ? -errno : 0;
}

static void fill(uint32_t *p, unsigned long n, uint32_t seed)
{
	for (unsigned long i = 0; i < n; i++)
		p[i] = seed + i;
}

static int same(const uint32_t *p, unsigned long n, uint32_t seed)
{
	for (unsigned long i = 0; i < n; i++)
		if (p[i] != seed + i)
			return 0;
	return 1;
}

static const char *prot_name(unsigned char prot)
{
	if (prot == HMM_DMIRROR_PROT_ERROR)
		return "error";
	switch (prot & KIND) {
	case 0:
		return prot & HMM_DMIRROR_PROT_WRITE ? "read-write" :
		       prot & HMM_DMIRROR_PROT_READ ? "read-only" : "not mapped";
	case HMM_DMIRROR_PROT_ZERO: return "the shared zero page";
	case HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: return "device-private (this device)";
	case HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: return "device-private (other device)";
	case HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL: return "device-coherent (this device)";
	case HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE: return "device-coherent (other device)";
	}
	return "unknown";
}

/* Print the snapshot as runs of equal protection; return the first value. */
static unsigned char show_snapshot(int fd, void *addr, unsigned long npages)
{
	unsigned char prot[NPAGES];
	struct hmm_dmirror_cmd cmd;
	unsigned long i, start = 0;
	int ret = dmirror(fd, HMM_DMIRROR_SNAPSHOT, addr, prot, npages, &cmd);

	if (ret) {
		printf("  snapshot failed: %s\n", strerror(-ret));
		failures++;
		return HMM_DMIRROR_PROT_ERROR;
	}
	for (i = 1; i <= npages; i++) {
		if (i < npages && prot[i] == prot[start])
			continue;
		printf("    pages %2lu-%2lu: %s%s\n", start, i - 1, prot_name(prot[start]),
		       prot[start] & HMM_DMIRROR_PROT_PMD ? ", PMD mapping" : "");
		start = i;
	}
	return prot[0];
}

/* Read the counters of the device behind @fd; st->ok says whether it could. */
static void read_stats(int fd, struct stats *st)
{
	struct stat sb;
	char path[128];
	unsigned int i;

	st->ok = 0;
	if (fstat(fd, &sb) || !S_ISCHR(sb.st_mode))
		return;
	for (i = 0; i < NSTATS; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/stats/%s",
			 major(sb.st_rdev), minor(sb.st_rdev), stat_names[i]);
		f = fopen(path, "r");
		if (!f)
			return;
		if (fscanf(f, "%lld", &st->v[i]) != 1) {
			fclose(f);
			return;
		}
		fclose(f);
	}
	st->ok = 1;
}

static void show_stats(const char *name, const struct stats *before,
		       const struct stats *after)
{
	unsigned int i;

	printf("  %s:\n", name);
	if (!before->ok || !after->ok) {
		printf("    (no stats/ folder in sysfs for this device)\n");
		failures++;
		return;
	}
	for (i = 0; i < NSTATS; i++)
		printf("    %-17s %8lld  (%+lld during the demo)\n", stat_names[i],
		       after->v[i], after->v[i] - before->v[i]);
}

static long long delta(const struct stats *before, const struct stats *after, int i)
{
	return after->v[i] - before->v[i];
}

static int open_dev(int n)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", n);
	return open(path, O_RDWR);
}

static void demo_migration(int fd, const char *kind, unsigned char local)
{
	unsigned long size = NPAGES * page_size, words = size / 4;
	struct hmm_dmirror_cmd cmd;
	uint32_t *buf = malloc(size);
	uint32_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char line[160];
	int ret;

	printf("\n%d. Migration to %s memory and back\n", section++, kind);
	fill(mem, words, 0xc0de0000);
	ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem, buf, NPAGES, &cmd);
	snprintf(line, sizeof(line), "migrate %d pages to %s memory: %s, %llu migrated",
		 NPAGES, kind, ret ? strerror(-ret) : "done", (unsigned long long)cmd.cpages);
	check(!ret && cmd.cpages == NPAGES, line);
	printf("  the device's view now:\n");
	check((show_snapshot(fd, mem, NPAGES) & KIND) == local, "snapshot reports the pages in this device's memory");
	ret = dmirror(fd, HMM_DMIRROR_READ, mem, buf, NPAGES, &cmd);
	check(!ret && same(buf, words, 0xc0de0000), "device reads its own memory: contents intact");
	check(same(mem, words, 0xc0de0000),
	      local == HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL ?
	      "CPU reads the range: migrate_to_ram() brought every page back, contents intact" :
	      "CPU reads coherent device memory in place, contents intact");
	printf("  after the CPU access:\n");
	show_snapshot(fd, mem, NPAGES);

	ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, mem, buf, NPAGES, &cmd);
	check(!ret && cmd.cpages == NPAGES, "migrate to the device again");
	ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_SYS, mem, buf, NPAGES, &cmd);
	snprintf(line, sizeof(line), "explicit migration back to system memory: %llu pages",
		 (unsigned long long)cmd.cpages);
	check(!ret && cmd.cpages == NPAGES, line);
	check(same(mem, words, 0xc0de0000), "contents intact after the round trip");
	munmap(mem, size);
	free(buf);
}

int main(void)
{
	struct stats before0, after0, before2 = { .ok = 0 }, after2;
	struct hmm_dmirror_cmd cmd;
	unsigned long size, words;
	uint32_t *mem, *buf;
	char line[160];
	int fd, fd2, ret;

	page_size = sysconf(_SC_PAGESIZE);
	size = NPAGES * page_size;
	words = size / 4;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("HMM demonstration on the dmirror test device (lib/test_hmm.c)\n");
	fd = open_dev(0);
	if (fd < 0) {
		printf("cannot open /dev/hmm_dmirror0: %s (is CONFIG_TEST_HMM enabled?)\n",
		       strerror(errno));
		return 1;
	}
	buf = malloc(size);
	read_stats(fd, &before0);
	fd2 = open_dev(2);
	if (fd2 >= 0)
		read_stats(fd2, &before2);

	printf("\n1. Mirroring: the device reads a process's memory through hmm_range_fault()\n");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(mem, words, 0x1000);
	ret = dmirror(fd, HMM_DMIRROR_READ, mem, buf, NPAGES, &cmd);
	snprintf(line, sizeof(line), "device read %d populated pages (%llu device faults)",
		 NPAGES, (unsigned long long)cmd.faults);
	check(!ret && same(buf, words, 0x1000), line);
	printf("  the device's page table for the range:\n");
	check(show_snapshot(fd, mem, NPAGES) & HMM_DMIRROR_PROT_WRITE,
	      "snapshot reports writable pages");
	munmap(mem, size);

	printf("\n2. Device faults: the device writes to memory the CPU never touched\n");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("  before, the device sees:\n");
	show_snapshot(fd, mem, NPAGES);
	fill(buf, words, 0x2000);
	ret = dmirror(fd, HMM_DMIRROR_WRITE, mem, buf, NPAGES, &cmd);
	snprintf(line, sizeof(line), "device write faulted the range in (%llu device faults)",
		 (unsigned long long)cmd.faults);
	check(!ret && cmd.faults > 0, line);
	check(same(mem, words, 0x2000), "CPU sees what the device wrote");
	munmap(mem, size);

	demo_migration(fd, "device-private", HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL);
	if (fd2 >= 0) {
		demo_migration(fd2, "device-coherent", HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL);
	} else {
		printf("\n(no coherent device: boot with test_hmm.spm_addr_dev0/1 to see it)\n");
	}

	printf("\n%d. Exclusive access for device atomics\n", section++);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill(mem, words, 0x4000);
	ret = dmirror(fd, HMM_DMIRROR_EXCLUSIVE, mem, buf, NPAGES, &cmd);
	check(!ret && cmd.cpages == NPAGES, "device took exclusive access to every page");
	check(same(buf, words, 0x4000), "device read the range while taking it");
	ret = dmirror(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, mem, buf, NPAGES, &cmd);
	check(ret == -EPERM, "CHECK_EXCLUSIVE: the device still holds it (EPERM)");
	for (unsigned long i = 0; i < words; i += page_size / 4)
		((volatile uint32_t *)mem)[i] = mem[i];
	ret = dmirror(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, mem, buf, NPAGES, &cmd);
	check(!ret, "CPU writes revoked it on every page (CHECK_EXCLUSIVE succeeds)");
	check(same(mem, words, 0x4000), "data intact");
	munmap(mem, size);

	printf("\n%d. Device counters (sysfs: /sys/dev/char/<major>:<minor>/stats/)\n", section++);
	read_stats(fd, &after0);
	show_stats("hmm_dmirror0 (device private)", &before0, &after0);
	if (after0.ok) {
		check(delta(&before0, &after0, TO_DEV) == 2 * NPAGES,
		      "hmm_dmirror0 counted both migrations into its memory");
		check(delta(&before0, &after0, CPU_FAULTS) == NPAGES &&
		      delta(&before0, &after0, TO_SYS) == 2 * NPAGES,
		      "one CPU fault per page brought back, plus the explicit migration");
		check(after0.v[IN_USE] == before0.v[IN_USE],
		      "every device page it handed out was freed again");
	}
	if (fd2 >= 0) {
		read_stats(fd2, &after2);
		show_stats("hmm_dmirror2 (device coherent)", &before2, &after2);
		if (after2.ok) {
			check(delta(&before2, &after2, CPU_FAULTS) == 0,
			      "the CPU used coherent memory in place, without faults");
			check(after2.v[IN_USE] == before2.v[IN_USE],
			      "every coherent page it handed out was freed again");
		}
		close(fd2);
	}

	close(fd);
	free(buf);
	printf("\nHMM demo: %s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
	return failures ? 1 : 0;
}
