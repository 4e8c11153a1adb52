// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KUnit cases for the mirror core, hmm_range_fault().
 *
 * Each case builds one page-table state in an address space of its own
 * (kunit_vm_mmap() gives the test thread an mm), mirrors it through an
 * interval notifier like a driver would, and checks what the walk reports.
 */

#include <kunit/test.h>
#include <linux/anon_inodes.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mmu_notifier.h>
#include <linux/workqueue.h>

#define HK_REQ_READ	HMM_PFN_REQ_FAULT
#define HK_REQ_WRITE	(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)
#define HK_OUT_FLAGS	(HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR)

/* A mirror of part of the test thread's address space. */
struct hk_mirror {
	struct mmu_interval_notifier notifier;
	struct mm_struct *mm;
	void *owner;		/* dev_private_owner of the walks */
	unsigned int invalidations;
};

static bool hk_invalidate(struct mmu_interval_notifier *notifier,
			  const struct mmu_notifier_range *range,
			  unsigned long cur_seq)
{
	struct hk_mirror *m = container_of(notifier, struct hk_mirror, notifier);

	/* Nothing to tear down: the test reads results right after the walk. */
	mmu_interval_set_seq(notifier, cur_seq);
	m->invalidations++;
	return true;
}

static const struct mmu_interval_notifier_ops hk_mirror_ops = {
	.invalidate = hk_invalidate,
};

static void hk_mirror_remove(void *data)
{
	mmu_interval_notifier_remove(data);
}

/* Mirror [@start, @start + @len) of current->mm until the case ends. */
static struct hk_mirror *hk_mirror(struct kunit *test, unsigned long start,
				   unsigned long len)
{
	struct hk_mirror *m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, m);
	m->mm = current->mm;
	m->owner = m;
	ret = mmu_interval_notifier_insert(&m->notifier, m->mm, start, len,
					   &hk_mirror_ops);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ret = kunit_add_action_or_reset(test, hk_mirror_remove, &m->notifier);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return m;
}

/* Map @npages of anonymous memory (or of @file) into the test's mm. */
static unsigned long hk_mmap(struct kunit *test, struct file *file,
			     unsigned long npages, unsigned long prot,
			     unsigned long flags)
{
	unsigned long addr;

	if (!file)
		flags |= MAP_ANONYMOUS;
	addr = kunit_vm_mmap(test, file, 0, npages << PAGE_SHIFT, prot, flags, 0);
	KUNIT_ASSERT_TRUE_MSG(test, addr && !IS_ERR_VALUE(addr),
			      "vm_mmap() failed: %ld", (long)addr);
	return addr;
}

static unsigned long *hk_pfns(struct kunit *test, unsigned long npages,
			      unsigned long fill)
{
	unsigned long *pfns = kunit_kmalloc_array(test, npages, sizeof(*pfns),
						  GFP_KERNEL);
	unsigned long i;

	KUNIT_ASSERT_NOT_NULL(test, pfns);
	for (i = 0; i < npages; i++)
		pfns[i] = fill;
	return pfns;
}

/* One call of hmm_range_fault(), as a driver makes it; no retry. */
static int hk_walk_once(struct hk_mirror *m, unsigned long start,
			unsigned long npages, unsigned long default_flags,
			unsigned long mask, unsigned long *pfns)
{
	struct hmm_range range = {
		.notifier = &m->notifier,
		.start = start,
		.end = start + (npages << PAGE_SHIFT),
		.hmm_pfns = pfns,
		.default_flags = default_flags,
		.pfn_flags_mask = mask,
		.dev_private_owner = m->owner,
	};
	int ret;

	range.notifier_seq = mmu_interval_read_begin(&m->notifier);
	mmap_read_lock(m->mm);
	ret = hmm_range_fault(&range);
	mmap_read_unlock(m->mm);
	if (!ret && mmu_interval_read_retry(&m->notifier, range.notifier_seq))
		ret = -EBUSY;
	return ret;
}

/*
 * The driver loop: retry while the walk reports -EBUSY. Faults done by the
 * walk may invalidate the range (copy on write), so a few rounds are normal.
 */
static int hk_walk(struct hk_mirror *m, unsigned long start,
		   unsigned long npages, unsigned long default_flags,
		   unsigned long *pfns)
{
	int tries, ret = -EBUSY;

	for (tries = 0; tries < 8 && ret == -EBUSY; tries++)
		ret = hk_walk_once(m, start, npages, default_flags, 0, pfns);
	return ret;
}

/* The page the CPU maps at @addr, taken from GUP as an independent opinion. */
static unsigned long hk_gup_pfn(struct kunit *test, unsigned long addr)
{
	struct page *page;
	unsigned long pfn;
	long got;

	mmap_read_lock(current->mm);
	got = get_user_pages(addr, 1, 0, &page);
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_EQ(test, got, 1);
	pfn = page_to_pfn(page);
	put_page(page);
	return pfn;
}

static void hk_write_byte(struct kunit *test, unsigned long addr)
{
	char c = 1;

	KUNIT_ASSERT_EQ(test, 0UL,
			copy_to_user((void __user *)addr, &c, sizeof(c)));
}

/* Encoding: every order round-trips with every flag combination. */
static const unsigned int hk_orders[] = { 0, 1, PMD_SHIFT - PAGE_SHIFT,
					  PUD_SHIFT - PAGE_SHIFT, 31 };

static void hk_order_desc(const unsigned int *order, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "order %u", *order);
}

KUNIT_ARRAY_PARAM(hk_order, hk_orders, hk_order_desc);

static void hmm_pfn_encoding_round_trips(struct kunit *test)
{
	unsigned int order = *(const unsigned int *)test->param_value;
	struct page *page = alloc_page(GFP_KERNEL);
	unsigned long pfn, flags, entry;

	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	for (flags = 0; flags <= HK_OUT_FLAGS;
	     flags += HMM_PFN_ERROR) {
		entry = pfn | (flags & HK_OUT_FLAGS) |
			((unsigned long)(order & 0x1F) << HMM_PFN_ORDER_SHIFT);
		KUNIT_EXPECT_PTR_EQ(test, hmm_pfn_to_page(entry), page);
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_phys(entry), PFN_PHYS(pfn));
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(entry), order & 0x1F);
		KUNIT_EXPECT_EQ(test, entry & ~HMM_PFN_FLAGS, pfn);
		if (flags == HK_OUT_FLAGS)
			break;
	}
	__free_page(page);
}

/* Bit positions are ABI shared with every driver: pin them down. */
static void hmm_pfn_flags_keep_their_bits(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_VALID, BIT(BITS_PER_LONG - 1));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_WRITE, BIT(BITS_PER_LONG - 2));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_ERROR, BIT(BITS_PER_LONG - 3));
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_ORDER_SHIFT, BITS_PER_LONG - 8UL);
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_REQ_FAULT,
			(unsigned long)HMM_PFN_VALID);
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_REQ_WRITE,
			(unsigned long)HMM_PFN_WRITE);
	KUNIT_EXPECT_EQ(test, (unsigned long)HMM_PFN_FLAGS,
			0xFFUL << (BITS_PER_LONG - 8));
}

/* Untouched anonymous memory reads as "not present, faultable". */
static void hmm_snapshot_of_untouched_memory_is_empty(struct kunit *test)
{
	const unsigned long n = 8;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned long i;

	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, 0, pfns));
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, pfns[i], 0UL);
}

/* A read fault on anonymous memory maps the zero page, read-only. */
static void hmm_read_fault_maps_zero_page_read_only(struct kunit *test)
{
	const unsigned long n = 4;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned long i;

	if (mm_forbids_zeropage(current->mm))
		kunit_skip(test, "this mm has no zero page");
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_READ, pfns));
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ(test, pfns[i] & HK_OUT_FLAGS, (unsigned long)HMM_PFN_VALID);
		KUNIT_EXPECT_TRUE(test, is_zero_pfn(pfns[i] & ~HMM_PFN_FLAGS));
		KUNIT_EXPECT_EQ(test, hmm_pfn_to_map_order(pfns[i]), 0U);
	}
}

/* A write request faults in private, writable pages: the ones GUP sees. */
static void hmm_write_fault_maps_writable_pages(struct kunit *test)
{
	const unsigned long n = 4;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned long i;

	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_WRITE, pfns));
	for (i = 0; i < n; i++) {
		unsigned long va = addr + (i << PAGE_SHIFT);

		KUNIT_EXPECT_EQ(test, pfns[i] & HK_OUT_FLAGS,
				(unsigned long)(HMM_PFN_VALID | HMM_PFN_WRITE));
		KUNIT_EXPECT_EQ(test, pfns[i] & ~HMM_PFN_FLAGS, hk_gup_pfn(test, va));
	}
}

/* Per-page requests through pfn_flags_mask: only the odd pages are faulted. */
static void hmm_per_page_requests_fault_only_what_is_asked(struct kunit *test)
{
	const unsigned long n = 8;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned long i;
	int ret, tries = 0;

	do {
		for (i = 0; i < n; i++)
			pfns[i] = (i & 1) ? HK_REQ_WRITE : 0;
		ret = hk_walk_once(m, addr, n, 0, HK_REQ_WRITE, pfns);
	} while (ret == -EBUSY && ++tries < 8);
	KUNIT_ASSERT_EQ(test, ret, 0);
	for (i = 0; i < n; i++)
		KUNIT_EXPECT_EQ(test, pfns[i] & HK_OUT_FLAGS,
				(i & 1) ? (unsigned long)(HMM_PFN_VALID | HMM_PFN_WRITE) : 0UL);

	/* The untouched pages are still untouched. */
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, 0, pfns));
	for (i = 0; i < n; i += 2)
		KUNIT_EXPECT_EQ(test, pfns[i], 0UL);
}

/* Asking for write access where the VMA forbids it fails with -EPERM. */
static void hmm_write_request_in_read_only_vma_is_eperm(struct kunit *test)
{
	const unsigned long n = 2;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);

	KUNIT_EXPECT_EQ(test, -EPERM, hk_walk(m, addr, n, HK_REQ_WRITE, pfns));
	KUNIT_EXPECT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_READ, pfns));
	KUNIT_EXPECT_EQ(test, pfns[0] & HK_OUT_FLAGS, (unsigned long)HMM_PFN_VALID);
}

/* Areas that cannot be mirrored: the VMA states behind HMM_PFN_ERROR. */
enum hk_unusable { HK_NO_VMA, HK_PROT_NONE, HK_VM_IO, HK_VM_PFNMAP };

static const enum hk_unusable hk_unusables[] = {
	HK_NO_VMA, HK_PROT_NONE, HK_VM_IO, HK_VM_PFNMAP,
};

static void hk_unusable_desc(const enum hk_unusable *u, char *desc)
{
	static const char * const names[] = {
		"hole without a VMA", "PROT_NONE VMA", "VM_IO VMA", "VM_PFNMAP VMA",
	};

	strscpy(desc, names[*u], KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(hk_unusable, hk_unusables, hk_unusable_desc);

static void hk_set_vma_flags(unsigned long addr, vm_flags_t set, vm_flags_t clear)
{
	struct vm_area_struct *vma;

	mmap_write_lock(current->mm);
	vma = vma_lookup(current->mm, addr);
	if (vma)
		vm_flags_mod(vma, set, clear);
	mmap_write_unlock(current->mm);
}

static void hmm_unusable_area_is_error_or_efault(struct kunit *test)
{
	enum hk_unusable kind = *(const enum hk_unusable *)test->param_value;
	const unsigned long n = 3;
	unsigned long prot = kind == HK_PROT_NONE ? PROT_NONE : PROT_READ | PROT_WRITE;
	unsigned long addr = hk_mmap(test, NULL, n, prot, MAP_PRIVATE);
	unsigned long mid = addr + PAGE_SIZE;
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	vm_flags_t flags = kind == HK_VM_IO ? VM_IO : VM_PFNMAP;

	/* Only the middle page is unusable; its neighbours are populated. */
	if (kind != HK_PROT_NONE) {
		hk_write_byte(test, addr);
		hk_write_byte(test, addr + 2 * PAGE_SIZE);
	}
	if (kind == HK_NO_VMA)
		KUNIT_ASSERT_EQ(test, 0, vm_munmap(mid, PAGE_SIZE));
	if (kind == HK_VM_IO || kind == HK_VM_PFNMAP) {
		/* Split the VMA so that only the middle page has the flag. */
		KUNIT_ASSERT_EQ(test, 0, do_madvise(current->mm, mid, PAGE_SIZE,
						    MADV_DONTFORK));
		hk_set_vma_flags(mid, flags, 0);
	}

	KUNIT_EXPECT_EQ(test, 0, hk_walk(m, addr, n, 0, pfns));
	KUNIT_EXPECT_EQ(test, pfns[1], (unsigned long)HMM_PFN_ERROR);
	if (kind != HK_PROT_NONE) {
		KUNIT_EXPECT_TRUE(test, pfns[0] & HMM_PFN_VALID);
		KUNIT_EXPECT_TRUE(test, pfns[2] & HMM_PFN_VALID);
	} else {
		KUNIT_EXPECT_EQ(test, pfns[0], (unsigned long)HMM_PFN_ERROR);
	}
	KUNIT_EXPECT_EQ(test, -EFAULT, hk_walk(m, mid, 1, HK_REQ_READ, pfns));

	if (kind == HK_VM_IO || kind == HK_VM_PFNMAP)
		hk_set_vma_flags(mid, 0, flags);
}

/* One range over several VMAs and a hole: each page gets its VMA's answer. */
static void hmm_range_spanning_many_vmas(struct kunit *test)
{
	static const unsigned long prots[] = {
		PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE, PROT_READ | PROT_WRITE,
	};
	const unsigned long n = ARRAY_SIZE(prots) * 2 + 2;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned long i, va, got;

	/* Pages 0-1 RW, 2-3 R, 4-5 NONE, 6-7 RW, then a two-page hole. */
	for (i = 0; i < ARRAY_SIZE(prots); i++) {
		va = addr + (2 * i << PAGE_SHIFT);
		got = kunit_vm_mmap(test, NULL, va, 2 * PAGE_SIZE, prots[i],
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
		KUNIT_ASSERT_EQ(test, got, va);
		if (prots[i] & PROT_WRITE) {
			hk_write_byte(test, va);
			hk_write_byte(test, va + PAGE_SIZE);
		} else if (prots[i] & PROT_READ) {
			KUNIT_ASSERT_EQ(test, 0, hk_walk(m, va, 2, HK_REQ_READ, pfns));
		}
	}
	KUNIT_ASSERT_EQ(test, 0, vm_munmap(addr + (8 << PAGE_SHIFT), 2 * PAGE_SIZE));

	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, 0, pfns));
	for (i = 0; i < n; i++) {
		unsigned long want;

		if (i >= 8 || prots[i / 2] == PROT_NONE)
			want = HMM_PFN_ERROR;
		else if (prots[i / 2] & PROT_WRITE)
			want = HMM_PFN_VALID | HMM_PFN_WRITE;
		else
			want = HMM_PFN_VALID;
		KUNIT_EXPECT_EQ_MSG(test, pfns[i] & HK_OUT_FLAGS, want, "page %lu", i);
	}
	/* A fault request anywhere in the hole fails the whole call. */
	KUNIT_EXPECT_EQ(test, -EFAULT, hk_walk(m, addr, n, HK_REQ_READ, pfns));
}

/* An invalidation between read_begin and the walk: -EBUSY, nothing walked. */
static void hmm_invalidated_range_returns_ebusy(struct kunit *test)
{
	const unsigned long n = 4;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	struct hmm_range range = {
		.notifier = &m->notifier,
		.start = addr,
		.end = addr + (n << PAGE_SHIFT),
		.hmm_pfns = hk_pfns(test, n, 0),
	};
	int ret;

	hk_write_byte(test, addr);
	range.notifier_seq = mmu_interval_read_begin(&m->notifier);
	KUNIT_ASSERT_EQ(test, 0, do_madvise(current->mm, addr, PAGE_SIZE,
					    MADV_DONTNEED));
	KUNIT_ASSERT_GT(test, m->invalidations, 0U);
	mmap_read_lock(current->mm);
	ret = hmm_range_fault(&range);
	mmap_read_unlock(current->mm);
	KUNIT_EXPECT_EQ(test, ret, -EBUSY);
}

/*
 * The walk's own write fault replaces the zero page (copy on write), which
 * invalidates the range: that call ends with -EBUSY, the next one succeeds.
 */
static void hmm_invalidation_during_the_walk_returns_ebusy(struct kunit *test)
{
	const unsigned long n = 2;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	unsigned int before;

	if (mm_forbids_zeropage(current->mm))
		kunit_skip(test, "this mm has no zero page");
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_READ, pfns));
	KUNIT_ASSERT_TRUE(test, is_zero_pfn(pfns[0] & ~HMM_PFN_FLAGS));
	before = m->invalidations;
	KUNIT_EXPECT_EQ(test, -EBUSY, hk_walk_once(m, addr, n, HK_REQ_WRITE, 0, pfns));
	KUNIT_EXPECT_GT(test, m->invalidations, before);
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_WRITE, pfns));
	KUNIT_EXPECT_EQ(test, pfns[0] & HK_OUT_FLAGS,
			(unsigned long)(HMM_PFN_VALID | HMM_PFN_WRITE));
	KUNIT_EXPECT_FALSE(test, is_zero_pfn(pfns[0] & ~HMM_PFN_FLAGS));
}

/*
 * A file whose fault handler counts faults per page and, when page
 * @zap_at faults, unmaps page 0 behind the walk's back (outside the
 * notifier's interval, so the walk is not told).
 */
#define HK_CONT_PAGES	8
#define HK_CONT_FIRST	4

struct hk_counter {
	unsigned int faults[HK_CONT_PAGES];
	pgoff_t zap_at;
};

static vm_fault_t hk_counter_fault(struct vm_fault *vmf)
{
	struct hk_counter *c = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff >= HK_CONT_PAGES)
		return VM_FAULT_SIGBUS;
	c->faults[vmf->pgoff]++;
	if (vmf->pgoff == c->zap_at)
		zap_page_range_single(vmf->vma, vmf->vma->vm_start, PAGE_SIZE, NULL);
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return VM_FAULT_OOM;
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct hk_counter_vm_ops = {
	.fault = hk_counter_fault,
};

static int hk_counter_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_ops = &hk_counter_vm_ops;
	return 0;
}

static const struct file_operations hk_counter_fops = {
	.mmap = hk_counter_mmap,
};

static void hmm_walk_continues_at_the_faulting_page(struct kunit *test)
{
	struct hk_counter *c = kunit_kzalloc(test, sizeof(*c), GFP_KERNEL);
	unsigned long *pfns = hk_pfns(test, HK_CONT_PAGES, 0);
	unsigned long addr, first, i;
	struct hk_mirror *m;
	struct file *file;

	KUNIT_ASSERT_NOT_NULL(test, c);
	c->zap_at = ULONG_MAX;
	file = anon_inode_getfile("hmm-kunit", &hk_counter_fops, c, O_RDWR);
	KUNIT_ASSERT_FALSE(test, IS_ERR(file));
	addr = kunit_vm_mmap(test, file, 0, HK_CONT_PAGES << PAGE_SHIFT,
			     PROT_READ, MAP_SHARED, 0);
	fput(file);
	KUNIT_ASSERT_TRUE(test, addr && !IS_ERR_VALUE(addr));
	m = hk_mirror(test, addr + (HK_CONT_FIRST << PAGE_SHIFT),
		      (HK_CONT_PAGES - HK_CONT_FIRST) << PAGE_SHIFT);

	/* Pages before HK_CONT_FIRST are present, the rest are not. */
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, HK_CONT_FIRST, HK_REQ_READ, pfns));
	first = pfns[0];
	KUNIT_ASSERT_TRUE(test, first & HMM_PFN_VALID);

	c->zap_at = HK_CONT_FIRST;
	KUNIT_ASSERT_EQ(test, 0, hk_walk_once(m, addr, HK_CONT_PAGES, HK_REQ_READ,
					      0, pfns));
	/* Page 0 was reported before the fault and never walked again. */
	KUNIT_EXPECT_EQ(test, pfns[0], first);
	for (i = 0; i < HK_CONT_PAGES; i++) {
		KUNIT_EXPECT_EQ_MSG(test, c->faults[i], 1U, "page %lu", i);
		KUNIT_EXPECT_TRUE_MSG(test, pfns[i] & HMM_PFN_VALID, "page %lu", i);
	}
}

/* Anonymous THP: every page reports the PMD order and its own PFN. */
static void hmm_thp_is_reported_with_pmd_order(struct kunit *test)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	unsigned long addr = hk_mmap(test, NULL, 2 * nr, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned long start = ALIGN(addr, PMD_SIZE);
	unsigned long *pfns = hk_pfns(test, nr, 0);
	unsigned long i, pfn0;
	struct hk_mirror *m;

	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		kunit_skip(test, "CONFIG_TRANSPARENT_HUGEPAGE is off");
	KUNIT_ASSERT_EQ(test, 0, do_madvise(current->mm, start, PMD_SIZE, MADV_HUGEPAGE));
	m = hk_mirror(test, start, PMD_SIZE);
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, start, nr, HK_REQ_WRITE, pfns));
	if (hmm_pfn_to_map_order(pfns[0]) != PMD_SHIFT - PAGE_SHIFT)
		kunit_skip(test, "no huge page could be allocated");
	pfn0 = pfns[0] & ~HMM_PFN_FLAGS;
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(pfn0, nr));
	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i],
				    (pfn0 + i) | HMM_PFN_VALID | HMM_PFN_WRITE |
				    ((unsigned long)(PMD_SHIFT - PAGE_SHIFT) <<
				     HMM_PFN_ORDER_SHIFT),
				    "page %lu", i);

	/* A range that starts inside the huge page gets the right PFNs. */
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, start + 100 * PAGE_SIZE, 4, 0, pfns));
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_EQ(test, pfns[i] & ~HMM_PFN_FLAGS, pfn0 + 100 + i);
}

/* A read fault in a THP area maps the huge zero page, read-only. */
static void hmm_huge_zero_page_is_read_only(struct kunit *test)
{
	const unsigned long nr = PMD_SIZE >> PAGE_SHIFT;
	unsigned long addr = hk_mmap(test, NULL, 2 * nr, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	unsigned long start = ALIGN(addr, PMD_SIZE);
	unsigned long *pfns = hk_pfns(test, nr, 0);
	struct hk_mirror *m;

	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		kunit_skip(test, "CONFIG_TRANSPARENT_HUGEPAGE is off");
	KUNIT_ASSERT_EQ(test, 0, do_madvise(current->mm, start, PMD_SIZE, MADV_HUGEPAGE));
	m = hk_mirror(test, start, PMD_SIZE);
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, start, nr, HK_REQ_READ, pfns));
	if (hmm_pfn_to_map_order(pfns[0]) != PMD_SHIFT - PAGE_SHIFT)
		kunit_skip(test, "the huge zero page is not in use");
	KUNIT_EXPECT_EQ(test, pfns[0] & HK_OUT_FLAGS, (unsigned long)HMM_PFN_VALID);
	KUNIT_EXPECT_TRUE(test, is_huge_zero_folio(page_folio(hmm_pfn_to_page(pfns[0]))));
	KUNIT_EXPECT_EQ(test, pfns[nr - 1] & HK_OUT_FLAGS, (unsigned long)HMM_PFN_VALID);
}

/* hugetlbfs: faulted through the hugetlb entry, reported with its order. */
static void hmm_hugetlb_page_is_reported_with_its_order(struct kunit *test)
{
#ifdef CONFIG_HUGETLBFS
	struct hstate *h = &default_hstate;
	unsigned long nr = pages_per_huge_page(h);
	unsigned long *pfns = hk_pfns(test, nr, 0);
	unsigned long addr, i, pfn0;
	struct hk_mirror *m;
	struct file *file;

	file = hugetlb_file_setup("hmm-kunit", huge_page_size(h), 0,
				  HUGETLB_ANONHUGE_INODE, 0);
	if (IS_ERR(file))
		kunit_skip(test, "no hugetlbfs file: %ld", PTR_ERR(file));
	addr = kunit_vm_mmap(test, file, 0, huge_page_size(h),
			     PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	fput(file);
	if (!addr || IS_ERR_VALUE(addr))
		kunit_skip(test, "no huge pages reserved (hugepages=)");
	m = hk_mirror(test, addr, huge_page_size(h));
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, nr, HK_REQ_WRITE, pfns));
	pfn0 = pfns[0] & ~HMM_PFN_FLAGS;
	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ_MSG(test, pfns[i],
				    (pfn0 + i) | HMM_PFN_VALID | HMM_PFN_WRITE |
				    ((unsigned long)huge_page_order(h) << HMM_PFN_ORDER_SHIFT),
				    "page %lu", i);
#else
	kunit_skip(test, "CONFIG_HUGETLBFS is off");
#endif
}

/*
 * Device-private memory: a small pagemap of our own, with a page of the
 * test's memory migrated into it. Its owner sees the device page, any other
 * owner sees nothing, or the page migrated back when it asks for a fault.
 */
#define HK_DEV_SIZE	(2UL << 20)

struct hk_device {
	struct dev_pagemap pgmap;
	struct resource *res;
	unsigned long next_pfn;
	unsigned int to_ram;
};

static void hk_dev_page_free(struct page *page)
{
}

static vm_fault_t hk_dev_migrate_to_ram(struct vm_fault *vmf)
{
	struct hk_device *dev = container_of(vmf->page->pgmap, struct hk_device, pgmap);
	unsigned long src = 0, dst = 0;
	struct migrate_vma args = {
		.vma = vmf->vma,
		.start = vmf->address & PAGE_MASK,
		.end = (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src = &src,
		.dst = &dst,
		.pgmap_owner = dev,
		.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page = vmf->page,
	};
	struct page *page;

	if (migrate_vma_setup(&args))
		return VM_FAULT_SIGBUS;
	if (src & MIGRATE_PFN_MIGRATE) {
		page = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vmf->vma, vmf->address);
		if (page) {
			lock_page(page);
			dst = migrate_pfn(page_to_pfn(page));
		}
	}
	migrate_vma_pages(&args);
	migrate_vma_finalize(&args);
	dev->to_ram++;
	return 0;
}

static const struct dev_pagemap_ops hk_dev_ops = {
	.page_free = hk_dev_page_free,
	.migrate_to_ram = hk_dev_migrate_to_ram,
};

static void hk_dev_remove(void *data)
{
	struct hk_device *dev = data;

	memunmap_pages(&dev->pgmap);
	release_mem_region(dev->res->start, resource_size(dev->res));
}

static struct hk_device *hk_device(struct kunit *test)
{
	struct hk_device *dev = kunit_kzalloc(test, sizeof(*dev), GFP_KERNEL);
	void *addr;

	KUNIT_ASSERT_NOT_NULL(test, dev);
	dev->res = request_free_mem_region(&iomem_resource, HK_DEV_SIZE, "hmm-kunit");
	if (IS_ERR(dev->res))
		kunit_skip(test, "no free physical range: %ld", PTR_ERR(dev->res));
	dev->pgmap.type = MEMORY_DEVICE_PRIVATE;
	dev->pgmap.range.start = dev->res->start;
	dev->pgmap.range.end = dev->res->end;
	dev->pgmap.nr_range = 1;
	dev->pgmap.ops = &hk_dev_ops;
	dev->pgmap.owner = dev;
	addr = memremap_pages(&dev->pgmap, numa_node_id());
	if (IS_ERR(addr)) {
		release_mem_region(dev->res->start, resource_size(dev->res));
		kunit_skip(test, "memremap_pages() failed: %ld", PTR_ERR(addr));
	}
	dev->next_pfn = PHYS_PFN(dev->res->start);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, hk_dev_remove, dev));
	return dev;
}

/* Migrate the page at @addr into @dev; return the device PFN. */
static unsigned long hk_dev_migrate(struct kunit *test, struct hk_device *dev,
				    unsigned long addr)
{
	unsigned long src = 0, dst = 0, pfn = dev->next_pfn++;
	struct migrate_vma args = {
		.start = addr,
		.end = addr + PAGE_SIZE,
		.src = &src,
		.dst = &dst,
		.pgmap_owner = dev,
		.flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	int ret;

	mmap_read_lock(current->mm);
	args.vma = vma_lookup(current->mm, addr);
	ret = args.vma ? migrate_vma_setup(&args) : -EINVAL;
	if (!ret) {
		if (src & MIGRATE_PFN_MIGRATE) {
			zone_device_page_init(pfn_to_page(pfn));
			dst = migrate_pfn(pfn) | MIGRATE_PFN_WRITE;
		}
		migrate_vma_pages(&args);
		migrate_vma_finalize(&args);
	}
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_EQ(test, ret, 0);
	KUNIT_ASSERT_TRUE_MSG(test, src & MIGRATE_PFN_MIGRATE, "page not migrated");
	return pfn;
}

static void hmm_device_private_page_depends_on_owner(struct kunit *test)
{
	const unsigned long n = 2;
	unsigned long addr = hk_mmap(test, NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, n << PAGE_SHIFT);
	unsigned long *pfns = hk_pfns(test, n, 0);
	struct hk_device *dev = hk_device(test);
	unsigned long dpfn;

	hk_write_byte(test, addr);
	hk_write_byte(test, addr + PAGE_SIZE);
	dpfn = hk_dev_migrate(test, dev, addr);

	/* The mirror is not the device's owner (yet). */
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, 0, pfns));
	KUNIT_EXPECT_EQ(test, pfns[0], 0UL);
	KUNIT_EXPECT_EQ(test, pfns[1] & HK_OUT_FLAGS,
			(unsigned long)(HMM_PFN_VALID | HMM_PFN_WRITE));

	/* The owner gets the device page as it is, writable. */
	m->owner = dev;
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_READ, pfns));
	m->owner = m;
	KUNIT_EXPECT_EQ(test, pfns[0], dpfn | HMM_PFN_VALID | HMM_PFN_WRITE);
	KUNIT_EXPECT_EQ(test, dev->to_ram, 0U);

	/* Anyone else asking for a fault brings it back to system memory. */
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, n, HK_REQ_READ, pfns));
	KUNIT_EXPECT_EQ(test, dev->to_ram, 1U);
	KUNIT_EXPECT_TRUE(test, pfns[0] & HMM_PFN_VALID);
	KUNIT_EXPECT_NE(test, pfns[0] & ~HMM_PFN_FLAGS, dpfn);
	KUNIT_EXPECT_FALSE(test, is_device_private_page(hmm_pfn_to_page(pfns[0])));

	/* Drop every device page before the pagemap goes away. */
	KUNIT_EXPECT_EQ(test, 0, vm_munmap(addr, n << PAGE_SHIFT));
}

/*
 * A migration left half done: migrate_vma_setup() has put a migration entry
 * in the PTE, and a work item finishes the migration (aborting it, so the
 * original page comes back) once the test lets it go, a little later.
 */
struct hk_migration {
	struct migrate_vma args;
	unsigned long src, dst;
	struct work_struct work;
	struct completion go;
	bool done;
};

static void hk_migration_finish(struct work_struct *work)
{
	struct hk_migration *mig = container_of(work, struct hk_migration, work);

	wait_for_completion(&mig->go);
	/* Give the fault request below time to find the migration entry. */
	msleep(100);
	mig->dst = 0;
	migrate_vma_pages(&mig->args);
	migrate_vma_finalize(&mig->args);
	WRITE_ONCE(mig->done, true);
}

static void hmm_walk_waits_for_a_migration_entry(struct kunit *test)
{
	unsigned long addr = hk_mmap(test, NULL, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	struct hk_mirror *m = hk_mirror(test, addr, PAGE_SIZE);
	struct hk_migration *mig = kunit_kzalloc(test, sizeof(*mig), GFP_KERNEL);
	unsigned long *pfns = hk_pfns(test, 1, 0);
	unsigned long before;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, mig);
	hk_write_byte(test, addr);
	KUNIT_ASSERT_EQ(test, 0, hk_walk(m, addr, 1, 0, pfns));
	before = pfns[0];

	mig->args = (struct migrate_vma) {
		.start = addr,
		.end = addr + PAGE_SIZE,
		.src = &mig->src,
		.dst = &mig->dst,
		.pgmap_owner = m,
		.flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	INIT_WORK(&mig->work, hk_migration_finish);
	init_completion(&mig->go);
	mmap_read_lock(current->mm);
	mig->args.vma = vma_lookup(current->mm, addr);
	ret = migrate_vma_setup(&mig->args);
	mmap_read_unlock(current->mm);
	KUNIT_ASSERT_EQ(test, ret, 0);
	schedule_work(&mig->work);
	if (!(mig->src & MIGRATE_PFN_MIGRATE)) {
		complete(&mig->go);
		flush_work(&mig->work);
		kunit_skip(test, "the page could not be isolated for migration");
	}

	/* A snapshot reads the migration entry as not present... */
	KUNIT_EXPECT_EQ(test, 0, hk_walk(m, addr, 1, 0, pfns));
	KUNIT_EXPECT_EQ(test, pfns[0], 0UL);
	KUNIT_EXPECT_FALSE(test, READ_ONCE(mig->done));
	/* ... a fault request waits for the migration to end. */
	complete(&mig->go);
	ret = hk_walk(m, addr, 1, HK_REQ_READ, pfns);
	KUNIT_EXPECT_TRUE(test, READ_ONCE(mig->done));
	flush_work(&mig->work);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, pfns[0], before);
}

static struct kunit_case hmm_mirror_cases[] = {
	KUNIT_CASE_PARAM(hmm_pfn_encoding_round_trips, hk_order_gen_params),
	KUNIT_CASE(hmm_pfn_flags_keep_their_bits),
	KUNIT_CASE(hmm_snapshot_of_untouched_memory_is_empty),
	KUNIT_CASE(hmm_read_fault_maps_zero_page_read_only),
	KUNIT_CASE(hmm_write_fault_maps_writable_pages),
	KUNIT_CASE(hmm_per_page_requests_fault_only_what_is_asked),
	KUNIT_CASE(hmm_write_request_in_read_only_vma_is_eperm),
	KUNIT_CASE_PARAM(hmm_unusable_area_is_error_or_efault, hk_unusable_gen_params),
	KUNIT_CASE(hmm_range_spanning_many_vmas),
	KUNIT_CASE(hmm_invalidated_range_returns_ebusy),
	KUNIT_CASE(hmm_invalidation_during_the_walk_returns_ebusy),
	KUNIT_CASE(hmm_walk_continues_at_the_faulting_page),
	KUNIT_CASE(hmm_thp_is_reported_with_pmd_order),
	KUNIT_CASE(hmm_huge_zero_page_is_read_only),
	KUNIT_CASE(hmm_hugetlb_page_is_reported_with_its_order),
	KUNIT_CASE(hmm_device_private_page_depends_on_owner),
	KUNIT_CASE(hmm_walk_waits_for_a_migration_entry),
	{}
};

static struct kunit_suite hmm_mirror_suite = {
	.name = "hmm-mirror",
	.test_cases = hmm_mirror_cases,
};

kunit_test_suite(hmm_mirror_suite);

MODULE_DESCRIPTION("KUnit cases for hmm_range_fault()");
MODULE_LICENSE("GPL");
