// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Mirror part of a process address space for a device.
 *
 * hmm_range_fault() walks the CPU page tables of a virtual address range and
 * writes one entry per page: the PFN and what the CPU may do with it, or why
 * the page cannot be mirrored. Pages the caller asks for and that are not
 * mapped well enough are faulted in with handle_mm_fault() on the way.
 *
 * The walk uses walk_page_range() with one callback per level of the page
 * table (VMA, PUD, PMD, PTE table, hugetlb entry, hole) sharing one state,
 * struct hmm_walk.
 */

#include <linux/export.h>
#include <linux/hmm.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagewalk.h>
#include <linux/swapops.h>

/*
 * Racing with invalidation
 * ------------------------
 *
 * A mirror request moves through three steps of its interval notifier
 * (mm/mmu_notifier.c), and the walk in the middle is only meaningful because
 * of the two around it:
 *
 *   read_begin   the driver sets range->notifier_seq from
 *                mmu_interval_read_begin(); no invalidation of the range is
 *                running at that point.
 *   walk         hmm_range_fault() reads page tables with the mmap lock held
 *                for read. PTE tables and PMD entries are read without their
 *                page-table lock: the mmap lock, the RCU section of
 *                pte_offset_map() and, for hugetlb, the hugetlb VMA lock
 *                keep the tables from being freed, nothing keeps the entries
 *                from changing.
 *   read_retry   the driver takes the lock its invalidate() callback takes
 *                and consumes hmm_pfns[] only if mmu_interval_read_retry()
 *                finds the sequence unchanged.
 *
 * Every change to a mapped entry is announced by an invalidation that moves
 * the notifier's sequence away from notifier_seq before the entry changes,
 * so a stale read during the walk is always caught at read_retry. The walk
 * therefore never has to be exact, it has to be quick to give up: it checks
 * the sequence before every pass and at every page-table page
 * (hmm_walk_invalidated()) and returns -EBUSY as soon as it moved.
 *
 * A pass ends early with -EBUSY internally when the walk had to fault pages
 * in or wait for a migration entry. struct hmm_walk.last then records where
 * the next pass starts: the first page that was faulted or waited on, never
 * the start of the range. Entries of hmm_pfns[] before .last hold results,
 * entries from .last on still hold the caller's requests; every callback
 * keeps that split by deciding whether to fault before writing results.
 */

/* Request bits of an hmm_pfns[] entry. */
#define HMM_REQ_BITS	(HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE)

/**
 * struct hmm_walk - state of one hmm_range_fault() call
 * @range: the caller's request, and where results go
 * @last: where the next pass of the walk starts
 * @req_default: request bits every page asks for
 * @req_mask: request bits each page may add from its own entry
 * @may_fault: some page may ask for a fault; false makes the walk a pure
 *	snapshot and lets the PTE loop skip reading the requests
 */
struct hmm_walk {
	struct hmm_range *range;
	unsigned long last;
	unsigned long req_default;
	unsigned long req_mask;
	bool may_fault;
};

/* The hmm_pfns[] entry of the page at @addr. */
static inline unsigned long *hmm_slot(const struct hmm_walk *hw,
				      unsigned long addr)
{
	return &hw->range->hmm_pfns[(addr - hw->range->start) >> PAGE_SHIFT];
}

/*
 * What the page whose entry holds @in asks for: HMM_PFN_REQ_FAULT, possibly
 * with HMM_PFN_REQ_WRITE, or 0. The request bits sit where the output bits
 * they ask for sit, so "req & ~cpu_flags" is what a fault has to add.
 */
static inline unsigned long hmm_req(const struct hmm_walk *hw, unsigned long in)
{
	unsigned long req = hw->req_default | (in & hw->req_mask);

	return (req & HMM_PFN_REQ_FAULT) ? req : 0;
}

/* Does a page of [@addr, @end) ask for more than @cpu_flags grants? */
static bool hmm_wants_fault(const struct hmm_walk *hw, unsigned long addr,
			    unsigned long end, unsigned long cpu_flags)
{
	const unsigned long *in, *stop;

	if (!hw->may_fault)
		return false;
	if (!hw->req_mask)
		return hmm_req(hw, 0) & ~cpu_flags;
	stop = hmm_slot(hw, end);
	for (in = hmm_slot(hw, addr); in < stop; in++)
		if (hmm_req(hw, *in) & ~cpu_flags)
			return true;
	return false;
}

/* Report @val for every page of [@addr, @end). */
static void hmm_fill(struct hmm_walk *hw, unsigned long addr,
		     unsigned long end, unsigned long val)
{
	unsigned long *out = hmm_slot(hw, addr), *stop = hmm_slot(hw, end);

	while (out < stop)
		*out++ = val;
}

/* Report consecutive PFNs from @pfn, all with @cpu_flags, over [@addr, @end). */
static void hmm_fill_pfns(struct hmm_walk *hw, unsigned long addr,
			  unsigned long end, unsigned long pfn,
			  unsigned long cpu_flags)
{
	unsigned long *out = hmm_slot(hw, addr), *stop = hmm_slot(hw, end);

	while (out < stop)
		*out++ = pfn++ | cpu_flags;
}

/*
 * Has an invalidation of the range started since the caller's read_begin?
 * If so, the walk stops at @addr.
 */
static bool hmm_walk_invalidated(struct hmm_walk *hw, unsigned long addr)
{
	struct hmm_range *range = hw->range;

	if (!mmu_interval_check_retry(range->notifier, range->notifier_seq))
		return false;
	hw->last = addr;
	return true;
}

/*
 * Fault in the pages of [@addr, @end) that ask for more than @cpu_flags,
 * then end the pass so that the next one re-reads them from @addr on.
 *
 * Context: mmap lock held for read, no page-table lock held; in a hugetlb
 * VMA the hugetlb VMA lock held for read (dropped around the faults, as
 * handle_mm_fault() takes it itself).
 * Return: -EBUSY to resume the walk at @addr, or the error of the fault.
 */
static int hmm_fault(struct mm_walk *walk, unsigned long addr,
		     unsigned long end, unsigned long cpu_flags)
{
	struct hmm_walk *hw = walk->private;
	struct vm_area_struct *vma = walk->vma;
	bool hugetlb = is_vm_hugetlb_page(vma);
	const unsigned long *in = hmm_slot(hw, addr);
	int ret = -EBUSY;

	mmap_assert_locked(walk->mm);
	if (hugetlb) {
		hugetlb_vma_assert_locked(vma);
		hugetlb_vma_unlock_read(vma);
	}
	hw->last = addr;
	for (; addr < end; addr += PAGE_SIZE, in++) {
		unsigned long req = hmm_req(hw, *in);
		unsigned int flags = FAULT_FLAG_REMOTE;
		vm_fault_t fault;

		if (!(req & ~cpu_flags))
			continue;
		if (req & HMM_PFN_REQ_WRITE) {
			if (!(vma->vm_flags & VM_WRITE)) {
				ret = -EPERM;
				break;
			}
			flags |= FAULT_FLAG_WRITE;
		}
		fault = handle_mm_fault(vma, addr, flags, NULL);
		if (fault & VM_FAULT_ERROR) {
			/* Drivers treat -EFAULT as "this page cannot be had". */
			ret = -EFAULT;
			break;
		}
	}
	if (hugetlb)
		hugetlb_vma_lock_read(vma);
	return ret;
}

/*
 * Report the pages of [@addr, @end) that one CPU entry maps alike: from @pfn
 * on with @cpu_flags, or as not present if @cpu_flags lacks HMM_PFN_VALID.
 */
static void hmm_report_block(struct hmm_walk *hw, unsigned long addr,
			     unsigned long end, unsigned long pfn,
			     unsigned long cpu_flags)
{
	if (cpu_flags & HMM_PFN_VALID)
		hmm_fill_pfns(hw, addr, end, pfn, cpu_flags);
	else
		hmm_fill(hw, addr, end, 0);
}

/*
 * A block of pages mapped by one lockless entry (PUD or PMD leaf, hole): fault it
 * if some page asks for more than @cpu_flags, otherwise report it.
 */
static int hmm_walk_block(struct mm_walk *walk, unsigned long addr,
			  unsigned long end, unsigned long pfn,
			  unsigned long cpu_flags)
{
	struct hmm_walk *hw = walk->private;

	if (hmm_wants_fault(hw, addr, end, cpu_flags))
		return hmm_fault(walk, addr, end, cpu_flags);
	hmm_report_block(hw, addr, end, pfn, cpu_flags);
	return 0;
}

/*
 * Something that can never be mirrored: fail if a page insists on a fault,
 * otherwise report the pages as errors.
 */
static int hmm_walk_unusable(struct hmm_walk *hw, unsigned long addr,
			     unsigned long end)
{
	if (hmm_wants_fault(hw, addr, end, 0))
		return -EFAULT;
	hmm_fill(hw, addr, end, HMM_PFN_ERROR);
	return 0;
}

static inline unsigned long hmm_order_flags(unsigned int order)
{
	return (unsigned long)order << HMM_PFN_ORDER_SHIFT;
}

/* VMA level: decide whether the VMA can be walked at all. */
static int hmm_walk_vma(unsigned long start, unsigned long end,
			struct mm_walk *walk)
{
	vm_flags_t flags = walk->vma->vm_flags;
	int ret;

	/*
	 * I/O and PFN mappings have no struct pages to report. Without read
	 * permission there is nothing to mirror either (HMM assumes that no
	 * architecture grants write without read).
	 */
	if ((flags & VM_READ) && !(flags & (VM_IO | VM_PFNMAP)))
		return 0;
	ret = hmm_walk_unusable(walk->private, start, end);
	return ret ? ret : 1;
}

/* Nothing mapped at any level, or no VMA at all. */
static int hmm_walk_hole(unsigned long addr, unsigned long end,
			 int depth, struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;

	if (!walk->vma)
		return hmm_walk_unusable(hw, addr, end);
	return hmm_walk_block(walk, addr, end, 0, 0);
}

#ifdef CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD
/* PUD level: report a PUD-sized (devmap) mapping, or descend. */
static int hmm_walk_pud(pud_t *pudp, unsigned long addr, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	unsigned long cpu_flags;
	pud_t pud;

	if (hmm_walk_invalidated(hw, addr))
		return -EBUSY;
	/* Read without the PUD lock, like a PMD (see the protocol above). */
	pud = pudp_get(pudp);
	if (pud_present(pud) && !(pud_trans_huge(pud) || pud_devmap(pud)))
		return 0;
	/* Handled here: the walker must neither split nor descend. */
	walk->action = ACTION_CONTINUE;
	if (!pud_present(pud) || pud_special(pud))
		return hmm_walk_unusable(hw, addr, end);
	cpu_flags = HMM_PFN_VALID | hmm_order_flags(PUD_SHIFT - PAGE_SHIFT);
	if (pud_write(pud))
		cpu_flags |= HMM_PFN_WRITE;
	return hmm_walk_block(walk, addr, end,
			      pud_pfn(pud) + ((addr & ~PUD_MASK) >> PAGE_SHIFT),
			      cpu_flags);
}
#else
#define hmm_walk_pud NULL
#endif

/* What the CPU may do through a present PTE that maps a page. */
static inline unsigned long hmm_pte_cpu_flags(pte_t pte)
{
	return pte_write(pte) ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
}

/*
 * The common case, decided without looking further: present, no NUMA
 * hinting entry, and (where the architecture marks them) not special.
 */
static inline bool hmm_pte_plain(pte_t pte)
{
	return IS_ENABLED(CONFIG_ARCH_HAS_PTE_SPECIAL) && pte_present(pte) &&
	       !pte_special(pte) && !pte_protnone(pte);
}

/* What the PTE loop does with an entry besides reporting it. */
enum hmm_pte_action {
	HMM_PTE_REPORT,		/* report the value */
	HMM_PTE_FAULT,		/* fault the page in and walk it again */
	HMM_PTE_WAIT,		/* wait for the migration, walk it again */
	HMM_PTE_FAIL,		/* fail the call with -EFAULT */
};

/*
 * Every PTE that is not plain: none, swap and other non-present entries,
 * special mappings. Sets *@val to the result when the answer is
 * HMM_PTE_REPORT; @req is what the page asks for.
 */
static enum hmm_pte_action hmm_pte_slow(struct mm_walk *walk,
					unsigned long addr, pte_t pte,
					unsigned long req, unsigned long *val)
{
	struct hmm_walk *hw = walk->private;
	unsigned long cpu_flags;
	swp_entry_t entry;

	if (pte_none(pte))
		goto absent;
	if (pte_present(pte)) {
		if (pte_protnone(pte))
			goto absent;
		/* The zero page and devmap pages have a struct page. */
		if (!is_zero_pfn(pte_pfn(pte)) && !pte_devmap(pte) &&
		    !vm_normal_page(walk->vma, addr, pte)) {
			if (req)
				return HMM_PTE_FAIL;
			*val = HMM_PFN_ERROR;
			return HMM_PTE_REPORT;
		}
		cpu_flags = hmm_pte_cpu_flags(pte);
		if (req & ~cpu_flags)
			return HMM_PTE_FAULT;
		*val = pte_pfn(pte) | cpu_flags;
		return HMM_PTE_REPORT;
	}

	entry = pte_to_swp_entry(pte);
	if (is_device_private_entry(entry)) {
		struct page *page = pfn_swap_entry_to_page(entry);

		/* The caller's own device memory: report it, do not fault. */
		if (page->pgmap->owner == hw->range->dev_private_owner) {
			*val = swp_offset_pfn(entry) | HMM_PFN_VALID;
			if (is_writable_device_private_entry(entry))
				*val |= HMM_PFN_WRITE;
			return HMM_PTE_REPORT;
		}
		/* Someone else's: the fault migrates it to system memory. */
		goto absent;
	}
	if (!req)
		goto absent;
	if (is_migration_entry(entry))
		return HMM_PTE_WAIT;
	/* Swapped out, exclusive to a device, or a uffd-wp marker. */
	if (!non_swap_entry(entry) || is_device_exclusive_entry(entry) ||
	    (is_pte_marker_entry(entry) && !is_poisoned_swp_entry(entry)))
		return HMM_PTE_FAULT;
	/* Hardware poison and anything unknown cannot be made valid. */
	return HMM_PTE_FAIL;

absent:
	if (req)
		return HMM_PTE_FAULT;
	*val = 0;
	return HMM_PTE_REPORT;
}

/* Would the page with this PTE, asking for @req, need a fault? */
static bool hmm_pte_needs_fault(struct mm_walk *walk, unsigned long addr,
				pte_t pte, unsigned long req)
{
	unsigned long val;

	if (hmm_pte_plain(pte))
		return req & ~hmm_pte_cpu_flags(pte);
	return hmm_pte_slow(walk, addr, pte, req, &val) == HMM_PTE_FAULT;
}

/*
 * PTE level: report each PTE of one table. The loop reports plain PTEs
 * without leaving it; anything else goes through hmm_pte_slow(). A page that
 * needs a fault starts a run of consecutive such pages, which is faulted in
 * one go; nothing from the run on is written, so the next pass still finds
 * the requests there. @may_fault is constant in each caller so that a
 * snapshot never reads the requests.
 */
static __always_inline int hmm_walk_ptes(struct mm_walk *walk, pmd_t *pmdp,
					 unsigned long addr, unsigned long end,
					 const bool may_fault)
{
	struct hmm_walk *hw = walk->private;
	unsigned long *out = hmm_slot(hw, addr);
	enum hmm_pte_action act = HMM_PTE_REPORT;
	unsigned long run, val;
	pte_t *first, *ptep;

	first = pte_offset_map(pmdp, addr);
	if (!first) {
		/* The PMD changed under us: let the walker read it again. */
		walk->action = ACTION_AGAIN;
		return 0;
	}
	for (ptep = first; addr < end; addr += PAGE_SIZE, ptep++, out++) {
		pte_t pte = ptep_get(ptep);
		unsigned long req = may_fault ? hmm_req(hw, *out) : 0;
		unsigned long cpu_flags;

		if (likely(hmm_pte_plain(pte))) {
			cpu_flags = hmm_pte_cpu_flags(pte);
			if (likely(!(req & ~cpu_flags))) {
				*out = pte_pfn(pte) | cpu_flags;
				continue;
			}
			act = HMM_PTE_FAULT;
			break;
		}
		act = hmm_pte_slow(walk, addr, pte, req, &val);
		if (act != HMM_PTE_REPORT)
			break;
		*out = val;
	}
	if (act == HMM_PTE_FAULT) {
		/* Extend the run over the following pages that need one too. */
		for (run = addr; addr < end; addr += PAGE_SIZE, ptep++, out++)
			if (!hmm_pte_needs_fault(walk, addr, ptep_get(ptep),
						 hmm_req(hw, *out)))
				break;
		pte_unmap(first);
		return hmm_fault(walk, run, addr, 0);
	}
	pte_unmap(first);
	if (act == HMM_PTE_REPORT)
		return 0;
	if (act == HMM_PTE_FAIL)
		return -EFAULT;
	hw->last = addr;
	migration_entry_wait(walk->mm, pmdp, addr);
	return -EBUSY;
}

/* PMD level: a huge mapping, a migration entry, or a PTE table. */
static int hmm_walk_pmd(pmd_t *pmdp, unsigned long addr, unsigned long end,
			struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	unsigned long cpu_flags;
	pmd_t pmd;

	if (hmm_walk_invalidated(hw, addr))
		return -EBUSY;
	pmd = pmdp_get_lockless(pmdp);
	if (pmd_none(pmd))
		return hmm_walk_hole(addr, end, -1, walk);
	if (is_pmd_migration_entry(pmd)) {
		if (!hmm_wants_fault(hw, addr, end, 0)) {
			hmm_fill(hw, addr, end, 0);
			return 0;
		}
		hw->last = addr;
		pmd_migration_entry_wait(walk->mm, pmdp);
		return -EBUSY;
	}
	if (!pmd_present(pmd))
		return hmm_walk_unusable(hw, addr, end);
	if (pmd_trans_huge(pmd) || pmd_devmap(pmd)) {
		/*
		 * Read without the PMD lock: a concurrent split or zap is
		 * announced through the notifier before it happens.
		 */
		if (pmd_protnone(pmd))
			return hmm_walk_block(walk, addr, end, 0, 0);
		/* A huge PFN mapping without struct pages cannot be mirrored. */
		if (pmd_special(pmd))
			return hmm_walk_unusable(hw, addr, end);
		cpu_flags = HMM_PFN_VALID | hmm_order_flags(PMD_SHIFT - PAGE_SHIFT);
		if (pmd_write(pmd))
			cpu_flags |= HMM_PFN_WRITE;
		return hmm_walk_block(walk, addr, end,
				      pmd_pfn(pmd) + ((addr & ~PMD_MASK) >> PAGE_SHIFT),
				      cpu_flags);
	}
	if (pmd_bad(pmd))
		return hmm_walk_unusable(hw, addr, end);
	if (hw->may_fault)
		return hmm_walk_ptes(walk, pmdp, addr, end, true);
	return hmm_walk_ptes(walk, pmdp, addr, end, false);
}

#ifdef CONFIG_HUGETLB_PAGE
/* A hugetlbfs page of any size, under the hugetlb VMA lock. */
static int hmm_walk_hugetlb(pte_t *ptep, unsigned long hmask,
			    unsigned long addr, unsigned long end,
			    struct mm_walk *walk)
{
	struct hmm_walk *hw = walk->private;
	struct vm_area_struct *vma = walk->vma;
	struct hstate *h = hstate_vma(vma);
	unsigned long cpu_flags = 0, pfn = 0;
	spinlock_t *ptl;	/* the hugetlb entry's lock */
	pte_t entry;

	hugetlb_vma_assert_locked(vma);
	if (hmm_walk_invalidated(hw, addr))
		return -EBUSY;
	ptl = huge_pte_lock(h, walk->mm, ptep);
	entry = huge_ptep_get(walk->mm, addr, ptep);
	if (pte_present(entry)) {
		cpu_flags = HMM_PFN_VALID | hmm_order_flags(huge_page_order(h));
		if (huge_pte_write(entry))
			cpu_flags |= HMM_PFN_WRITE;
		pfn = pte_pfn(entry) + ((addr & ~hmask) >> PAGE_SHIFT);
	}
	if (hmm_wants_fault(hw, addr, end, cpu_flags)) {
		spin_unlock(ptl);
		return hmm_fault(walk, addr, end, cpu_flags);
	}
	hmm_report_block(hw, addr, end, pfn, cpu_flags);
	spin_unlock(ptl);
	return 0;
}
#endif

/* One callback per level; the walk takes the mmap lock's read side as given. */
static const struct mm_walk_ops hmm_walk_ops = {
	.test_walk	= hmm_walk_vma,
	.pud_entry	= hmm_walk_pud,
	.pmd_entry	= hmm_walk_pmd,
	.pte_hole	= hmm_walk_hole,
#ifdef CONFIG_HUGETLB_PAGE
	.hugetlb_entry	= hmm_walk_hugetlb,
#endif
	.walk_lock	= PGWALK_RDLOCK,
};

/**
 * hmm_range_fault() - mirror a range of an address space, faulting on demand
 * @range: the range, the requests and the array for the results
 *
 * Walks the CPU page tables of @range->notifier's mm over [@range->start,
 * @range->end) and writes one entry per page into @range->hmm_pfns: the PFN
 * with %HMM_PFN_VALID, %HMM_PFN_WRITE when the CPU may write it, and the
 * order of the CPU mapping (hmm_pfn_to_map_order()) for pages mapped by a
 * PMD, a PUD or a hugetlbfs entry; 0 for a page that is not present; or
 * %HMM_PFN_ERROR for a page that cannot be mirrored (no VMA, no read
 * permission, VM_IO or VM_PFNMAP, special mappings without struct pages).
 * The zero page comes back read-only. Device-private pages whose pgmap owner
 * is @range->dev_private_owner come back as they are; other device-private
 * pages are migrated back to system memory when a fault is requested and
 * read as not present otherwise.
 *
 * Each page asks for @range->default_flags plus the bits of its own entry
 * selected by @range->pfn_flags_mask. A page asking for %HMM_PFN_REQ_FAULT
 * (and %HMM_PFN_REQ_WRITE) that is not mapped that way is faulted in with
 * handle_mm_fault(); a page under migration is waited for. The walk then
 * continues at that page, not at the start of the range. On success every
 * entry holds a result; after an error the array holds results up to some
 * point and requests after it.
 *
 * The results may only be used after mmu_interval_read_retry() on
 * @range->notifier and @range->notifier_seq returned false under the lock
 * the driver's invalidate callback takes.
 *
 * Context: process context, may sleep. The mmap lock of the notifier's mm
 * must be held (for read at least); it is never dropped.
 * Return:
 * * 0 - every page was reported and every request was met.
 * * -EBUSY - an invalidation of the range started after
 *   mmu_interval_read_begin(): call it again and retry the read.
 * * -EFAULT - a page asked for a fault but cannot be made valid: no VMA,
 *   no read permission, VM_IO or VM_PFNMAP, a special mapping without a
 *   struct page, hardware poison, or a fault that failed.
 * * -EPERM - a page asked for write access in a VMA without write
 *   permission.
 * * -EINVAL - the range is empty.
 */
int hmm_range_fault(struct hmm_range *range)
{
	struct mm_struct *mm = range->notifier->mm;
	struct hmm_walk hw = {
		.range		= range,
		.last		= range->start,
		.req_default	= range->default_flags & HMM_REQ_BITS,
		.req_mask	= range->pfn_flags_mask & HMM_REQ_BITS,
	};
	int ret;

	mmap_assert_locked(mm);
	hw.may_fault = (hw.req_default | hw.req_mask) & HMM_PFN_REQ_FAULT;
	do {
		if (mmu_interval_check_retry(range->notifier,
					     range->notifier_seq))
			return -EBUSY;
		ret = walk_page_range(mm, hw.last, range->end, &hmm_walk_ops,
				      &hw);
	} while (ret == -EBUSY);
	return ret;
}
EXPORT_SYMBOL(hmm_range_fault);
