/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Heterogeneous memory management: mirror a process address space into a
 * device page table.
 *
 * A driver describes a virtual address range with struct hmm_range, samples
 * the interval notifier with mmu_interval_read_begin(), and calls
 * hmm_range_fault() under the mmap lock. The walk reports, for each page of
 * the range, a PFN and the CPU's access rights, optionally faulting pages in
 * first. The result is only usable once mmu_interval_read_retry() says that
 * no invalidation ran in between (see Documentation/mm/hmm.rst).
 */
#ifndef LINUX_HMM_H
#define LINUX_HMM_H

#include <linux/mm.h>

struct mmu_interval_notifier;

/**
 * enum hmm_pfn_flags - bits of one hmm_pfns[] entry
 * @HMM_PFN_VALID: output: the low bits hold a PFN the CPU can at least read.
 *	With a dev_private_owner set this may be one of that owner's
 *	device-private pages.
 * @HMM_PFN_WRITE: output: the CPU may also write the page (only together
 *	with @HMM_PFN_VALID).
 * @HMM_PFN_ERROR: output: the page cannot be mirrored at all (no VMA, no
 *	read permission, I/O or PFN mappings without struct pages, ...); a
 *	device access to it must fail.
 * @HMM_PFN_ORDER_SHIFT: output: the CPU maps the page as part of a block of
 *	2^order pages; the order lives in the five bits starting here.
 * @HMM_PFN_REQ_FAULT: input: the page must come back with @HMM_PFN_VALID;
 *	fault it in if needed, or fail the call.
 * @HMM_PFN_REQ_WRITE: input: the page must come back with @HMM_PFN_WRITE;
 *	only meaningful together with @HMM_PFN_REQ_FAULT.
 * @HMM_PFN_FLAGS: every bit that is not part of the PFN.
 *
 * An output entry of 0 means "nothing mapped yet": a later call asking for
 * @HMM_PFN_REQ_FAULT may succeed. The request bits share their positions
 * with the output bits they ask for, so an entry can be fed back as a
 * request.
 */
enum hmm_pfn_flags {
	HMM_PFN_VALID = 1UL << (BITS_PER_LONG - 1),
	HMM_PFN_WRITE = 1UL << (BITS_PER_LONG - 2),
	HMM_PFN_ERROR = 1UL << (BITS_PER_LONG - 3),
	HMM_PFN_ORDER_SHIFT = (BITS_PER_LONG - 8),

	HMM_PFN_REQ_FAULT = HMM_PFN_VALID,
	HMM_PFN_REQ_WRITE = HMM_PFN_WRITE,

	HMM_PFN_FLAGS = 0xFFUL << HMM_PFN_ORDER_SHIFT,
};

/**
 * hmm_pfn_to_page() - the page an output entry names
 * @hmm_pfn: an entry of hmm_pfns[] with %HMM_PFN_VALID set
 *
 * Context: after hmm_range_fault() succeeded, under the driver lock that
 * serialises against the interval notifier, and only while
 * mmu_interval_read_retry() has not reported an invalidation.
 * Return: the struct page of the entry's PFN.
 */
static inline struct page *hmm_pfn_to_page(unsigned long hmm_pfn)
{
	return pfn_to_page(hmm_pfn & ~HMM_PFN_FLAGS);
}

/**
 * hmm_pfn_to_phys() - the physical address an output entry names
 * @hmm_pfn: an entry of hmm_pfns[] with %HMM_PFN_VALID set
 *
 * Context: same as hmm_pfn_to_page().
 * Return: the physical address of the first byte of the entry's page.
 */
static inline phys_addr_t hmm_pfn_to_phys(unsigned long hmm_pfn)
{
	return __pfn_to_phys(hmm_pfn & ~HMM_PFN_FLAGS);
}

/**
 * hmm_pfn_to_map_order() - size of the CPU mapping an output entry lies in
 * @hmm_pfn: an entry of hmm_pfns[] with %HMM_PFN_VALID set
 *
 * The CPU maps the page inside a naturally aligned block of 2^order pages
 * (a PMD- or PUD-sized THP, hugetlbfs or devmap page) and every entry of
 * that block carries the same flags, so a driver may map the block with one
 * device entry. The block can extend beyond the start or the end of the
 * range that was walked: clamp it to the range before using it.
 *
 * Context: same as hmm_pfn_to_page().
 * Return: the order, 0 for a page mapped on its own.
 */
static inline unsigned int hmm_pfn_to_map_order(unsigned long hmm_pfn)
{
	return (hmm_pfn >> HMM_PFN_ORDER_SHIFT) & 0x1F;
}

/**
 * struct hmm_range - one request to mirror a virtual address range
 * @notifier: the interval notifier covering [@start, @end); its mm is the
 *	address space that is walked
 * @notifier_seq: what mmu_interval_read_begin() returned for @notifier
 * @start: first virtual address, page aligned (inclusive)
 * @end: end virtual address, page aligned (exclusive)
 * @hmm_pfns: one entry per page of the range: request on input, result on
 *	output (see enum hmm_pfn_flags)
 * @default_flags: request bits applied to every page
 * @pfn_flags_mask: request bits taken from each page's own hmm_pfns[] entry
 *	in addition to @default_flags; 0 makes the request uniform
 * @dev_private_owner: device-private pages whose pgmap owner is this value
 *	are reported as they are instead of being faulted back to system memory
 */
struct hmm_range {
	struct mmu_interval_notifier *notifier;
	unsigned long		notifier_seq;
	unsigned long		start;
	unsigned long		end;
	unsigned long		*hmm_pfns;
	unsigned long		default_flags;
	unsigned long		pfn_flags_mask;
	void			*dev_private_owner;
};

int hmm_range_fault(struct hmm_range *range);

/*
 * HMM_RANGE_DEFAULT_TIMEOUT - how long (in milliseconds) a driver should keep
 * retrying hmm_range_fault() while it returns -EBUSY before giving up.
 */
#define HMM_RANGE_DEFAULT_TIMEOUT 1000

#endif /* LINUX_HMM_H */
