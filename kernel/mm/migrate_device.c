// SPDX-License-Identifier: GPL-2.0
/*
 * Moving process pages to and from device memory.
 *
 * A driver moves a range of a process address space in three calls, made
 * under the mmap lock (read) of the process:
 *
 *   migrate_vma_setup()    collect: take every page of the range that may
 *                          move, lock it and replace its page table entry
 *                          by a migration entry; report the pages in src[]
 *   (driver)               allocate destination pages, lock them, copy the
 *                          data, fill dst[]
 *   migrate_vma_pages()    hand the identity of each source page (mapping,
 *                          index, flags, memcg charge) to its destination;
 *                          map fresh pages where the range had none
 *   migrate_vma_finalize() replace the migration entries by the destination
 *                          (or, where moving failed, by the source again),
 *                          unlock and release everything
 *
 * migrate_device_range(), migrate_device_pages() and migrate_device_finalize()
 * are the same three steps for a range of device pfns rather than a range of
 * virtual addresses: a driver uses them to evict its memory, whichever
 * processes map it, with no VMA at hand.
 *
 * What an entry of src[] means between the calls:
 *
 *   0                      nothing to do: no page, or a page that is not
 *                          selected, or one that cannot move now (pinned,
 *                          locked elsewhere, mapped in a way we cannot undo)
 *   MIGRATE_PFN_MIGRATE    an empty (or zero-page) anonymous address: a
 *                          destination page given in dst[] is mapped there
 *   pfn | VALID | MIGRATE  a page we hold: locked, one reference, unmapped
 *                          (migration entries in its place) and, for system
 *                          memory, isolated from the LRU. WRITE tells whether
 *                          it was mapped writable.
 *
 * migrate_vma_pages() clears MIGRATE on the entries it could not move; such a
 * page is still held and finalize puts it back where it was. The low bits
 * that migrate.h leaves unused carry our own bookkeeping from collect to
 * finalize (MDEV_PFN_*); callers never look at them.
 *
 * Batching. The collect walk holds one page-table lock per PMD and converts
 * every present pte it selects to a migration entry in place, so pages mapped
 * only in this range never need an rmap walk to be unmapped; only a page that
 * is still mapped elsewhere afterwards (shared after fork) goes through
 * try_to_migrate(). A PMD-mapped THP that the range covers is unmapped in
 * one step and stays whole: it is isolated and freed once, and only its
 * pages' identities move, one by one. The TLB is flushed once for the whole
 * range, inside a single MMU_NOTIFY_MIGRATE invalidation that carries the
 * caller's pgmap_owner, so a driver can recognise and skip its own
 * migrations.
 */

#include <linux/export.h>
#include <linux/memcontrol.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mmu_notifier.h>
#include <linux/oom.h>
#include <linux/pagewalk.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/swapops.h>
#include <linux/userfaultfd_k.h>
#include <asm/tlbflush.h>
#include "internal.h"

/*
 * Private src[] bits, free in the MIGRATE_PFN_* encoding:
 * MDEV_PFN_UNMAPPED: migration entries stand where the page was mapped, so
 *	finalize must replace them.
 * MDEV_PFN_ANON_REF: we hold a reference on the anon_vma of the page, taken
 *	because no mmap lock keeps it alive (device-range eviction).
 * MDEV_PFN_LOCAL: the collect walk found the page's only mapping, at this
 *	entry's address: finalize puts the pte back itself, without an rmap
 *	walk. Implies MDEV_PFN_UNMAPPED.
 */
#define MDEV_PFN_UNMAPPED	BIT(2)
#define MDEV_PFN_ANON_REF	BIT(4)
#define MDEV_PFN_LOCAL		BIT(5)
#define MDEV_PFN_PRIVATE	(MDEV_PFN_UNMAPPED | MDEV_PFN_ANON_REF | \
				 MDEV_PFN_LOCAL)

/*
 * During migrate_vma_setup(), dst[] is ours: the collect walk marks with
 * this value the entries it could not prepare completely, the only ones
 * mdev_prepare() then looks at. dst[] is cleared before setup returns.
 */
#define MDEV_DST_UNREADY	1UL

/* Collect walk state: one per migrate_vma_setup() call. */
struct mdev_collect {
	struct migrate_vma *args;
	/* pages collected that mdev_prepare() still has to see */
	unsigned long unready;
	/* span of present ptes cleared, to be flushed once */
	unsigned long flush_start;
	unsigned long flush_end;
	/* a pte-mapped large folio to split before going on */
	struct folio *split;
};

static unsigned long *mdev_slot(struct migrate_vma *args, unsigned long addr)
{
	return &args->src[(addr - args->start) >> PAGE_SHIFT];
}

/* Is an empty (or zero-page) address in @vma to be filled by the caller? */
static bool mdev_fills_holes(struct migrate_vma *args)
{
	return vma_is_anonymous(args->vma) &&
	       (args->flags & MIGRATE_VMA_SELECT_SYSTEM);
}

static void mdev_mark_range(struct migrate_vma *args, unsigned long start,
			    unsigned long end, bool hole)
{
	unsigned long addr;

	for (addr = start; addr < end; addr += PAGE_SIZE) {
		*mdev_slot(args, addr) = hole ? MIGRATE_PFN_MIGRATE : 0;
		if (hole)
			args->cpages++;
	}
}

static int mdev_collect_hole(unsigned long start, unsigned long end,
			     int depth, struct mm_walk *walk)
{
	struct mdev_collect *mc = walk->private;

	mdev_mark_range(mc->args, start, end, mdev_fills_holes(mc->args));
	return 0;
}

/*
 * Which page, if any, does @pte map that this migration selects? Sets
 * *@device for a device-private entry, *@zero for the shared zero page.
 */
static struct page *mdev_select(struct migrate_vma *args, unsigned long addr,
				pte_t pte, bool *device, bool *zero)
{
	struct page *page;
	swp_entry_t entry;

	*device = false;
	*zero = false;
	if (!pte_present(pte)) {
		entry = pte_to_swp_entry(pte);
		if (!is_device_private_entry(entry))
			return NULL;
		page = pfn_swap_entry_to_page(entry);
		if (!(args->flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) ||
		    page->pgmap->owner != args->pgmap_owner)
			return NULL;
		*device = true;
		return page;
	}

	if (is_zero_pfn(pte_pfn(pte))) {
		*zero = true;
		return NULL;
	}
	page = vm_normal_page(args->vma, addr, pte);
	if (!page)
		return NULL;
	if (is_zone_device_page(page)) {
		if (!(args->flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) ||
		    !is_device_coherent_page(page) ||
		    page->pgmap->owner != args->pgmap_owner)
			return NULL;
	} else if (!(args->flags & MIGRATE_VMA_SELECT_SYSTEM)) {
		return NULL;
	}
	return page;
}

/*
 * The migration entry replacing @pte, which mapped @page: it keeps write
 * permission, exclusivity, young, dirty, soft-dirty and uffd-wp.
 */
static pte_t mdev_migration_pte(struct page *page, pte_t pte, bool device,
				bool writable, bool exclusive)
{
	unsigned long pfn = page_to_pfn(page);
	swp_entry_t entry;
	pte_t swp;

	if (writable)
		entry = make_writable_migration_entry(pfn);
	else if (exclusive)
		entry = make_readable_exclusive_migration_entry(pfn);
	else
		entry = make_readable_migration_entry(pfn);

	if (device) {
		swp = swp_entry_to_pte(entry);
		if (pte_swp_soft_dirty(pte))
			swp = pte_swp_mksoft_dirty(swp);
		if (pte_swp_uffd_wp(pte))
			swp = pte_swp_mkuffd_wp(swp);
		return swp;
	}

	if (pte_young(pte))
		entry = make_migration_entry_young(entry);
	if (pte_dirty(pte))
		entry = make_migration_entry_dirty(entry);
	swp = swp_entry_to_pte(entry);
	if (pte_soft_dirty(pte))
		swp = pte_swp_mksoft_dirty(swp);
	if (pte_uffd_wp(pte))
		swp = pte_swp_mkuffd_wp(swp);
	return swp;
}

/*
 * Finish preparing a page the walk has just unmapped, if it needs nothing
 * more: mapped nowhere else and held by no one but us (and, for the fault
 * page, the fault). A system page is isolated from the LRU here, under the
 * locks already held; device memory is never on it. Returns true when
 * mdev_prepare() may skip the page.
 */
static bool mdev_collect_ready(struct folio *folio, bool fault)
{
	if (folio_mapped(folio) || folio_ref_count(folio) != 1 + fault)
		return false;
	if (folio_is_zone_device(folio))
		return true;
	if (!folio_isolate_lru(folio))
		return false;
	/* The isolation reference stands in for ours. */
	folio_put(folio);
	return true;
}

/*
 * Take the page mapped at @addr if the migration wants it: lock it, hold a
 * reference and leave a migration entry in the pte. Called with the pte lock
 * held. Returns false only when the pte maps a large folio that must be split
 * first (left in mc->split with a reference).
 */
static bool mdev_collect_pte(struct mdev_collect *mc, pte_t *ptep,
			     unsigned long addr)
{
	struct migrate_vma *args = mc->args;
	struct vm_area_struct *vma = args->vma;
	struct mm_struct *mm = vma->vm_mm;
	unsigned long *slot = mdev_slot(args, addr);
	bool device, zero, writable, exclusive;
	pte_t pte = ptep_get(ptep);
	struct folio *folio;
	struct page *page;

	*slot = 0;
	if (pte_none(pte)) {
		mdev_mark_range(args, addr, addr + PAGE_SIZE,
				mdev_fills_holes(args));
		return true;
	}
	page = mdev_select(args, addr, pte, &device, &zero);
	if (!page) {
		if (zero)
			mdev_mark_range(args, addr, addr + PAGE_SIZE,
					mdev_fills_holes(args));
		return true;
	}

	folio = page_folio(page);
	/*
	 * Only plain anonymous memory moves: a page cache, KSM or swap cache
	 * folio has other users of its identity that a device page cannot
	 * stand in for.
	 */
	if (!folio_test_anon(folio) || folio_test_ksm(folio) ||
	    folio_test_swapcache(folio))
		return true;
	if (folio_test_large(folio)) {
		folio_get(folio);
		mc->split = folio;
		return false;
	}
	if (!folio_trylock(folio))
		return true;
	folio_get(folio);

	exclusive = PageAnonExclusive(page);
	if (device) {
		writable = is_writable_device_private_entry(pte_to_swp_entry(pte));
		/* Device-private pages cannot be pinned: this cannot fail. */
		if (exclusive)
			folio_try_share_anon_rmap_pte(folio, page);
	} else {
		writable = pte_write(pte);
		flush_cache_page(vma, addr, pte_pfn(pte));
		pte = ptep_get_and_clear(mm, addr, ptep);
		/* The TLB is flushed once for the range, see mdev_collect(). */
		if (!mc->flush_end)
			mc->flush_start = addr;
		mc->flush_end = addr + PAGE_SIZE;
		/*
		 * With the pte cleared, GUP-fast can no longer take a new pin;
		 * one taken before is seen here and the page stays.
		 */
		if (exclusive && folio_try_share_anon_rmap_pte(folio, page)) {
			set_pte_at(mm, addr, ptep, pte);
			folio_unlock(folio);
			folio_put(folio);
			return true;
		}
		/*
		 * Anonymous and outside the swap cache, the folio has no
		 * mapping to tell: folio_mark_dirty() would only set the flag.
		 */
		if (pte_dirty(pte))
			folio_set_dirty(folio);
	}

	set_pte_at(mm, addr, ptep,
		   mdev_migration_pte(page, pte, device, writable, exclusive));
	folio_remove_rmap_pte(folio, page, vma);
	/* The mapping's reference; ours keeps the folio. */
	folio_put(folio);

	*slot = migrate_pfn(page_to_pfn(page)) | MIGRATE_PFN_MIGRATE |
		MDEV_PFN_UNMAPPED | MDEV_PFN_LOCAL |
		(writable ? MIGRATE_PFN_WRITE : 0);
	args->cpages++;
	if (!mdev_collect_ready(folio, page == args->fault_page)) {
		args->dst[slot - args->src] = MDEV_DST_UNREADY;
		mc->unready++;
	}
	return true;
}

/*
 * Split @folio (referenced by the caller, who gives the reference up) so that
 * its pages can move one by one. Returns 0 when it was split.
 */
static int mdev_split(struct folio *folio)
{
	int ret = -EBUSY;

	if (folio_trylock(folio)) {
		ret = split_folio(folio);
		folio_unlock(folio);
	}
	folio_put(folio);
	return ret;
}

/*
 * A PMD maps an anonymous THP that [@start, @end) covers exactly and that is
 * mapped nowhere else: replace the PMD by a table of migration entries, one
 * per page, in one step (split_huge_pmd_locked() with freeze, as
 * try_to_migrate() does) and keep the folio whole. Its pages then move one
 * by one into the caller's order-0 destinations, but the folio is unmapped,
 * isolated and freed once instead of being split into 512 folios first.
 * Returns true if the range was collected so.
 */
static bool mdev_collect_whole(struct mdev_collect *mc, pmd_t *pmdp,
			       unsigned long start, unsigned long end)
{
	struct migrate_vma *args = mc->args;
	struct vm_area_struct *vma = args->vma;
	unsigned long addr, pfn, flags;
	struct folio *folio;
	spinlock_t *ptl;	/* pmd lock */
	pmd_t pmd;

	if (!(args->flags & MIGRATE_VMA_SELECT_SYSTEM) ||
	    end - start != PMD_SIZE || !vma_is_anonymous(vma) ||
	    (vma->vm_flags & VM_LOCKED))
		return false;

	ptl = pmd_lock(vma->vm_mm, pmdp);
	pmd = pmdp_get(pmdp);
	if (!pmd_trans_huge(pmd) || is_huge_zero_pmd(pmd))
		goto unlock;
	folio = pmd_folio(pmd);
	if (!folio_test_anon(folio) || folio_mapcount(folio) != 1 ||
	    !folio_trylock(folio))
		goto unlock;
	/* Only under the folio lock is a folio kept out of the swap cache. */
	if (folio_test_swapcache(folio)) {
		folio_unlock(folio);
		goto unlock;
	}
	folio_get(folio);
	flags = MIGRATE_PFN_MIGRATE | MDEV_PFN_UNMAPPED | MDEV_PFN_LOCAL |
		(pmd_write(pmd) ? MIGRATE_PFN_WRITE : 0);
	/* Flushes the TLB for the PMD and drops the mapping's reference. */
	split_huge_pmd_locked(vma, start, pmdp, true, folio);
	spin_unlock(ptl);

	if (folio_mapped(folio)) {
		/*
		 * Maybe pinned: the PMD was only split and the pages stay
		 * mapped. Splitting the folio would fail the same way.
		 */
		folio_unlock(folio);
		folio_put(folio);
		mdev_mark_range(args, start, end, false);
		return true;
	}
	pfn = folio_pfn(folio);
	for (addr = start; addr < end; addr += PAGE_SIZE, pfn++)
		*mdev_slot(args, addr) = migrate_pfn(pfn) | flags;
	args->cpages += PMD_SIZE >> PAGE_SHIFT;
	/* Isolated by mdev_prepare(), from its first page's entry. */
	args->dst[(start - args->start) >> PAGE_SHIFT] = MDEV_DST_UNREADY;
	mc->unready++;
	return true;

unlock:
	spin_unlock(ptl);
	return false;
}

/* A PMD maps a huge page: split it, or report the range as not moving. */
static int mdev_collect_huge(struct mdev_collect *mc, pmd_t *pmdp,
			     unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma = mc->args->vma;
	struct folio *folio;
	spinlock_t *ptl;	/* pte or pmd lock */
	pmd_t pmd;

	ptl = pmd_lock(vma->vm_mm, pmdp);
	pmd = pmdp_get(pmdp);
	if (!pmd_trans_huge(pmd)) {
		spin_unlock(ptl);
		return 0;
	}
	if (is_huge_zero_pmd(pmd)) {
		spin_unlock(ptl);
		split_huge_pmd(vma, pmdp, start);
		return 0;
	}
	folio = pmd_folio(pmd);
	folio_get(folio);
	spin_unlock(ptl);
	return mdev_split(folio);
}

/* Collect [@start, @end), which lies inside the PMD whose entry is @pmdp. */
static void mdev_collect_range(struct mdev_collect *mc, pmd_t *pmdp,
			       unsigned long start, unsigned long end)
{
	struct vm_area_struct *vma = mc->args->vma;
	struct mm_struct *mm = vma->vm_mm;
	unsigned long addr;
	spinlock_t *ptl;	/* pte or pmd lock */
	pte_t *ptep, *first;
	pmd_t pmd;

again:
	pmd = pmdp_get_lockless(pmdp);
	if (pmd_none(pmd)) {
		mdev_mark_range(mc->args, start, end, mdev_fills_holes(mc->args));
		return;
	}
	if (pmd_trans_huge(pmd)) {
		if (mdev_collect_whole(mc, pmdp, start, end))
			return;
		if (mdev_collect_huge(mc, pmdp, start, end)) {
			mdev_mark_range(mc->args, start, end, false);
			return;
		}
		goto again;
	}
	if (!pmd_present(pmd) || pmd_devmap(pmd)) {
		/* A huge page under migration, or device memory: leave it. */
		mdev_mark_range(mc->args, start, end, false);
		return;
	}

	first = pte_offset_map_lock(mm, pmdp, start, &ptl);
	if (!first)
		goto again;
	arch_enter_lazy_mmu_mode();
	for (addr = start, ptep = first; addr < end; addr += PAGE_SIZE, ptep++)
		if (!mdev_collect_pte(mc, ptep, addr))
			break;
	arch_leave_lazy_mmu_mode();
	/* Under the lock, so that the batch is this CPU's. */
	if (vma->vm_flags & VM_LOCKED)
		mlock_drain_local();
	pte_unmap_unlock(first, ptl);

	if (addr < end) {
		/* A pte-mapped large folio: split it and go on from there. */
		struct folio *folio = mc->split;

		mc->split = NULL;
		if (mdev_split(folio)) {
			*mdev_slot(mc->args, addr) = 0;
			addr += PAGE_SIZE;
		}
		start = addr;
		if (start < end)
			goto again;
	}
}

static int mdev_collect_pmd(pmd_t *pmdp, unsigned long start,
			    unsigned long end, struct mm_walk *walk)
{
	mdev_collect_range(walk->private, pmdp, start, end);
	return 0;
}

static const struct mm_walk_ops mdev_collect_ops = {
	.pmd_entry	= mdev_collect_pmd,
	.pte_hole	= mdev_collect_hole,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * Invalidate device mappings of [@start, @migrate->end) for this migration;
 * the owner lets the migrating driver skip its own mappings.
 */
static void mdev_notify_start(struct mmu_notifier_range *range,
			      struct migrate_vma *migrate, unsigned long start)
{
	mmu_notifier_range_init_owner(range, MMU_NOTIFY_MIGRATE, 0,
				      migrate->vma->vm_mm, start, migrate->end,
				      migrate->pgmap_owner);
	mmu_notifier_invalidate_range_start(range);
}

/*
 * Walk the range once, collecting and unmapping what moves, inside one
 * MMU_NOTIFY_MIGRATE invalidation tagged with the caller's owner. Returns
 * the number of pages mdev_prepare() still has to see.
 */
static unsigned long mdev_collect(struct migrate_vma *args)
{
	struct mdev_collect mc = { .args = args };
	struct mmu_notifier_range range;

	/*
	 * System folios still in a per-CPU LRU batch carry an extra
	 * reference; device pages are never in one.
	 */
	if (args->flags & MIGRATE_VMA_SELECT_SYSTEM)
		lru_add_drain();

	mdev_notify_start(&range, args, args->start);
	if (!((args->start ^ (args->end - 1)) & PMD_MASK)) {
		/*
		 * Inside one PMD (a CPU fault, most driver batches): one
		 * lookup finds the page table, where the page walker's
		 * generic descent would cost more than collecting one page.
		 */
		pmd_t *pmdp = mm_find_pmd(args->vma->vm_mm, args->start);

		mmap_assert_locked(args->vma->vm_mm);
		if (pmdp)
			mdev_collect_range(&mc, pmdp, args->start, args->end);
		else
			mdev_mark_range(args, args->start, args->end,
					mdev_fills_holes(args));
	} else {
		walk_page_range_vma(args->vma, args->start, args->end,
				    &mdev_collect_ops, &mc);
	}
	if (mc.flush_end)
		flush_tlb_range(args->vma, mc.flush_start, mc.flush_end);
	mmu_notifier_invalidate_range_end(&range);
	return mc.unready;
}

/* Give a collected page back: restore its mappings, unlock, release. */
static void mdev_release(unsigned long *mpfn, bool isolated)
{
	struct folio *folio = page_folio(migrate_pfn_to_page(*mpfn));

	VM_WARN_ON_ONCE_FOLIO(folio_test_anon(folio) && !mem_cgroup_disabled() &&
			      !folio_memcg(folio), folio);
	if (*mpfn & MDEV_PFN_UNMAPPED)
		remove_migration_ptes(folio, folio, 0);
	if (*mpfn & MDEV_PFN_ANON_REF)
		put_anon_vma(folio_anon_vma(folio));
	folio_unlock(folio);
	if (isolated)
		folio_putback_lru(folio);
	else
		folio_put(folio);
	*mpfn = 0;
}

/*
 * Make sure a collected page is free to move: unmapped everywhere, off the
 * LRU, and with no reference but ours (and the caller's of a fault page).
 * Returns 0, or -EAGAIN when draining the per-CPU LRU batches may help, or
 * -EBUSY. On error the page is as it was, still held.
 */
static int mdev_prepare_one(unsigned long *mpfn, struct page *fault_page,
			    bool *isolated)
{
	struct page *page = migrate_pfn_to_page(*mpfn);
	struct folio *folio = page_folio(page);
	int expected = 1 + (page == fault_page);

	if (folio_mapped(folio)) {
		/* Mapped elsewhere too: finalize needs the rmap walk. */
		*mpfn |= MDEV_PFN_UNMAPPED;
		*mpfn &= ~MDEV_PFN_LOCAL;
		/* The TLB flush is deferred to the end of mdev_prepare(). */
		try_to_migrate(folio, TTU_SYNC | TTU_BATCH_FLUSH);
		if (folio_mapped(folio))
			return -EBUSY;
	}
	if (!folio_is_zone_device(folio) && !*isolated) {
		if (!folio_isolate_lru(folio))
			return -EAGAIN;
		*isolated = true;
		/* The isolation reference stands in for ours. */
		folio_put(folio);
	}
	if (folio_ref_count(folio) != expected)
		return -EAGAIN;
	return 0;
}

/*
 * Second half of collecting, for pages the walk could not finish alone or
 * that come from a pfn range: with @unready, only the entries it marks
 * MDEV_DST_UNREADY need it, the others are done already. Entries that
 * cannot move are released and cleared. Returns the number of entries that
 * still move.
 */
static unsigned long mdev_prepare(unsigned long *src, unsigned long npages,
				  struct page *fault_page,
				  const unsigned long *unready)
{
	unsigned long i, moving = 0;
	bool drained = false;

	for (i = 0; i < npages; i++) {
		bool isolated = false;
		unsigned long nr;
		int ret;

		if (!(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (!(src[i] & MIGRATE_PFN_VALID) ||
		    (unready && unready[i] != MDEV_DST_UNREADY)) {
			moving++;
			continue;
		}
		/*
		 * A THP collected whole fills nr entries, in order: its first
		 * page's entry decides for all.
		 */
		nr = min(folio_nr_pages(page_folio(migrate_pfn_to_page(src[i]))),
			 npages - i);
		ret = mdev_prepare_one(&src[i], fault_page, &isolated);
		if (ret == -EAGAIN && !drained) {
			lru_add_drain_all();
			drained = true;
			ret = mdev_prepare_one(&src[i], fault_page, &isolated);
		}
		if (ret) {
			mdev_release(&src[i], isolated);
			memset(&src[i + 1], 0, (nr - 1) * sizeof(*src));
		} else {
			moving += nr;
		}
		i += nr - 1;
	}
	try_to_unmap_flush();
	return moving;
}

/**
 * migrate_vma_setup() - collect and unmap the pages of a range for migration
 * @args: the range (@vma, @start, @end), the src and dst arrays with one
 *	entry per page, @flags selecting which pages move
 *	(MIGRATE_VMA_SELECT_*), @pgmap_owner and, from a migrate_to_ram()
 *	handler, @fault_page
 *
 * Selected are: system pages with MIGRATE_VMA_SELECT_SYSTEM, device-private
 * and device-coherent pages whose pgmap->owner is @pgmap_owner with the
 * matching select flag. Empty and zero-page addresses of an anonymous VMA are
 * reported (MIGRATE_PFN_MIGRATE without a pfn) when system memory is
 * selected, so that migrate_vma_pages() can map a new page there. An
 * anonymous THP that a PMD maps, that the range covers exactly and that is
 * mapped nowhere else is kept whole: its pages are reported one by one, as
 * any others, and each moves to its own order-0 destination. Other huge
 * pages are split. Pages that are pinned, locked by someone else, or not plain
 * anonymous memory stay where they are and read 0 in @src.
 *
 * Each page reported with MIGRATE_PFN_MIGRATE is locked, unmapped (its ptes
 * hold migration entries, so CPU accesses wait) and held until
 * migrate_vma_finalize(). Device mappings are invalidated through an
 * MMU_NOTIFY_MIGRATE notification whose owner is @pgmap_owner.
 *
 * The caller then fills @dst with locked destination pages, copies the data
 * and calls migrate_vma_pages() and migrate_vma_finalize(), all without
 * dropping the mmap lock. @src must not be changed by the caller.
 *
 * Context: Process context, mmap lock of @args->vma held for read (or
 * write); may sleep.
 * Return: 0 with @args->cpages the number of entries that may move (which may
 * be 0) and @args->npages the number of entries, or -EINVAL for an invalid
 * range, VMA (hugetlb, DAX, VM_IO/VM_PFNMAP) or fault page.
 */
int migrate_vma_setup(struct migrate_vma *args)
{
	unsigned long nr = (args->end - args->start) >> PAGE_SHIFT;
	struct vm_area_struct *vma = args->vma;

	if (!PAGE_ALIGNED(args->start) || !PAGE_ALIGNED(args->end) ||
	    args->start >= args->end || !args->src || !args->dst)
		return -EINVAL;
	if (!vma || args->start < vma->vm_start || args->end > vma->vm_end)
		return -EINVAL;
	if (is_vm_hugetlb_page(vma) || (vma->vm_flags & VM_SPECIAL) ||
	    vma_is_dax(vma))
		return -EINVAL;
	if (args->fault_page && !is_device_private_page(args->fault_page))
		return -EINVAL;

	/*
	 * dst[] is cleared too: finalize releases any destination page it
	 * finds, and callers reuse their arrays from one chunk to the next.
	 */
	memset(args->src, 0, sizeof(*args->src) * nr);
	memset(args->dst, 0, sizeof(*args->dst) * nr);
	args->cpages = 0;
	args->npages = nr;

	if (mdev_collect(args)) {
		args->cpages = mdev_prepare(args->src, nr, args->fault_page,
					    args->dst);
		/* dst[] held the walk's MDEV_DST_UNREADY marks. */
		memset(args->dst, 0, sizeof(*args->dst) * nr);
	}
	return 0;
}
EXPORT_SYMBOL(migrate_vma_setup);

/*
 * Map the new page @page at the empty address @addr. Returns false if the
 * address is no longer empty or the page cannot be charged or mapped.
 */
static bool mdev_insert(struct migrate_vma *migrate, unsigned long addr,
			struct page *page)
{
	struct vm_area_struct *vma = migrate->vma;
	struct mm_struct *mm = vma->vm_mm;
	struct folio *folio = page_folio(page);
	bool replace_zero = false;
	spinlock_t *ptl;	/* pte or pmd lock */
	pte_t *ptep;
	pmd_t *pmdp;
	pte_t pte;

	if (folio_is_zone_device(folio) && !folio_is_device_private(folio) &&
	    !folio_is_device_coherent(folio))
		return false;
	if (!vma_is_anonymous(vma) || userfaultfd_missing(vma))
		return false;
	if (anon_vma_prepare(vma))
		return false;

	pmdp = mm_find_pmd(mm, addr);
	if (!pmdp) {
		pgd_t *pgdp = pgd_offset(mm, addr);
		p4d_t *p4dp = p4d_alloc(mm, pgdp, addr);
		pud_t *pudp = p4dp ? pud_alloc(mm, p4dp, addr) : NULL;

		pmdp = pudp ? pmd_alloc(mm, pudp, addr) : NULL;
		if (!pmdp)
			return false;
	}
	if (pmd_trans_huge(pmdp_get(pmdp)) || pmd_devmap(pmdp_get(pmdp)))
		return false;
	if (pte_alloc(mm, pmdp))
		return false;
	if (mem_cgroup_charge(folio, mm, GFP_KERNEL))
		return false;

	/* The contents written by the caller are visible before the pte. */
	__folio_mark_uptodate(folio);
	if (folio_is_device_private(folio)) {
		swp_entry_t entry;

		if (vma->vm_flags & VM_WRITE)
			entry = make_writable_device_private_entry(page_to_pfn(page));
		else
			entry = make_readable_device_private_entry(page_to_pfn(page));
		pte = swp_entry_to_pte(entry);
	} else {
		pte = mk_pte(page, vma->vm_page_prot);
		if (vma->vm_flags & VM_WRITE)
			pte = pte_mkwrite(pte_mkdirty(pte), vma);
	}

	ptep = pte_offset_map_lock(mm, pmdp, addr, &ptl);
	if (!ptep)
		return false;
	if (check_stable_address_space(mm))
		goto busy;
	if (pte_present(ptep_get(ptep))) {
		if (!is_zero_pfn(pte_pfn(ptep_get(ptep))))
			goto busy;
		replace_zero = true;
	} else if (!pte_none(ptep_get(ptep))) {
		goto busy;
	}

	inc_mm_counter(mm, MM_ANONPAGES);
	folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE);
	if (!folio_is_zone_device(folio))
		folio_add_lru_vma(folio, vma);
	/* The mapping's reference; the caller's is dropped by finalize. */
	folio_get(folio);
	if (replace_zero) {
		flush_cache_page(vma, addr, pte_pfn(ptep_get(ptep)));
		ptep_clear_flush(vma, addr, ptep);
	}
	set_pte_at(mm, addr, ptep, pte);
	update_mmu_cache(vma, addr, ptep);
	pte_unmap_unlock(ptep, ptl);
	return true;

busy:
	pte_unmap_unlock(ptep, ptl);
	return false;
}

/*
 * Move the identity of the order-0 @folio to @newpage: mapping, index, page
 * flags and the memcg charge. @extra counts references the caller of the
 * whole migration holds besides ours (the fault page).
 *
 * Collection takes only anonymous folios outside the swap cache, and a
 * locked, unmapped, isolated folio cannot enter it: there is no mapping to
 * move, so of folio_migrate_mapping() only its reference check and the three
 * fields it copies apply, done here as mdev_move_part() does for the pages of
 * a THP, without the generic expected-count arithmetic.
 */
static bool mdev_move(struct folio *folio, struct page *newpage, int extra)
{
	struct folio *newfolio = page_folio(newpage);

	/* A destination is a fresh page: no owner, no charge yet. */
	VM_WARN_ON_ONCE_FOLIO(newfolio->mapping || folio_memcg(newfolio), newfolio);
	VM_WARN_ON_ONCE_FOLIO(folio_mapping(folio), folio);

	if (folio_test_large(newfolio) ||
	    (folio_is_zone_device(newfolio) &&
	     !folio_is_device_private(newfolio) &&
	     !folio_is_device_coherent(newfolio)))
		return false;
	/* Nobody may have taken a reference since collection. */
	if (folio_mapped(folio) || folio_ref_count(folio) != 1 + extra)
		return false;
	newfolio->index = folio->index;
	newfolio->mapping = folio->mapping;
	if (folio_test_swapbacked(folio))
		__folio_set_swapbacked(newfolio);
	folio_migrate_flags(newfolio, folio);
	return true;
}

/*
 * Move the identity of @page, one page of a THP the collect walk kept whole,
 * to the order-0 @newpage: index, mapping, the page flags that matter to an
 * anonymous page, and a charge of its own to the THP's memcg. The THP keeps
 * its charge until it is freed, so for a while the memcg pays twice for
 * what moves: the charge may reclaim but never OOM-kills, and if it fails
 * the page just stays.
 */
static bool mdev_move_part(struct page *page, struct page *newpage)
{
	struct folio *folio = page_folio(page);
	struct folio *newfolio = page_folio(newpage);
	struct mem_cgroup *old_memcg;
	int ret;

	VM_WARN_ON_ONCE_FOLIO(newfolio->mapping || folio_memcg(newfolio), newfolio);

	if (folio_test_large(newfolio) ||
	    (folio_is_zone_device(newfolio) &&
	     !folio_is_device_private(newfolio) &&
	     !folio_is_device_coherent(newfolio)))
		return false;
	old_memcg = set_active_memcg(folio_memcg(folio));
	ret = mem_cgroup_charge(newfolio, NULL, GFP_KERNEL |
				__GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	set_active_memcg(old_memcg);
	if (ret)
		return false;
	newfolio->index = folio->index + folio_page_idx(folio, page);
	newfolio->mapping = folio->mapping;
	if (folio_test_swapbacked(folio))
		__folio_set_swapbacked(newfolio);
	if (folio_test_uptodate(folio))
		folio_mark_uptodate(newfolio);
	if (folio_test_dirty(folio))
		folio_set_dirty(newfolio);
	if (folio_test_referenced(folio))
		folio_set_referenced(newfolio);
	if (folio_test_workingset(folio))
		folio_set_workingset(newfolio);
	return true;
}

/*
 * The common part of migrate_vma_pages() and migrate_device_pages(). With no
 * @migrate (a pfn range), there is no address to map new pages at.
 */
static void mdev_pages(unsigned long *src, unsigned long *dst,
		       unsigned long npages, struct migrate_vma *migrate)
{
	struct mmu_notifier_range range;
	struct folio *whole = NULL;
	bool notified = false, whole_free = false;
	unsigned long i;

	for (i = 0; i < npages; i++) {
		struct page *newpage = migrate_pfn_to_page(dst[i]);
		struct page *page = migrate_pfn_to_page(src[i]);
		struct folio *folio;
		unsigned long addr;
		bool moved;

		if (!(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (!newpage) {
			src[i] &= ~MIGRATE_PFN_MIGRATE;
			continue;
		}
		folio = page ? page_folio(page) : NULL;
		if (folio && !folio_test_large(folio)) {
			moved = mdev_move(folio, newpage,
					  migrate && page == migrate->fault_page);
		} else if (folio) {
			/*
			 * A THP kept whole: its pages may move only if no one
			 * but us (the isolation reference) holds it.
			 */
			if (folio != whole) {
				whole = folio;
				whole_free = folio_ref_count(folio) == 1;
			}
			moved = whole_free && mdev_move_part(page, newpage);
		} else if (migrate) {
			addr = migrate->start + (i << PAGE_SHIFT);
			/*
			 * A device may have mirrored the zero page here since
			 * setup: invalidate, once, from the first new mapping.
			 */
			if (!notified) {
				mdev_notify_start(&range, migrate, addr);
				notified = true;
			}
			moved = mdev_insert(migrate, addr, newpage);
		} else {
			moved = false;
		}
		if (!moved)
			src[i] &= ~MIGRATE_PFN_MIGRATE;
	}
	if (notified)
		mmu_notifier_invalidate_range_end(&range);
}

/**
 * migrate_vma_pages() - switch the collected pages to their destinations
 * @migrate: the migration set up by migrate_vma_setup(), with @dst filled in
 *
 * For each entry of @migrate->src still marked MIGRATE_PFN_MIGRATE whose @dst
 * entry holds a locked destination page (migrate_pfn() of it, with
 * MIGRATE_PFN_WRITE as wanted), the source page's mapping, index, flags and
 * memcg charge move to the destination; for an empty address the
 * destination is charged and mapped right away. Entries that cannot move
 * (no destination, an unexpected reference appeared, the address is no
 * longer empty) lose MIGRATE_PFN_MIGRATE and are restored by
 * migrate_vma_finalize(). The caller must have copied the data already.
 *
 * Context: Process context, the mmap lock held as for migrate_vma_setup();
 * may sleep.
 */
void migrate_vma_pages(struct migrate_vma *migrate)
{
	mdev_pages(migrate->src, migrate->dst, migrate->npages, migrate);
}
EXPORT_SYMBOL(migrate_vma_pages);

/*
 * Replace the migration entry for @old_pfn at @addr by a mapping of @page,
 * keeping what the entry recorded: write permission, exclusivity, young,
 * dirty, soft-dirty and uffd-wp. Called with the pte lock held.
 */
static void mdev_remap_pte(struct vm_area_struct *vma, unsigned long addr,
			   pte_t *ptep, struct page *page,
			   unsigned long old_pfn)
{
	struct folio *folio = page_folio(page);
	pte_t old = ptep_get(ptep);
	rmap_t flags = RMAP_NONE;
	swp_entry_t entry;
	pte_t pte;

	/* Zapped (MADV_DONTNEED) since setup: nothing to put back. */
	if (!is_swap_pte(old))
		return;
	entry = pte_to_swp_entry(old);
	if (!is_migration_entry(entry) || swp_offset_pfn(entry) != old_pfn)
		return;

	if (!is_readable_migration_entry(entry))
		flags = RMAP_EXCLUSIVE;
	if (folio_is_device_private(folio)) {
		if (is_writable_migration_entry(entry))
			entry = make_writable_device_private_entry(page_to_pfn(page));
		else
			entry = make_readable_device_private_entry(page_to_pfn(page));
		pte = swp_entry_to_pte(entry);
		if (pte_swp_soft_dirty(old))
			pte = pte_swp_mksoft_dirty(pte);
		if (pte_swp_uffd_wp(old))
			pte = pte_swp_mkuffd_wp(pte);
	} else {
		pte = mk_pte(page, READ_ONCE(vma->vm_page_prot));
		if (!is_migration_entry_young(entry))
			pte = pte_mkold(pte);
		if (is_migration_entry_dirty(entry) && folio_test_dirty(folio))
			pte = pte_mkdirty(pte);
		if (pte_swp_soft_dirty(old))
			pte = pte_mksoft_dirty(pte);
		else
			pte = pte_clear_soft_dirty(pte);
		if (is_writable_migration_entry(entry))
			pte = pte_mkwrite(pte, vma);
		else if (pte_swp_uffd_wp(old))
			pte = pte_mkuffd_wp(pte);
	}

	/* User memory is charged: a charge lost on the way shows here. */
	VM_WARN_ON_ONCE_FOLIO(!mem_cgroup_disabled() && !folio_memcg(folio), folio);
	folio_get(folio);
	folio_add_anon_rmap_pte(folio, page, vma, addr, flags);
	set_pte_at(vma->vm_mm, addr, ptep, pte);
	if (pte_present(pte))
		update_mmu_cache(vma, addr, ptep);
}

/*
 * A lruvec lock kept over a run of LRU additions, as vmscan keeps it,
 * and given up every SWAP_CLUSTER_MAX folios so that interrupts
 * are not kept off long.
 */
struct mdev_lru {
	struct lruvec *lruvec;	/* locked, or NULL */
	unsigned int nr;	/* folios since it was taken */
};

static void mdev_lru_unlock(struct mdev_lru *lru)
{
	if (lru->lruvec)
		unlock_page_lruvec_irq(lru->lruvec);
	lru->lruvec = NULL;
	lru->nr = 0;
}

/* Hold the lock of the lruvec @folio goes on. */
static struct lruvec *mdev_lru_lock(struct mdev_lru *lru, struct folio *folio)
{
	if (lru->nr == SWAP_CLUSTER_MAX)
		mdev_lru_unlock(lru);
	lru->nr++;
	lru->lruvec = folio_lruvec_relock_irq(folio, lru->lruvec);
	return lru->lruvec;
}

/*
 * Put the new system folio @folio on the LRU before it is mapped, as
 * folio_add_lru() would, but under the lruvec lock @lru keeps from one folio
 * to the next rather than through the per-CPU batch and its extra
 * reference, as vmscan's move_folios_to_lru() does.
 * An anonymous folio outside the swap cache has no mapping that could make
 * it unevictable; one that is mlocked, or was unevictable where it came
 * from, takes the generic way, which sorts it out.
 */
static void mdev_lru_add(struct folio *folio, struct mdev_lru *lru)
{
	if (unlikely(folio_test_mlocked(folio) || folio_test_unevictable(folio))) {
		mdev_lru_unlock(lru);
		folio_add_lru(folio);
		return;
	}
	/*
	 * Like folio_add_lru(): with MGLRU, a page coming back on a fault
	 * (migrate_to_ram()) joins the youngest generation.
	 */
	if (lru_gen_enabled() && lru_gen_in_fault() &&
	    !(current->flags & PF_MEMALLOC))
		folio_set_active(folio);
	lruvec_add_folio(mdev_lru_lock(lru, folio), folio);
	folio_set_lru(folio);
}

/*
 * Put back every MDEV_PFN_LOCAL entry of @migrate: one pte lock per PMD, no
 * rmap walk. Entries done lose MDEV_PFN_UNMAPPED; any left (no page table
 * found) go through remove_migration_ptes() as usual. With @to_lru, a new
 * system page goes on the LRU just before it is mapped.
 */
static void mdev_remap_local(struct migrate_vma *migrate, bool to_lru)
{
	struct vm_area_struct *vma = migrate->vma;
	unsigned long *src = migrate->src, *dst = migrate->dst;
	struct mdev_lru lru = { };
	unsigned long i = 0, addr, end;
	pte_t *first, *ptep;
	spinlock_t *ptl;	/* pte lock */
	pmd_t *pmdp;

	while (i < migrate->npages) {
		if (!(src[i] & MDEV_PFN_LOCAL)) {
			i++;
			continue;
		}
		addr = migrate->start + (i << PAGE_SHIFT);
		end = pmd_addr_end(addr, migrate->end);
		pmdp = mm_find_pmd(vma->vm_mm, addr);
		first = pmdp ? pte_offset_map_lock(vma->vm_mm, pmdp, addr, &ptl) :
			NULL;
		if (!first) {
			i += (end - addr) >> PAGE_SHIFT;
			continue;
		}
		for (ptep = first; addr < end; addr += PAGE_SIZE, ptep++, i++) {
			unsigned long mpfn = src[i];
			struct page *newpage;

			if (!(mpfn & MDEV_PFN_LOCAL))
				continue;
			newpage = migrate_pfn_to_page(dst[i]);
			if (!(mpfn & MIGRATE_PFN_MIGRATE) || !newpage)
				newpage = migrate_pfn_to_page(mpfn);
			else if (to_lru && !is_zone_device_page(newpage))
				mdev_lru_add(page_folio(newpage), &lru);
			mdev_remap_pte(vma, addr, ptep, newpage,
				       mpfn >> MIGRATE_PFN_SHIFT);
			src[i] = mpfn & ~(MDEV_PFN_LOCAL | MDEV_PFN_UNMAPPED);
		}
		mdev_lru_unlock(&lru);
		if (vma->vm_flags & VM_LOCKED)
			mlock_drain_local();
		pte_unmap_unlock(first, ptl);
	}
}

/*
 * Finish the entry @mpfn for one page of a THP the collect walk kept whole:
 * mdev_remap_local() has already mapped its destination or the page again.
 * The THP itself goes with its last page: freed when no page of it is mapped
 * any more, else put back on the LRU, and queued for splitting if some of
 * its pages are no longer mapped (moved, or zapped meanwhile) so that their
 * memory is not kept.
 */
static void mdev_finalize_part(unsigned long *mpfn, struct page *newpage)
{
	struct page *page = migrate_pfn_to_page(*mpfn);
	struct folio *folio = page_folio(page);

	if (newpage) {
		unlock_page(newpage);
		put_page(newpage);
	}
	/*
	 * mdev_remap_local() always finds the page table the collect walk
	 * left; should it not, no migration entry may outlive the THP.
	 */
	if (WARN_ON_ONCE(*mpfn & MDEV_PFN_UNMAPPED))
		remove_migration_ptes(folio, folio, 0);
	*mpfn &= ~MDEV_PFN_PRIVATE;
	if (page != folio_page(folio, folio_nr_pages(folio) - 1))
		return;

	if (!folio_mapped(folio)) {
		/*
		 * Isolation left the LRU state flags (PG_active, or what
		 * MGLRU turns its generation into); a freed page has none.
		 */
		folio_clear_active(folio);
		folio_clear_unevictable(folio);
		folio_unlock(folio);
		folio_put(folio);
	} else {
		if (folio_mapcount(folio) < folio_nr_pages(folio))
			deferred_split_folio(folio, true);
		folio_unlock(folio);
		folio_putback_lru(folio);
	}
}

/*
 * The common part of the finalize calls: map the destination (or the
 * source again), unlock and release both pages. @migrate, when there is
 * one, lets pages unmapped by the collect walk be mapped back directly.
 */
static void mdev_finalize(unsigned long *src, unsigned long *dst,
			  unsigned long npages, struct migrate_vma *migrate)
{
	bool to_lru = false, each = migrate && !(migrate->vma->vm_flags & VM_LOCKED);
	unsigned long i;

	/*
	 * New system pages go on the LRU (through this CPU's batch) before
	 * they are mapped, as in migrate.c: each one just before, in a VMA
	 * (@each). Mapping a page in an mlocked VMA mlocks it, which is exact
	 * only for a page already on the LRU: there, and when evicting by
	 * pfn, with no VMA to look at, all go first and the batch is drained.
	 */
	for (i = 0; !each && i < npages; i++) {
		struct page *newpage = migrate_pfn_to_page(dst[i]);

		if ((src[i] & MIGRATE_PFN_VALID) &&
		    (src[i] & MIGRATE_PFN_MIGRATE) && newpage &&
		    !is_zone_device_page(newpage)) {
			folio_add_lru(page_folio(newpage));
			to_lru = true;
		}
	}
	if (to_lru)
		lru_add_drain();
	if (migrate)
		mdev_remap_local(migrate, each);

	for (i = 0; i < npages; i++) {
		struct page *newpage = migrate_pfn_to_page(dst[i]);
		struct page *page = migrate_pfn_to_page(src[i]);
		struct folio *folio, *newfolio;

		if (!page) {
			/* An empty address: mapped by migrate_vma_pages(), or not. */
			if (newpage) {
				unlock_page(newpage);
				put_page(newpage);
			}
			continue;
		}

		folio = page_folio(page);
		if (folio_test_large(folio)) {
			mdev_finalize_part(&src[i], newpage);
			continue;
		}
		if (!(src[i] & MIGRATE_PFN_MIGRATE) || !newpage) {
			if (newpage) {
				unlock_page(newpage);
				put_page(newpage);
			}
			mdev_release(&src[i], !folio_is_zone_device(folio));
			continue;
		}

		newfolio = page_folio(newpage);
		if (src[i] & MDEV_PFN_UNMAPPED) {
			/* In a VMA, a moved page is mapped when it is collected. */
			if (each && !folio_is_zone_device(newfolio))
				folio_add_lru(newfolio);
			remove_migration_ptes(folio, newfolio, 0);
		}
		if (src[i] & MDEV_PFN_ANON_REF)
			put_anon_vma(folio_anon_vma(newfolio));
		src[i] &= ~MDEV_PFN_PRIVATE;
		folio_unlock(folio);
		/* Ours, or the isolation reference: frees the source page. */
		folio_put(folio);
		folio_unlock(newfolio);
		folio_put(newfolio);
	}
}

/**
 * migrate_vma_finalize() - finish a migration started by migrate_vma_setup()
 * @migrate: the migration, after migrate_vma_pages()
 *
 * Replaces every migration entry by the destination page where the move
 * succeeded and by the source page otherwise, with the source contents
 * intact. All pages collected by setup and all destination pages are
 * unlocked and the references taken for the migration dropped; a source
 * page that moved is freed once its last user lets go of it. After this the
 * caller may reuse @migrate.
 *
 * Context: Process context, the mmap lock held as for migrate_vma_setup();
 * may sleep.
 */
void migrate_vma_finalize(struct migrate_vma *migrate)
{
	mdev_finalize(migrate->src, migrate->dst, migrate->npages, migrate);
}
EXPORT_SYMBOL(migrate_vma_finalize);

/**
 * migrate_device_range() - collect a range of device pages for eviction
 * @src_pfns: output, one entry per pfn
 * @start: first pfn of the range, device-private or device-coherent memory
 *	of the caller
 * @npages: number of pfns
 *
 * Every page of the range that is in use is locked, unmapped from all
 * processes that map it (their ptes hold migration entries, so accesses wait)
 * and reported as migrate_pfn(pfn) | MIGRATE_PFN_MIGRATE in @src_pfns. Free
 * pages, pages locked elsewhere and pages with references that cannot be
 * taken away read 0. No VMA is needed. The caller then allocates destination
 * pages, copies, and calls migrate_device_pages() and
 * migrate_device_finalize().
 *
 * Context: Process context, no mmap lock needed; may sleep.
 * Return: 0.
 */
int migrate_device_range(unsigned long *src_pfns, unsigned long start,
			 unsigned long npages)
{
	unsigned long i;

	for (i = 0; i < npages; i++) {
		struct page *page = pfn_to_page(start + i);
		struct folio *folio = page_folio(page);
		struct anon_vma *anon_vma;

		src_pfns[i] = 0;
		if (!folio_try_get(folio))
			continue;
		if (!folio_trylock(folio)) {
			folio_put(folio);
			continue;
		}
		src_pfns[i] = migrate_pfn(start + i) | MIGRATE_PFN_MIGRATE;
		/*
		 * No mmap lock pins the processes mapping the page: keep the
		 * anon_vma alive until the migration entries are gone.
		 */
		if (folio_test_anon(folio) && folio_mapped(folio)) {
			anon_vma = folio_get_anon_vma(folio);
			if (anon_vma)
				src_pfns[i] |= MDEV_PFN_ANON_REF;
		}
	}
	mdev_prepare(src_pfns, npages, NULL, NULL);
	return 0;
}
EXPORT_SYMBOL(migrate_device_range);

/**
 * migrate_device_pages() - switch collected device pages to destinations
 * @src_pfns: the entries filled by migrate_device_range()
 * @dst_pfns: locked destination pages, migrate_pfn() encoded, or 0
 * @npages: number of entries
 *
 * Like migrate_vma_pages() for pages collected by pfn: entries without a
 * destination, or whose page gained a reference since, lose
 * MIGRATE_PFN_MIGRATE and are restored by migrate_device_finalize().
 *
 * Context: Process context; may sleep.
 */
void migrate_device_pages(unsigned long *src_pfns, unsigned long *dst_pfns,
			  unsigned long npages)
{
	mdev_pages(src_pfns, dst_pfns, npages, NULL);
}
EXPORT_SYMBOL(migrate_device_pages);

/**
 * migrate_device_finalize() - finish an eviction by pfn
 * @src_pfns: the entries filled by migrate_device_range()
 * @dst_pfns: the destination entries passed to migrate_device_pages()
 * @npages: number of entries
 *
 * Like migrate_vma_finalize(): every process mapping sees the destination
 * where the move succeeded and the unchanged source otherwise, and all pages
 * are unlocked and released.
 *
 * Context: Process context; may sleep.
 */
void migrate_device_finalize(unsigned long *src_pfns, unsigned long *dst_pfns,
			     unsigned long npages)
{
	mdev_finalize(src_pfns, dst_pfns, npages, NULL);
}
EXPORT_SYMBOL(migrate_device_finalize);

/*
 * migrate_device_coherent_folio() - move a device-coherent folio to system
 * memory, so that it may be pinned long term (see mm/gup.c).
 * @folio: the folio, with a reference the caller gives up
 *
 * Returns 0 when the folio moved, -EBUSY otherwise.
 */
int migrate_device_coherent_folio(struct folio *folio)
{
	unsigned long src = 0, dst = 0;
	struct folio *dfolio;
	bool moved;

	WARN_ON_ONCE(folio_test_large(folio));
	if (!folio_trylock(folio)) {
		folio_put(folio);
		return -EBUSY;
	}
	src = migrate_pfn(folio_pfn(folio)) | MIGRATE_PFN_MIGRATE;
	if (folio_test_anon(folio) && folio_mapped(folio) &&
	    folio_get_anon_vma(folio))
		src |= MDEV_PFN_ANON_REF;
	if (!mdev_prepare(&src, 1, NULL, NULL))
		return -EBUSY;

	dfolio = folio_alloc(GFP_USER | __GFP_NOWARN, 0);
	if (dfolio) {
		folio_lock(dfolio);
		folio_copy(dfolio, folio);
		dst = migrate_pfn(folio_pfn(dfolio));
	}
	mdev_pages(&src, &dst, 1, NULL);
	moved = src & MIGRATE_PFN_MIGRATE;
	mdev_finalize(&src, &dst, 1, NULL);
	return moved ? 0 : -EBUSY;
}
