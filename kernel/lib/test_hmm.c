// SPDX-License-Identifier: GPL-2.0
/*
 * dmirror: a pretend device for testing HMM from userspace.
 *
 * The driver registers four character devices. /dev/hmm_dmirror0 and 1 own
 * device private memory (ZONE_DEVICE pages the CPU cannot touch, standing in
 * for the VRAM of a discrete GPU); /dev/hmm_dmirror2 and 3 own device
 * coherent memory carved from the soft-reserved ranges named by the
 * spm_addr_dev0 and spm_addr_dev1 parameters. Device memory is added in
 * chunks as migrations need it and handed out from a free list.
 *
 * Every open file is one device context bound to the opener's mm. It keeps
 * a mirror page table, laid out like a device MMU's (leaf tables of one page
 * each, found through an xarray), and copies data the way a DMA engine
 * would, through the pages that table names. The
 * ioctls of test_hmm_uapi.h make the context read, write, snapshot, migrate
 * and take exclusive access to ranges of the process.
 *
 * Keeping the mirror coherent with the CPU page table is the whole point of
 * the exercise, and follows one protocol:
 *
 *  - Entries are added only under dmirror->pt_lock, and only after a
 *    successful mmu_interval_read_retry() of a sequence number sampled with
 *    mmu_interval_read_begin() before the CPU page table was looked at.
 *  - dmirror_invalidate() takes pt_lock, bumps the sequence with
 *    mmu_interval_set_seq() and removes every entry in the range. Once it
 *    returns, no entry names a page the CPU is about to unmap or change,
 *    which is why the mirror can hold page pointers without references.
 *  - Data is copied to and from mirrored pages under pt_lock only.
 *  - Nothing under pt_lock may sleep on reclaim, fault, or take the mmap
 *    lock: invalidations run inside all of those. Leaf tables are therefore
 *    allocated with GFP_NOWAIT (or prepared beforehand, with pt_lock
 *    dropped) and user memory is only touched without page faults.
 *
 * The one invalidation the callback ignores is the MMU_NOTIFY_EXCLUSIVE that
 * make_device_exclusive_range() issues on behalf of this very context (the
 * owner tag is the context): it falls between the caller's sequence sample
 * and its retry check, and the caller installs the atomic entries itself.
 *
 * A migration into device memory tags its invalidation with the context
 * as well (pgmap_owner names no pages when only system memory is
 * selected). The callback treats it like any other, but counts every other
 * invalidation in foreign_seq. The migrating context reads foreign_seq, lets
 * mmu_interval_read_begin() wait out invalidations under way, and collects:
 * if foreign_seq is unchanged between migrate_vma_pages() and
 * migrate_vma_finalize(), nothing but the migration itself has touched the
 * range since, and each page that moved will be mapped by its destination,
 * so the context maps the destinations straight from dst[]. An invalidation
 * after that check removes them like any entry. Pages that were in device
 * memory already, or any page when the check fails, are faulted in through
 * hmm_range_fault() afterwards.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/init.h>
#include <linux/ioport.h>
#include <linux/log2.h>
#include <linux/mempolicy.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "test_hmm_uapi.h"

#define DMIRROR_NR_DEVICES	4
#define DMIRROR_NR_PRIVATE	2

/* Device memory grows in 64 MiB chunks, up to 1 GiB per device. */
#define DMIRROR_CHUNK_SIZE	SZ_64M
#define DMIRROR_CHUNK_PAGES	(DMIRROR_CHUNK_SIZE >> PAGE_SHIFT)
#define DMIRROR_MAX_CHUNKS	16
#define DMIRROR_SPM_SIZE	SZ_256M

/* Pages per hmm_range_fault() or exclusive call. */
#define DMIRROR_BATCH		64

/*
 * Pages per migrate_vma call: a PMD's worth, so that a THP can move whole
 * (the core keeps a PMD-mapped THP whole when the range covers it).
 */
#define DMIRROR_MIGRATE_BATCH	(PMD_SIZE >> PAGE_SHIFT)

/* The arrays of one migrate_vma batch, too large for the stack. */
struct dmirror_migrate_buf {
	unsigned long src[DMIRROR_MIGRATE_BATCH];
	unsigned long dst[DMIRROR_MIGRATE_BATCH];
	struct page *pages[DMIRROR_MIGRATE_BATCH];	/* new pages */
	struct page *data[DMIRROR_MIGRATE_BATCH];	/* their backing */
};

/* Bit numbers in dmirror->flags of the HMM_DMIRROR_FLAG_* bits. */
#define DMIRROR_FAIL_ALLOC	ilog2(HMM_DMIRROR_FLAG_FAIL_ALLOC)
#define DMIRROR_HALF_MIGRATE	ilog2(HMM_DMIRROR_FLAG_HALF_MIGRATE)

static unsigned long spm_addr_dev0;
module_param(spm_addr_dev0, ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev0,
		 "Physical address of 256 MiB of soft-reserved memory for /dev/hmm_dmirror2");

static unsigned long spm_addr_dev1;
module_param(spm_addr_dev1, ulong, 0444);
MODULE_PARM_DESC(spm_addr_dev1,
		 "Physical address of 256 MiB of soft-reserved memory for /dev/hmm_dmirror3");

enum dmirror_stat {
	DMIRROR_DEV_PAGES_TOTAL,
	DMIRROR_DEV_PAGES_IN_USE,
	DMIRROR_MIGRATED_TO_DEV,
	DMIRROR_MIGRATED_TO_SYS,
	DMIRROR_CPU_FAULTS,
	DMIRROR_DEVICE_FAULTS,
	DMIRROR_ALLOC_FAILURES,
	DMIRROR_BACKING_CACHED,
	DMIRROR_NR_STATS,
};

struct dmirror_device {
	struct device		dev;
	struct cdev		cdev;
	unsigned int		type;		/* HMM_DMIRROR_MEMORY_DEVICE_* */
	phys_addr_t		spm_base;	/* coherent: the reserved range */

	struct mutex		grow_lock;	/* adding or walking chunks */
	struct dmirror_chunk	*chunks[DMIRROR_MAX_CHUNKS];
	unsigned int		nr_chunks;

	spinlock_t		free_lock;	/* protects the free lists */
	struct page		*free_pages;	/* linked by page->private */
	struct page		*free_backed;	/* private: free, backing kept */
	unsigned long		nr_backed;	/* on free_backed */

	atomic_long_t		stats[DMIRROR_NR_STATS];
};

struct dmirror_chunk {
	struct dev_pagemap	pgmap;
	struct dmirror_device	*mdevice;
	struct resource		*res;		/* private: our physical range */
	struct page		**backing;	/* private: where the data lives */
};

/* One open file: a device context mirroring the opener's address space. */
struct dmirror {
	struct dmirror_device		*mdevice;
	struct mmu_interval_notifier	notifier;
	struct mutex			pt_lock;	/* the mirror: see the top */
	struct xarray			pt;		/* leaf tables, by PT index */
	struct page			*spare_leaf[2];	/* zeroed, for pt_lock holders */
	unsigned long			flags;	/* HMM_DMIRROR_FLAG_* armed */
	/* invalidations other than our own migrations, under pt_lock */
	unsigned long			foreign_seq;
};

static struct dmirror_device *dmirror_devices[DMIRROR_NR_DEVICES];
static dev_t dmirror_devt;

static void dmirror_count(struct dmirror_device *mdevice, enum dmirror_stat stat,
			  long n)
{
	atomic_long_add(n, &mdevice->stats[stat]);
}

/*
 * A mirror entry is 0 (nothing mapped) or the pfn of the page shifted left,
 * with DPTE_VALID and the access the device was granted in the low bits.
 */
#define DPTE_WRITE	BIT(0)
#define DPTE_ATOMIC	BIT(1)
#define DPTE_VALID	BIT(2)
#define DPTE_SHIFT	3

static unsigned long dpte_make(struct page *page, unsigned long access)
{
	return page_to_pfn(page) << DPTE_SHIFT | DPTE_VALID | access;
}

static struct page *dpte_page(unsigned long dpte)
{
	return pfn_to_page(dpte >> DPTE_SHIFT);
}

static unsigned long dpte_access(unsigned long dpte)
{
	return dpte & (DPTE_WRITE | DPTE_ATOMIC);
}

/* ---- device memory ---------------------------------------------------- */

static const struct dev_pagemap_ops dmirror_pgmap_ops;

static struct dmirror_chunk *dmirror_page_chunk(struct page *page)
{
	return container_of(page->pgmap, struct dmirror_chunk, pgmap);
}

static unsigned long dmirror_page_index(struct page *page)
{
	struct dmirror_chunk *chunk = dmirror_page_chunk(page);

	return page_to_pfn(page) - PHYS_PFN(chunk->pgmap.range.start);
}

/*
 * The page holding the bytes of @page: a private device page stands for a
 * system page the driver allocated, which zone_device_data names (NULL
 * while a free page has none); anything else is CPU addressable.
 */
static struct page *dmirror_data_page(struct page *page)
{
	if (is_device_private_page(page) && page->pgmap->ops == &dmirror_pgmap_ops)
		return page->zone_device_data;
	return page;
}

/*
 * Free device pages sit on one of two lists, linked by page->private,
 * which a free device page has no other use for: free_pages, and for
 * private memory free_backed, the pages that still have their backing
 * system page. A private page keeps its backing when it is freed, as a
 * real device keeps its memory, so that the next migration into the
 * device need not allocate one; dmirror_shrinker gives the backing of free
 * pages back when the system runs short of memory.
 */
static void dmirror_free_push(struct dmirror_device *mdevice, struct page *page,
			      bool backed)
{
	spin_lock(&mdevice->free_lock);
	if (backed) {
		set_page_private(page, (unsigned long)mdevice->free_backed);
		mdevice->free_backed = page;
		mdevice->nr_backed++;
	} else {
		set_page_private(page, (unsigned long)mdevice->free_pages);
		mdevice->free_pages = page;
	}
	spin_unlock(&mdevice->free_lock);
}

/*
 * Take up to @n pages off a free list (free_backed if @backed) into @pages;
 * returns how many.
 */
static unsigned long dmirror_free_pop(struct dmirror_device *mdevice,
				      struct page **pages, unsigned long n,
				      bool backed)
{
	struct page **head = backed ? &mdevice->free_backed : &mdevice->free_pages;
	unsigned long got = 0;
	struct page *page;

	spin_lock(&mdevice->free_lock);
	while (got < n && (page = *head)) {
		*head = (struct page *)page_private(page);
		set_page_private(page, 0);
		pages[got++] = page;
	}
	if (backed)
		mdevice->nr_backed -= got;
	spin_unlock(&mdevice->free_lock);
	return got;
}

/* Once none of its pages is in use. */
static void dmirror_chunk_destroy(struct dmirror_chunk *chunk)
{
	unsigned long i;

	for (i = 0; chunk->backing && i < DMIRROR_CHUNK_PAGES; i++)
		if (chunk->backing[i])
			__free_page(chunk->backing[i]);
	if (chunk->res)
		release_mem_region(chunk->res->start, resource_size(chunk->res));
	kvfree(chunk->backing);
	kfree(chunk);
}

/* Map one more chunk of device memory and put its pages on the free list. */
static int dmirror_grow(struct dmirror_device *mdevice)
{
	struct dmirror_chunk *chunk;
	unsigned long pfn, first;
	phys_addr_t base = 0;
	void *ret;
	int err = 0;

	mutex_lock(&mdevice->grow_lock);
	if (READ_ONCE(mdevice->free_pages))
		goto out;	/* someone else grew the device meanwhile */
	if (mdevice->nr_chunks == DMIRROR_MAX_CHUNKS) {
		err = -ENOSPC;
		goto out;
	}
	chunk = kzalloc(sizeof(*chunk), GFP_KERNEL);
	if (!chunk) {
		err = -ENOMEM;
		goto out;
	}
	chunk->mdevice = mdevice;

	if (mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE) {
		chunk->backing = kvcalloc(DMIRROR_CHUNK_PAGES, sizeof(*chunk->backing),
					  GFP_KERNEL);
		chunk->res = request_free_mem_region(&iomem_resource, DMIRROR_CHUNK_SIZE,
						     "hmm_dmirror");
		if (!chunk->backing || IS_ERR(chunk->res)) {
			err = IS_ERR(chunk->res) ? PTR_ERR(chunk->res) : -ENOMEM;
			if (IS_ERR(chunk->res))
				chunk->res = NULL;
			goto fail;
		}
		chunk->pgmap.type = MEMORY_DEVICE_PRIVATE;
		base = chunk->res->start;
	} else {
		if ((mdevice->nr_chunks + 1) * (u64)DMIRROR_CHUNK_SIZE > DMIRROR_SPM_SIZE) {
			err = -ENOSPC;
			goto fail;
		}
		chunk->pgmap.type = MEMORY_DEVICE_COHERENT;
		base = mdevice->spm_base + mdevice->nr_chunks * (u64)DMIRROR_CHUNK_SIZE;
	}
	chunk->pgmap.range.start = base;
	chunk->pgmap.range.end = base + DMIRROR_CHUNK_SIZE - 1;
	chunk->pgmap.nr_range = 1;
	chunk->pgmap.ops = &dmirror_pgmap_ops;
	chunk->pgmap.owner = mdevice;

	ret = memremap_pages(&chunk->pgmap, numa_node_id());
	if (IS_ERR(ret)) {
		err = PTR_ERR(ret);
		goto fail;
	}
	mdevice->chunks[mdevice->nr_chunks++] = chunk;

	first = PHYS_PFN(base);
	for (pfn = first + DMIRROR_CHUNK_PAGES; pfn-- > first;) {
		pfn_to_page(pfn)->zone_device_data = NULL;
		dmirror_free_push(mdevice, pfn_to_page(pfn), false);
	}
	dmirror_count(mdevice, DMIRROR_DEV_PAGES_TOTAL, DMIRROR_CHUNK_PAGES);
	goto out;

fail:
	dev_warn(&mdevice->dev, "cannot add device memory at %pa: %d\n", &base, err);
	dmirror_chunk_destroy(chunk);
out:
	mutex_unlock(&mdevice->grow_lock);
	return err;
}

/*
 * Allocate @n device pages for @dmirror into @pages, each returned locked
 * with one reference as migrate_vma_pages() wants its destination pages,
 * and backed by a system page for private memory (@data: room for @n).
 * All or nothing: returns 0, or -ENOMEM with nothing allocated. Private
 * pages that kept their backing go first; the others get theirs from the
 * bulk allocator.
 */
static int dmirror_alloc_pages(struct dmirror *dmirror, struct page **pages,
			       struct page **data, unsigned long n)
{
	struct dmirror_device *mdevice = dmirror->mdevice;
	bool private = mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
	unsigned long i, backed = 0, got, need;

	if (WARN_ON_ONCE(n > DMIRROR_MIGRATE_BATCH))
		return -ENOMEM;
	memset(data, 0, n * sizeof(*data));
	got = 0;
	if (test_and_clear_bit(DMIRROR_FAIL_ALLOC, &dmirror->flags))
		goto fail;

	if (private)
		backed = dmirror_free_pop(mdevice, pages, n, true);
	got = backed;
	while (got < n) {
		got += dmirror_free_pop(mdevice, pages + got, n - got, false);
		if (got < n && dmirror_grow(mdevice))
			goto fail;
	}
	need = private ? n - backed : 0;
	if (need && alloc_pages_bulk_array(GFP_HIGHUSER, need, data) < need) {
		for (i = 0; i < need; i++) {
			if (!data[i])
				data[i] = alloc_page(GFP_HIGHUSER);
			if (!data[i])
				goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		if (private && i >= backed) {
			dmirror_page_chunk(pages[i])->backing[dmirror_page_index(pages[i])] =
				data[i - backed];
			pages[i]->zone_device_data = data[i - backed];
		}
		zone_device_page_init(pages[i]);
	}
	dmirror_count(mdevice, DMIRROR_DEV_PAGES_IN_USE, n);
	return 0;

fail:
	for (i = 0; i < n; i++)
		if (data[i])
			__free_page(data[i]);
	while (got) {
		got--;
		dmirror_free_push(mdevice, pages[got], got < backed);
	}
	dmirror_count(mdevice, DMIRROR_ALLOC_FAILURES, 1);
	return -ENOMEM;
}

/* The last reference is gone: the page is free, its backing stays. */
static void dmirror_page_free(struct page *page)
{
	struct dmirror_chunk *chunk = dmirror_page_chunk(page);
	struct dmirror_device *mdevice = chunk->mdevice;

	/* The last reference goes with the last mapping. */
	VM_WARN_ON_ONCE_PAGE(page_mapped(page), page);

	dmirror_count(mdevice, DMIRROR_DEV_PAGES_IN_USE, -1);
	dmirror_free_push(mdevice, page, !!chunk->backing);
}

static struct shrinker *dmirror_shrinker;

static unsigned long dmirror_shrink_count(struct shrinker *shrinker,
					  struct shrink_control *sc)
{
	unsigned long n = 0;
	unsigned int id;

	for (id = 0; id < DMIRROR_NR_PRIVATE; id++)
		if (dmirror_devices[id])
			n += READ_ONCE(dmirror_devices[id]->nr_backed);
	return n ?: SHRINK_EMPTY;
}

/* Free the backing of up to sc->nr_to_scan free private pages. */
static unsigned long dmirror_shrink_scan(struct shrinker *shrinker,
					 struct shrink_control *sc)
{
	struct dmirror_device *mdevice;
	struct page *pages[64];
	unsigned long freed = 0, got, i;
	unsigned int id;

	for (id = 0; id < DMIRROR_NR_PRIVATE; id++) {
		mdevice = dmirror_devices[id];
		while (mdevice && freed < sc->nr_to_scan) {
			got = dmirror_free_pop(mdevice, pages,
					       min_t(unsigned long, ARRAY_SIZE(pages),
						     sc->nr_to_scan - freed),
					       true);
			if (!got)
				break;
			for (i = 0; i < got; i++) {
				struct dmirror_chunk *chunk = dmirror_page_chunk(pages[i]);
				unsigned long index = dmirror_page_index(pages[i]);

				__free_page(chunk->backing[index]);
				chunk->backing[index] = NULL;
				pages[i]->zone_device_data = NULL;
				dmirror_free_push(mdevice, pages[i], false);
			}
			freed += got;
		}
	}
	return freed ?: SHRINK_STOP;
}

/* ---- the mirror page table -------------------------------------------- */

/*
 * The mirror has the shape of a device MMU's page table: leaf tables of
 * DMIRROR_PT_ENTRIES entries, one page each, every one covering
 * DMIRROR_PT_SPAN of the address space (2 MiB on x86-64), found through an
 * xarray indexed by address >> DMIRROR_PT_SHIFT. A run of pages costs one
 * lookup per leaf and one plain load or store per entry. page->private of a
 * leaf counts its non-zero entries; the leaf goes when its last entry does.
 * Leaves change only under pt_lock, so a pointer to one stays good while
 * pt_lock is held.
 */
#define DMIRROR_PT_ENTRIES	(PAGE_SIZE / sizeof(unsigned long))
#define DMIRROR_PT_SHIFT	(PAGE_SHIFT + ilog2(DMIRROR_PT_ENTRIES))
#define DMIRROR_PT_SPAN		BIT(DMIRROR_PT_SHIFT)

static unsigned long dmirror_pt_slot(unsigned long addr)
{
	return (addr >> PAGE_SHIFT) & (DMIRROR_PT_ENTRIES - 1);
}

static unsigned long *dmirror_leaf(struct dmirror *dmirror, unsigned long addr)
{
	return xa_load(&dmirror->pt, addr >> DMIRROR_PT_SHIFT);
}

/* The entry for @addr, 0 if none. */
static unsigned long dmirror_pt_get(struct dmirror *dmirror, unsigned long addr)
{
	unsigned long *leaf = dmirror_leaf(dmirror, addr);

	return leaf ? leaf[dmirror_pt_slot(addr)] : 0;
}

static __always_inline void dmirror_pt_set(unsigned long *leaf,
					   unsigned long addr, unsigned long dpte)
{
	unsigned long *slot = &leaf[dmirror_pt_slot(addr)];

	if (!*slot)
		virt_to_page(leaf)->private++;
	*slot = dpte;
}

/* Keep an empty (zeroed) leaf page for the next insertion, or free it. */
static void dmirror_leaf_put(struct dmirror *dmirror, struct page *page)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(dmirror->spare_leaf); i++) {
		if (!dmirror->spare_leaf[i]) {
			dmirror->spare_leaf[i] = page;
			return;
		}
	}
	__free_page(page);
}

/*
 * The leaf for @addr, added if missing. Returns NULL when no memory can be
 * had without sleeping (dmirror_pt_reserve() prepares some).
 */
static unsigned long *dmirror_leaf_get(struct dmirror *dmirror, unsigned long addr)
{
	unsigned long *leaf = dmirror_leaf(dmirror, addr);
	struct page *page = NULL;
	unsigned int i;

	lockdep_assert_held(&dmirror->pt_lock);
	if (leaf)
		return leaf;
	for (i = 0; i < ARRAY_SIZE(dmirror->spare_leaf) && !page; i++) {
		page = dmirror->spare_leaf[i];
		dmirror->spare_leaf[i] = NULL;
	}
	if (!page)
		page = alloc_page(GFP_NOWAIT | __GFP_NOWARN | __GFP_ZERO);
	if (!page)
		return NULL;
	set_page_private(page, 0);
	leaf = page_address(page);
	if (xa_is_err(xa_store(&dmirror->pt, addr >> DMIRROR_PT_SHIFT, leaf,
			       GFP_NOWAIT | __GFP_NOWARN))) {
		dmirror_leaf_put(dmirror, page);
		return NULL;
	}
	return leaf;
}

/*
 * Point *@leaf at the leaf for @addr, added if missing, unless it is there
 * already (*@index says which leaf *@leaf is). Returns false when no leaf
 * can be had without sleeping.
 */
static bool dmirror_leaf_follow(struct dmirror *dmirror, unsigned long addr,
				unsigned long **leaf, unsigned long *index)
{
	if (*leaf && addr >> DMIRROR_PT_SHIFT == *index)
		return true;
	*index = addr >> DMIRROR_PT_SHIFT;
	*leaf = dmirror_leaf_get(dmirror, addr);
	return *leaf;
}

/*
 * Prepare, with pt_lock not held and sleeping allowed, what the leaves of
 * [start, end) (at most two) need: spare leaf pages and their xarray slots.
 */
static int dmirror_pt_reserve(struct dmirror *dmirror, unsigned long start,
			      unsigned long end)
{
	struct page *pages[ARRAY_SIZE(dmirror->spare_leaf)];
	unsigned int i;
	int ret = 0;

	for (i = 0; i < ARRAY_SIZE(pages); i++) {
		pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!pages[i])
			ret = -ENOMEM;
	}
	mutex_lock(&dmirror->pt_lock);
	for (i = 0; i < ARRAY_SIZE(pages); i++)
		if (pages[i])
			dmirror_leaf_put(dmirror, pages[i]);
	mutex_unlock(&dmirror->pt_lock);
	return ret ?: xa_reserve(&dmirror->pt, start >> DMIRROR_PT_SHIFT, GFP_KERNEL) ?:
		      xa_reserve(&dmirror->pt, (end - 1) >> DMIRROR_PT_SHIFT, GFP_KERNEL);
}

/*
 * Remove the entries of [start, end) from the mirror. Only leaves that
 * exist are visited, so unmapping a whole address space costs what is
 * mirrored, and a leaf the range covers entirely goes without being read.
 * Never sleeps: invalidations call it.
 */
static void dmirror_pt_zap(struct dmirror *dmirror, unsigned long start,
			   unsigned long end)
{
	unsigned long index, *leaf;

	lockdep_assert_held(&dmirror->pt_lock);
	xa_for_each_range(&dmirror->pt, index, leaf, start >> DMIRROR_PT_SHIFT,
			  (end - 1) >> DMIRROR_PT_SHIFT) {
		unsigned long base = index << DMIRROR_PT_SHIFT;
		unsigned long first = max(start, base);
		unsigned long last = min(end - 1, base + DMIRROR_PT_SPAN - 1);
		struct page *page = virt_to_page(leaf);
		unsigned long i, n;

		if (first == base && last == base + DMIRROR_PT_SPAN - 1) {
			xa_erase(&dmirror->pt, index);
			__free_page(page);
			continue;
		}
		n = (last >> PAGE_SHIFT) - (first >> PAGE_SHIFT) + 1;
		for (i = dmirror_pt_slot(first); n--; i++) {
			page->private -= !!leaf[i];
			leaf[i] = 0;
		}
		if (!page->private) {
			xa_erase(&dmirror->pt, index);
			dmirror_leaf_put(dmirror, page);
		}
	}
}

/* Drop every leaf: the file is closing. */
static void dmirror_pt_destroy(struct dmirror *dmirror)
{
	unsigned long index, *leaf;
	unsigned int i;

	xa_for_each(&dmirror->pt, index, leaf)
		__free_page(virt_to_page(leaf));
	xa_destroy(&dmirror->pt);
	for (i = 0; i < ARRAY_SIZE(dmirror->spare_leaf); i++)
		if (dmirror->spare_leaf[i])
			__free_page(dmirror->spare_leaf[i]);
}

/*
 * Map the pages of @pages that are not NULL, the first at @addr, with
 * @access. Returns how many were mapped, or -ENOMEM when a leaf could not
 * be had (some may be mapped then).
 */
static long dmirror_pt_set_pages(struct dmirror *dmirror, unsigned long addr,
				 struct page **pages, unsigned long n,
				 unsigned long access)
{
	unsigned long i, index = 0, *leaf = NULL;
	long mapped = 0;

	lockdep_assert_held(&dmirror->pt_lock);
	for (i = 0; i < n; i++, addr += PAGE_SIZE) {
		if (!pages[i])
			continue;
		if (!dmirror_leaf_follow(dmirror, addr, &leaf, &index))
			return -ENOMEM;
		dmirror_pt_set(leaf, addr, dpte_make(pages[i], access));
		mapped++;
	}
	return mapped;
}

static __always_inline bool dmirror_owns(struct dmirror_device *mdevice,
					 struct page *page)
{
	return (is_device_private_page(page) || is_device_coherent_page(page)) &&
	       page->pgmap->owner == mdevice;
}

/*
 * Map the @n pages from @addr on that hmm_range_fault() reported in @hpfns
 * (all valid, or only those in @only's memory when @only is set). Returns 0
 * or -ENOMEM; on failure some of the entries may be stored.
 */
static int dmirror_pt_store(struct dmirror *dmirror, unsigned long addr,
			    const unsigned long *hpfns, unsigned long n,
			    struct dmirror_device *only)
{
	unsigned long i, index = 0, *leaf = NULL;

	lockdep_assert_held(&dmirror->pt_lock);
	for (i = 0; i < n; i++, addr += PAGE_SIZE) {
		unsigned long hpfn = hpfns[i];
		struct page *page = hmm_pfn_to_page(hpfn);

		if (only && (!(hpfn & HMM_PFN_VALID) || !dmirror_owns(only, page)))
			continue;
		if (!dmirror_leaf_follow(dmirror, addr, &leaf, &index))
			return -ENOMEM;
		dmirror_pt_set(leaf, addr,
			       dpte_make(page, hpfn & HMM_PFN_WRITE ? DPTE_WRITE : 0));
	}
	return 0;
}

static bool dmirror_invalidate(struct mmu_interval_notifier *mni,
			       const struct mmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct dmirror *dmirror = container_of(mni, struct dmirror, notifier);

	if (range->event == MMU_NOTIFY_EXCLUSIVE && range->owner == dmirror)
		return true;

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&dmirror->pt_lock);
	else if (!mutex_trylock(&dmirror->pt_lock))
		return false;

	mmu_interval_set_seq(mni, cur_seq);
	if (range->event != MMU_NOTIFY_MIGRATE || range->owner != dmirror)
		dmirror->foreign_seq++;
	dmirror_pt_zap(dmirror, range->start, range->end);
	mutex_unlock(&dmirror->pt_lock);
	return true;
}

static const struct mmu_interval_notifier_ops dmirror_notifier_ops = {
	.invalidate = dmirror_invalidate,
};

/*
 * Run hmm_range_fault() on @range until the result is stable, and return 0
 * with pt_lock held and range->hmm_pfns valid until it is dropped, or an
 * error with the lock not held.
 */
static int dmirror_range_lock(struct dmirror *dmirror, struct hmm_range *range)
{
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct mm_struct *mm = dmirror->notifier.mm;
	int ret;

	for (;;) {
		if (fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, timeout))
			return -EBUSY;
		range->notifier_seq = mmu_interval_read_begin(range->notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY)
			continue;
		if (ret)
			return ret;

		mutex_lock(&dmirror->pt_lock);
		if (!mmu_interval_read_retry(range->notifier, range->notifier_seq))
			return 0;
		mutex_unlock(&dmirror->pt_lock);
	}
}

static long dmirror_migrate_home(struct dmirror *dmirror, unsigned long start,
				 unsigned long end, bool for_write);

/*
 * Make the device fault [start, end) in, readable or writable, and map the
 * result in the mirror.
 */
static int dmirror_fault(struct dmirror *dmirror, unsigned long start,
			 unsigned long end, bool write)
{
	unsigned long pfns[DMIRROR_BATCH];
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.hmm_pfns = pfns,
		.default_flags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner = dmirror->mdevice,
	};
	bool reserved, homed, readonly;
	unsigned long addr, i, n;
	long ret;

	for (addr = start; addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(end, addr + DMIRROR_BATCH * PAGE_SIZE);
		homed = false;
		reserved = false;
retry:
		ret = dmirror_range_lock(dmirror, &range);
		if (ret)
			return ret;
		readonly = false;
		n = (range.end - addr) >> PAGE_SHIFT;
		for (i = 0; write && i < n; i++)
			readonly |= !(pfns[i] & HMM_PFN_WRITE);
		ret = dmirror_pt_store(dmirror, addr, pfns, n, NULL);
		mutex_unlock(&dmirror->pt_lock);
		if (ret == -ENOMEM && !reserved) {
			/*
			 * Out of atomic memory for leaf tables: prepare them
			 * while sleeping is allowed, then try again.
			 */
			reserved = true;
			ret = dmirror_pt_reserve(dmirror, addr, range.end);
			if (!ret)
				goto retry;
		}
		if (ret)
			return ret;
		if (readonly) {
			/*
			 * hmm_range_fault() reports our own private pages as
			 * they are, read-only ones too (COW after fork, or a
			 * read-only vma). Writing one takes the CPU's write
			 * fault in system memory: bring the range home and
			 * fault it again.
			 */
			if (homed)
				return -EBUSY;
			homed = true;
			ret = dmirror_migrate_home(dmirror, range.start, range.end, true);
			if (ret < 0)
				return ret;
			goto retry;
		}
		dmirror_count(dmirror->mdevice, DMIRROR_DEVICE_FAULTS,
			      (range.end - addr) >> PAGE_SHIFT);
	}
	return 0;
}

/*
 * A device write leaves no dirty bit in the CPU's pte: say it on the folio,
 * or reclaim may drop a system page that MADV_FREE made clean, new contents
 * and all. Called with pt_lock held, so that an unmap cannot look at the
 * dirty state before we are done. Device memory is never reclaimed.
 */
static void dmirror_written(struct page *page)
{
	if (!is_zone_device_page(page))
		folio_mark_dirty(page_folio(page));
}

/*
 * The device copies between the mirror and the user's buffer directly, as a
 * DMA engine would, with page faults disabled: nothing under pt_lock may
 * fault (see the top). Returns 0, or -EFAULT if the part of the buffer at
 * @ubuf is not mapped as the copy needs.
 */
static __always_inline int dmirror_copy_user(void *kaddr, char __user *ubuf,
					     bool write)
{
	unsigned long left;

	pagefault_disable();
	if (write)
		left = __copy_from_user_inatomic(kaddr, ubuf, PAGE_SIZE);
	else
		left = __copy_to_user_inatomic(ubuf, kaddr, PAGE_SIZE);
	pagefault_enable();
	return left ? -EFAULT : 0;
}

/*
 * Copy between @ubuf and the pages the mirror maps from @start on, stopping
 * at the first page not mapped (or not writable, for a write), or at the
 * first page whose part of @ubuf is not mapped (*@user_fault set). Returns
 * the address reached.
 */
static unsigned long dmirror_pt_copy(struct dmirror *dmirror, unsigned long start,
				     unsigned long end, char __user *ubuf, bool write,
				     bool *user_fault)
{
	unsigned long addr, *leaf = NULL;

	lockdep_assert_held(&dmirror->pt_lock);
	for (addr = start; addr < end; ) {
		unsigned long entry;
		char *kaddr;
		int ret;

		if (!leaf || !dmirror_pt_slot(addr)) {
			leaf = dmirror_leaf(dmirror, addr);
			if (!leaf)
				break;
		}
		entry = leaf[dmirror_pt_slot(addr)];
		if (!entry)
			break;
		if (write && !(dpte_access(entry) & DPTE_WRITE))
			break;
		kaddr = kmap_local_page(dmirror_data_page(dpte_page(entry)));
		ret = dmirror_copy_user(kaddr, ubuf, write);
		kunmap_local(kaddr);
		if (ret) {
			*user_fault = true;
			break;
		}
		if (write)
			dmirror_written(dpte_page(entry));
		addr += PAGE_SIZE;
		ubuf += PAGE_SIZE;
	}
	return addr;
}

/*
 * Copy the page at @addr through the kernel page @bounce, for a buffer page
 * the direct copy could not reach: the user side of the copy is done with
 * pt_lock dropped, where it may fault. Returns 0, -ENOENT if the mirror no
 * longer maps the page as needed, or -EFAULT.
 */
static int dmirror_copy_bounced(struct dmirror *dmirror, unsigned long addr,
				char __user *ubuf, char *bounce, bool write)
{
	unsigned long entry;
	char *kaddr;
	int ret = 0;

	if (write && copy_from_user(bounce, ubuf, PAGE_SIZE))
		return -EFAULT;
	mutex_lock(&dmirror->pt_lock);
	entry = dmirror_pt_get(dmirror, addr);
	if (!entry || (write && !(dpte_access(entry) & DPTE_WRITE))) {
		ret = -ENOENT;
	} else {
		kaddr = kmap_local_page(dmirror_data_page(dpte_page(entry)));
		if (write)
			memcpy(kaddr, bounce, PAGE_SIZE);
		else
			memcpy(bounce, kaddr, PAGE_SIZE);
		kunmap_local(kaddr);
		if (write)
			dmirror_written(dpte_page(entry));
	}
	mutex_unlock(&dmirror->pt_lock);
	if (!ret && !write && copy_to_user(ubuf, bounce, PAGE_SIZE))
		ret = -EFAULT;
	return ret;
}

/* ---- ioctls ----------------------------------------------------------- */

/*
 * Device access to [start, end) through the mirror: faulting it in when
 * @fault, else failing with -ENOENT on the first page the mirror lacks.
 */
static int dmirror_access(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			  unsigned long start, unsigned long end, bool write,
			  bool fault)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long addr = start, next, done;
	char *bounce = NULL;
	bool user_fault;
	int ret = 0;

	if (!access_ok(uptr, end - start))
		return -EFAULT;
	while (addr < end) {
		/* pt_lock is held for at most DMIRROR_BATCH pages at a time. */
		next = min(end, addr + DMIRROR_BATCH * PAGE_SIZE);
		user_fault = false;
		mutex_lock(&dmirror->pt_lock);
		done = dmirror_pt_copy(dmirror, addr, next, uptr + (addr - start),
				       write, &user_fault);
		mutex_unlock(&dmirror->pt_lock);
		cmd->cpages += (done - addr) >> PAGE_SHIFT;
		addr = done;
		if (addr == next)
			continue;
		if (user_fault) {
			if (!bounce)
				bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
			ret = bounce ? dmirror_copy_bounced(dmirror, addr,
							    uptr + (addr - start),
							    bounce, write) : -ENOMEM;
			if (!ret) {
				cmd->cpages++;
				addr += PAGE_SIZE;
				continue;
			}
			if (ret != -ENOENT)
				break;
			ret = 0;
		}
		if (!fault) {
			ret = -ENOENT;
			break;
		}
		/* Fault in all the rest: one device fault per miss. */
		ret = dmirror_fault(dmirror, addr, end, write);
		if (ret)
			break;
		cmd->faults++;
	}
	kfree(bounce);
	return ret;
}

static u8 dmirror_prot(struct dmirror *dmirror, unsigned long hpfn)
{
	unsigned int shift;
	struct page *page;
	u8 prot;

	if (hpfn & HMM_PFN_ERROR)
		return HMM_DMIRROR_PROT_ERROR;
	if (!(hpfn & HMM_PFN_VALID))
		return HMM_DMIRROR_PROT_NONE;

	page = hmm_pfn_to_page(hpfn);
	prot = hpfn & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
	/* System memory first: one look at the page's zone. */
	if (!is_zone_device_page(page)) {
		if (is_zero_pfn(hpfn & ~HMM_PFN_FLAGS))
			prot |= HMM_DMIRROR_PROT_ZERO;
	} else if (is_device_private_page(page)) {
		prot |= page->pgmap->owner == dmirror->mdevice ?
			HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL :
			HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	} else if (is_device_coherent_page(page)) {
		prot |= page->pgmap->owner == dmirror->mdevice ?
			HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL :
			HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
	}

	if (likely(!hmm_pfn_to_map_order(hpfn)))
		return prot;
	shift = hmm_pfn_to_map_order(hpfn) + PAGE_SHIFT;
	if (shift == PMD_SHIFT)
		prot |= HMM_DMIRROR_PROT_PMD;
	else if (shift == PUD_SHIFT)
		prot |= HMM_DMIRROR_PROT_PUD;
	return prot;
}

/*
 * Pages whose entries differ only by consecutive pfns share their answer of
 * dmirror_prot() within one subsection of memory: memory is added and
 * removed (memremap_pages() too) in aligned subsections, so zone and pgmap
 * cannot change inside one.
 */
#ifdef CONFIG_SPARSEMEM
#define DMIRROR_PFN_RUN		PAGES_PER_SUBSECTION
#else
#define DMIRROR_PFN_RUN		1UL
#endif

/*
 * How many entries of @pfns from @i on (below @n) get the same answer from
 * dmirror_prot() as pfns[@i]: a run of equal entries without a page, or a
 * run of consecutive pfns with equal flags (a huge mapping, or small pages
 * that happen to be contiguous) inside one DMIRROR_PFN_RUN block, which
 * does not include the zero page.
 */
static unsigned long dmirror_prot_run(const unsigned long *pfns, unsigned long i,
				      unsigned long n)
{
	unsigned long first = pfns[i], pfn, j;

	if (!(first & HMM_PFN_VALID)) {
		for (j = i + 1; j < n && pfns[j] == first; j++)
			;
		return j - i;
	}
	pfn = first & ~HMM_PFN_FLAGS;
	if (is_zero_pfn(pfn))
		return 1;
	for (j = i + 1; j < n; j++) {
		pfn++;
		if (pfns[j] != first + (j - i) || !(pfn & (DMIRROR_PFN_RUN - 1)) ||
		    is_zero_pfn(pfn))
			break;
	}
	return j - i;
}

/* Pages per hmm_range_fault() of a snapshot: one page table's worth. */
#define DMIRROR_SNAPSHOT_BATCH	512

/* What the CPU page table holds for each page, without faulting anything. */
static int dmirror_snapshot(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			    unsigned long start, unsigned long end)
{
	u8 __user *uptr = u64_to_user_ptr(cmd->ptr);
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.dev_private_owner = dmirror->mdevice,
	};
	unsigned long addr, n, i, k, *pfns;
	int ret = 0;
	u8 *prot;

	/*
	 * A snapshot does little per page: batches as large as a page table
	 * keep the cost of each walk from the top of the tree small.
	 */
	n = min((end - start) >> PAGE_SHIFT, (unsigned long)DMIRROR_SNAPSHOT_BATCH);
	pfns = kmalloc_array(n, sizeof(*pfns) + sizeof(*prot), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	prot = (u8 *)(pfns + n);
	range.hmm_pfns = pfns;

	for (addr = start; addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(end, addr + DMIRROR_SNAPSHOT_BATCH * PAGE_SIZE);
		n = (range.end - addr) >> PAGE_SHIFT;
		ret = dmirror_range_lock(dmirror, &range);
		if (ret)
			break;
		for (i = 0; i < n; i += k) {
			k = dmirror_prot_run(pfns, i, n);
			if (k == 1)
				prot[i] = dmirror_prot(dmirror, pfns[i]);
			else
				memset(prot + i, dmirror_prot(dmirror, pfns[i]), k);
		}
		mutex_unlock(&dmirror->pt_lock);
		if (copy_to_user(uptr + ((addr - start) >> PAGE_SHIFT), prot, n)) {
			ret = -EFAULT;
			break;
		}
		cmd->cpages += n;
	}
	kfree(pfns);
	return ret;
}

/*
 * Migration commands work on whole VMAs the process can read: a range with
 * a hole or an inaccessible part is refused before anything moves.
 */
static int dmirror_check_vmas(struct mm_struct *mm, unsigned long start,
			      unsigned long end)
{
	struct vm_area_struct *vma;
	unsigned long addr = start;
	int ret = 0;

	mmap_read_lock(mm);
	while (addr < end) {
		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & VM_READ) ||
		    (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP))) {
			ret = -EINVAL;
			break;
		}
		addr = vma->vm_end;
	}
	mmap_read_unlock(mm);
	return ret;
}

/*
 * Fill the destination of a migration into device memory: a device page per
 * source the core collected, holding a copy of the source (or zeroes where
 * there was none). If a page cannot be allocated, nothing is filled and the
 * whole batch stays where it is: returns -ENOMEM.
 */
static int dmirror_fill_dev_pages(struct dmirror *dmirror, struct migrate_vma *args,
				  struct dmirror_migrate_buf *buf)
{
	/* HMM_DMIRROR_FLAG_HALF_MIGRATE: odd entries only (step 2 from 1). */
	unsigned long step = test_and_clear_bit(DMIRROR_HALF_MIGRATE, &dmirror->flags) ?
			     2 : 1;
	struct page **pages = buf->pages;
	unsigned long i, n = 0, nr = args->cpages;

	memset(args->dst, 0, args->npages * sizeof(*args->dst));
	/* Setup counted the entries that move in cpages. */
	if (step != 1)
		for (i = step - 1, nr = 0; i < args->npages; i += step)
			nr += !!(args->src[i] & MIGRATE_PFN_MIGRATE);
	/* Nothing is filled unless every page can be: the batch stays. */
	if (nr && dmirror_alloc_pages(dmirror, pages, buf->data, nr))
		return -ENOMEM;
	for (i = step - 1; i < args->npages && n < nr; i += step) {
		struct page *spage = migrate_pfn_to_page(args->src[i]);
		struct page *dpage;

		if (!(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		dpage = pages[n++];
		if (spage)
			copy_highpage(dmirror_data_page(dpage), spage);
		else
			clear_highpage(dmirror_data_page(dpage));
		args->dst[i] = migrate_pfn(page_to_pfn(dpage)) |
			       (args->src[i] & MIGRATE_PFN_WRITE);
	}
	/* Pages left over mean setup miscounted: give them back. */
	if (WARN_ON_ONCE(n < nr)) {
		for (; n < nr; n++) {
			unlock_page(pages[n]);
			put_page(pages[n]);
		}
	}
	return 0;
}

/*
 * Fill @pfns with the mirror's entries for [start, end) as hmm_range_fault()
 * would report them, if every page there is mirrored; else return false.
 */
static bool dmirror_pt_pfns(struct dmirror *dmirror, unsigned long start,
			    unsigned long end, unsigned long *pfns)
{
	unsigned long addr, entry, *leaf = NULL;

	lockdep_assert_held(&dmirror->pt_lock);
	for (addr = start; addr < end; addr += PAGE_SIZE, pfns++) {
		if (!leaf || !dmirror_pt_slot(addr)) {
			leaf = dmirror_leaf(dmirror, addr);
			if (!leaf)
				return false;
		}
		entry = leaf[dmirror_pt_slot(addr)];
		if (!entry)
			return false;
		*pfns = entry >> DPTE_SHIFT | HMM_PFN_VALID |
			(entry & DPTE_WRITE ? HMM_PFN_WRITE : 0);
	}
	return true;
}

/*
 * The outcome of a migration into device memory, as the device sees it:
 * map every page of [start, end) that now lives in this device's memory,
 * whether it just moved or was there already, count it in cmd->cpages and
 * copy the range to the user buffer. Runs of pages the migration mapped
 * are read from the mirror; the others are faulted in. Returns -ENOENT if
 * some page is not in this device's memory.
 */
static int dmirror_device_view(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			       unsigned long start, unsigned long end)
{
	char __user *uptr = u64_to_user_ptr(cmd->ptr);
	unsigned long pfns[DMIRROR_BATCH];
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.hmm_pfns = pfns,
		.dev_private_owner = dmirror->mdevice,
	};
	unsigned long addr, i, n;
	bool missing = false, gap, user_fault;
	char *bounce = NULL;
	int ret = 0;

	if (!access_ok(uptr, end - start))
		return -EFAULT;
	for (addr = start; addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(end, addr + DMIRROR_BATCH * PAGE_SIZE);
		/* What the migration mapped already needs no fault. */
		mutex_lock(&dmirror->pt_lock);
		if (!dmirror_pt_pfns(dmirror, addr, range.end, pfns)) {
			mutex_unlock(&dmirror->pt_lock);
			ret = dmirror_range_lock(dmirror, &range);
			if (ret)
				break;
			/* A failed store only costs a device fault later. */
			dmirror_pt_store(dmirror, addr, pfns,
					 (range.end - addr) >> PAGE_SHIFT, dmirror->mdevice);
		}
		gap = false;
		user_fault = false;
		for (i = 0, n = 0; addr + i * PAGE_SIZE < range.end; i++) {
			struct page *page = hmm_pfn_to_page(pfns[i]);
			char __user *ubuf = uptr + (addr - start) + i * PAGE_SIZE;
			char *kaddr;

			if (!(pfns[i] & HMM_PFN_VALID) || !dmirror_owns(dmirror->mdevice, page)) {
				gap = true;
				continue;
			}
			kaddr = kmap_local_page(dmirror_data_page(page));
			if (bounce)
				memcpy(bounce + i * PAGE_SIZE, kaddr, PAGE_SIZE);
			else
				user_fault = dmirror_copy_user(kaddr, ubuf, false);
			kunmap_local(kaddr);
			if (user_fault)
				break;
			n++;
		}
		mutex_unlock(&dmirror->pt_lock);
		if (user_fault) {
			/*
			 * Part of the buffer is not mapped: this batch and the
			 * rest go through a bounce buffer, whose copy to the
			 * user may fault.
			 */
			bounce = kvzalloc(DMIRROR_BATCH * PAGE_SIZE, GFP_KERNEL);
			if (!bounce) {
				ret = -ENOMEM;
				break;
			}
			range.end = addr;
			continue;
		}
		if (bounce && copy_to_user(uptr + (addr - start), bounce, range.end - addr)) {
			ret = -EFAULT;
			break;
		}
		cmd->cpages += n;
		missing |= gap;
	}
	kvfree(bounce);
	return ret ?: missing ? -ENOENT : 0;
}

/*
 * Count the pages that moved in @args, and map their destinations in the
 * mirror if no invalidation but our own migration's has come since
 * foreign_seq read @fseq (see the top). Called between migrate_vma_pages()
 * and migrate_vma_finalize(), when what moved is final. A leaf that cannot
 * be had without sleeping only leaves entries out.
 */
static unsigned long dmirror_map_moved(struct dmirror *dmirror,
				       struct migrate_vma *args, unsigned long fseq)
{
	unsigned long i, addr, moved = 0, index = 0, *leaf = NULL;
	bool map;

	mutex_lock(&dmirror->pt_lock);
	map = dmirror->foreign_seq == fseq;
	for (i = 0, addr = args->start; i < args->npages; i++, addr += PAGE_SIZE) {
		struct page *dpage = migrate_pfn_to_page(args->dst[i]);

		if (!dpage || !(args->src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		moved++;
		if (map && !dmirror_leaf_follow(dmirror, addr, &leaf, &index))
			map = false;
		if (map)
			dmirror_pt_set(leaf, addr,
				       dpte_make(dpage, args->src[i] & MIGRATE_PFN_WRITE ?
						 DPTE_WRITE : 0));
	}
	mutex_unlock(&dmirror->pt_lock);
	return moved;
}

static unsigned long dmirror_count_moved(unsigned long *src, unsigned long *dst,
					 unsigned long npages)
{
	unsigned long i, moved = 0;

	for (i = 0; i < npages; i++)
		if (dst[i] && (src[i] & MIGRATE_PFN_MIGRATE))
			moved++;
	return moved;
}

/*
 * Move [start, end) into this device's memory. A page that is already there
 * counts as done; a page that cannot be moved (shared, file-backed, in
 * another device) makes the command fail with -ENOENT, after moving
 * everything else. Running out of device memory stops the command with
 * -ENOMEM; the batch that could not be allocated stays in place.
 */
static int dmirror_migrate_to_dev(struct dmirror *dmirror,
				  struct hmm_dmirror_cmd *cmd,
				  unsigned long start, unsigned long end)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_migrate_buf *buf;
	struct migrate_vma args = {
		.pgmap_owner = dmirror,		/* tags our invalidation */
		.flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	unsigned long addr, next, moved, fseq;
	int ret;

	ret = dmirror_check_vmas(mm, start, end);
	if (ret)
		return ret;
	buf = kvmalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	args.src = buf->src;
	args.dst = buf->dst;

	for (addr = start; addr < end; addr = next) {
		mutex_lock(&dmirror->pt_lock);
		fseq = dmirror->foreign_seq;
		mutex_unlock(&dmirror->pt_lock);
		mmu_interval_read_begin(&dmirror->notifier);
		mmap_read_lock(mm);
		args.vma = vma_lookup(mm, addr);
		if (!args.vma || !(args.vma->vm_flags & VM_READ)) {
			mmap_read_unlock(mm);
			ret = -EINVAL;
			break;
		}
		/* Batches end on PMD boundaries, so that THPs move whole. */
		next = min3(end, args.vma->vm_end, ALIGN(addr + 1, PMD_SIZE));
		args.start = addr;
		args.end = next;
		ret = migrate_vma_setup(&args);
		if (ret) {
			mmap_read_unlock(mm);
			break;
		}
		ret = dmirror_fill_dev_pages(dmirror, &args, buf);
		migrate_vma_pages(&args);
		moved = dmirror_map_moved(dmirror, &args, fseq);
		migrate_vma_finalize(&args);
		mmap_read_unlock(mm);
		dmirror_count(dmirror->mdevice, DMIRROR_MIGRATED_TO_DEV, moved);
		cmd->cpages += moved;
		if (ret)
			break;
	}
	kvfree(buf);
	if (ret)
		return ret;

	/* cpages now counts what lives in device memory, moved or not. */
	cmd->cpages = 0;
	return dmirror_device_view(dmirror, cmd, start, end);
}

/*
 * Does an allocation for @vma follow the default policy (the local node)?
 * Then the bulk allocator places pages as alloc_page_vma() would.
 */
static bool dmirror_vma_local(struct vm_area_struct *vma)
{
#ifdef CONFIG_NUMA
	if (vma_policy(vma) || (vma->vm_ops && vma->vm_ops->get_policy) ||
	    current->mempolicy)
		return false;
#endif
	return true;
}

/*
 * Give each device page the core collected a system page with its content.
 * @vma is NULL when evicting by pfn. Returns the number of pages filled.
 * @nr, with @bulk, is how many entries move: migrate_vma_setup()'s cpages,
 * for a migration that selects no empty addresses.
 */
static unsigned long dmirror_fill_sys_pages(unsigned long *src, unsigned long *dst,
					    unsigned long npages,
					    struct vm_area_struct *vma,
					    unsigned long start,
					    struct page **bulk, unsigned long nr)
{
	unsigned long i, n = 0, nbulk = 0, filled = 0;

	/*
	 * A batch of a vma that allocates locally comes from the bulk
	 * allocator, into @bulk (room for @npages), if the caller gave one.
	 */
	if (vma && bulk && npages > 1 && dmirror_vma_local(vma)) {
		n = min(nr, npages);
		memset(bulk, 0, n * sizeof(*bulk));
		if (n > 1)
			nbulk = alloc_pages_bulk_array_node(GFP_HIGHUSER_MOVABLE,
							    numa_node_id(), n, bulk);
	}
	for (i = 0, n = 0; i < npages; i++) {
		struct page *spage = migrate_pfn_to_page(src[i]);
		struct page *dpage;

		dst[i] = 0;
		if (!spage || !(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (n < nbulk)
			dpage = bulk[n++];
		else if (vma)
			dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma,
					       start + i * PAGE_SIZE);
		else
			dpage = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL);
		if (!dpage)
			continue;
		lock_page(dpage);
		copy_highpage(dpage, dmirror_data_page(spage));
		dst[i] = migrate_pfn(page_to_pfn(dpage));
		filled++;
	}
	/* Pages left over mean @nr was wrong: give them back. */
	if (WARN_ON_ONCE(n < nbulk)) {
		for (; n < nbulk; n++)
			__free_page(bulk[n]);
	}
	return filled;
}

/*
 * Move this device's pages in [start, end) back to system memory. With
 * @for_write the device wants to write there, which read-only vmas refuse.
 * Returns the number of pages moved or -errno.
 */
static long dmirror_migrate_home(struct dmirror *dmirror, unsigned long start,
				 unsigned long end, bool for_write)
{
	struct dmirror_device *mdevice = dmirror->mdevice;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_migrate_buf *buf;
	struct migrate_vma args = {
		.pgmap_owner = mdevice,
		.flags = mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ?
			 MIGRATE_VMA_SELECT_DEVICE_PRIVATE :
			 MIGRATE_VMA_SELECT_DEVICE_COHERENT,
	};
	unsigned long addr, next, moved;
	long ret = 0, total = 0;

	buf = kvmalloc(sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	args.src = buf->src;
	args.dst = buf->dst;

	for (addr = start; addr < end; addr = next) {
		mmap_read_lock(mm);
		args.vma = vma_lookup(mm, addr);
		ret = !args.vma ? -EINVAL :
		      for_write && !(args.vma->vm_flags & VM_WRITE) ? -EPERM : 0;
		if (ret) {
			mmap_read_unlock(mm);
			break;
		}
		next = min3(end, args.vma->vm_end, ALIGN(addr + 1, PMD_SIZE));
		args.start = addr;
		args.end = next;
		ret = migrate_vma_setup(&args);
		if (ret) {
			mmap_read_unlock(mm);
			break;
		}
		dmirror_fill_sys_pages(args.src, args.dst, args.npages, args.vma,
				       addr, buf->pages, args.cpages);
		migrate_vma_pages(&args);
		moved = dmirror_count_moved(args.src, args.dst, args.npages);
		migrate_vma_finalize(&args);
		mmap_read_unlock(mm);

		dmirror_count(mdevice, DMIRROR_MIGRATED_TO_SYS, moved);
		total += moved;
	}
	kvfree(buf);
	return ret ?: total;
}

static int dmirror_migrate_to_sys(struct dmirror *dmirror,
				  struct hmm_dmirror_cmd *cmd,
				  unsigned long start, unsigned long end)
{
	long moved;
	int ret;

	ret = dmirror_check_vmas(dmirror->notifier.mm, start, end);
	if (ret)
		return ret;
	moved = dmirror_migrate_home(dmirror, start, end, false);
	if (moved < 0)
		return moved;
	cmd->cpages = moved;
	return 0;
}

/*
 * Evict every page of one chunk to system memory, wherever it is mapped.
 * Returns the number of pages moved or -ENOMEM.
 */
static long dmirror_evict_chunk(struct dmirror_chunk *chunk)
{
	unsigned long npages = DMIRROR_CHUNK_PAGES;
	unsigned long *src, *dst, moved;

	src = kvcalloc(npages, sizeof(*src), GFP_KERNEL);
	dst = kvcalloc(npages, sizeof(*dst), GFP_KERNEL);
	if (!src || !dst) {
		kvfree(src);
		kvfree(dst);
		return -ENOMEM;
	}
	migrate_device_range(src, PHYS_PFN(chunk->pgmap.range.start), npages);
	dmirror_fill_sys_pages(src, dst, npages, NULL, 0, NULL, 0);
	migrate_device_pages(src, dst, npages);
	moved = dmirror_count_moved(src, dst, npages);
	dmirror_count(chunk->mdevice, DMIRROR_MIGRATED_TO_SYS, moved);
	migrate_device_finalize(src, dst, npages);
	kvfree(src);
	kvfree(dst);
	return moved;
}

/* Empty the device's memory; the pages moved are counted in *@moved. */
static int dmirror_evict(struct dmirror_device *mdevice, u64 *moved)
{
	unsigned int i;
	long ret = 0;

	mutex_lock(&mdevice->grow_lock);
	for (i = 0; i < mdevice->nr_chunks && ret >= 0; i++) {
		ret = dmirror_evict_chunk(mdevice->chunks[i]);
		if (ret > 0)
			*moved += ret;
	}
	mutex_unlock(&mdevice->grow_lock);
	return ret < 0 ? ret : 0;
}

static void dmirror_put_pages(struct page **pages, long npages)
{
	long i;

	for (i = 0; i < npages; i++) {
		if (pages[i]) {
			unlock_page(pages[i]);
			put_page(pages[i]);
		}
	}
}

/*
 * Take exclusive access to [start, end), at most DMIRROR_BATCH pages, and
 * map the pages for atomics. Returns how many pages were mapped.
 */
static long dmirror_exclusive_batch(struct dmirror *dmirror, unsigned long start,
				    unsigned long end)
{
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct mm_struct *mm = dmirror->notifier.mm;
	struct page *pages[DMIRROR_BATCH];
	bool retried = false, reserved = false;
	unsigned long seq;
	long n, mapped;
	int ret;

again:
	for (;; retried = true) {
		/*
		 * A retry faults the range in writable first: breaking COW,
		 * undoing an exclusive grant of the failed attempt or
		 * splitting a THP inside make_device_exclusive_range() would
		 * invalidate the range after @seq, every time. The first
		 * attempt does without: memory the CPU has written needs none
		 * of that.
		 */
		if (retried) {
			ret = dmirror_fault(dmirror, start, end, true);
			if (ret)
				return ret;
		}
		seq = mmu_interval_read_begin(&dmirror->notifier);
		mmap_read_lock(mm);
		n = make_device_exclusive_range(mm, start, end, pages, dmirror);
		mmap_read_unlock(mm);
		/*
		 * Some page could not be had: the fault of a retry tells
		 * why, e.g. -EPERM for a read-only vma or -EFAULT for a hole.
		 */
		if (n < (long)((end - start) >> PAGE_SHIFT) && !retried) {
			if (n > 0)
				dmirror_put_pages(pages, n);
			continue;
		}
		if (n < 0)
			return n;
		mutex_lock(&dmirror->pt_lock);
		if (!mmu_interval_read_retry(&dmirror->notifier, seq))
			break;
		mutex_unlock(&dmirror->pt_lock);
		dmirror_put_pages(pages, n);
		if (time_after(jiffies, timeout))
			return -EBUSY;
	}
	mapped = dmirror_pt_set_pages(dmirror, start, pages, n, DPTE_WRITE | DPTE_ATOMIC);
	mutex_unlock(&dmirror->pt_lock);
	dmirror_put_pages(pages, n);
	if (mapped == -ENOMEM && !reserved) {
		/*
		 * Out of atomic memory for the mirror's leaf tables: prepare
		 * them while sleeping is allowed and take the range again.
		 */
		reserved = true;
		retried = true;
		ret = dmirror_pt_reserve(dmirror, start, end);
		if (ret)
			return ret;
		goto again;
	}
	return mapped;
}

static int dmirror_exclusive(struct dmirror *dmirror, struct hmm_dmirror_cmd *cmd,
			     unsigned long start, unsigned long end)
{
	unsigned long addr, next;
	long mapped;
	int ret;

	for (addr = start; addr < end; addr = next) {
		next = min(end, addr + DMIRROR_BATCH * PAGE_SIZE);
		mapped = dmirror_exclusive_batch(dmirror, addr, next);
		if (mapped < 0)
			return mapped;
		cmd->cpages += mapped;
	}
	if (cmd->cpages != (end - start) >> PAGE_SHIFT)
		return -EBUSY;

	/*
	 * Show what the device can now access, without faulting (which would
	 * revoke it). A page gone from the mirror was revoked meanwhile.
	 */
	cmd->cpages = 0;
	ret = dmirror_access(dmirror, cmd, start, end, false, false);
	return ret == -ENOENT ? -EBUSY : ret;
}

static int dmirror_check_exclusive(struct dmirror *dmirror, unsigned long start,
				   unsigned long end)
{
	unsigned long index, addr, last, *leaf;
	int ret = 0;

	mutex_lock(&dmirror->pt_lock);
	/* Only the leaves that exist: nothing is mapped outside them. */
	xa_for_each_range(&dmirror->pt, index, leaf, start >> DMIRROR_PT_SHIFT,
			  (end - 1) >> DMIRROR_PT_SHIFT) {
		addr = max(start, index << DMIRROR_PT_SHIFT);
		last = min(end - 1, (index << DMIRROR_PT_SHIFT) + DMIRROR_PT_SPAN - 1);
		for (; addr <= last && !ret; addr += PAGE_SIZE)
			if (dpte_access(leaf[dmirror_pt_slot(addr)]) & DPTE_ATOMIC)
				ret = -EPERM;
		if (ret)
			break;
	}
	mutex_unlock(&dmirror->pt_lock);
	return ret;
}

static int dmirror_set_flags(struct dmirror *dmirror, u64 flags)
{
	if (flags & ~(HMM_DMIRROR_FLAG_FAIL_ALLOC | HMM_DMIRROR_FLAG_HALF_MIGRATE))
		return -EINVAL;
	assign_bit(DMIRROR_FAIL_ALLOC, &dmirror->flags,
		   flags & HMM_DMIRROR_FLAG_FAIL_ALLOC);
	assign_bit(DMIRROR_HALF_MIGRATE, &dmirror->flags,
		   flags & HMM_DMIRROR_FLAG_HALF_MIGRATE);
	return 0;
}

/* The range a command names: non-empty, page aligned, in user space. */
static int dmirror_cmd_range(const struct hmm_dmirror_cmd *cmd,
			     unsigned long *start, unsigned long *end)
{
	if (!cmd->npages || cmd->npages > TASK_SIZE >> PAGE_SHIFT)
		return -EINVAL;
	if (!PAGE_ALIGNED(cmd->addr) ||
	    cmd->addr > TASK_SIZE - (cmd->npages << PAGE_SHIFT))
		return -EINVAL;
	*start = cmd->addr;
	*end = cmd->addr + (cmd->npages << PAGE_SHIFT);
	return 0;
}

static int dmirror_range_cmd(struct dmirror *dmirror, unsigned int command,
			     struct hmm_dmirror_cmd *cmd)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long start, end;
	int ret;

	ret = dmirror_cmd_range(cmd, &start, &end);
	if (ret)
		return ret;
	/* The process that opened the file may be gone. */
	if (!mmget_not_zero(mm))
		return -EINVAL;

	switch (command) {
	case HMM_DMIRROR_READ:
		ret = dmirror_access(dmirror, cmd, start, end, false, true);
		break;
	case HMM_DMIRROR_WRITE:
		ret = dmirror_access(dmirror, cmd, start, end, true, true);
		break;
	case HMM_DMIRROR_MIGRATE_TO_DEV:
		ret = dmirror_migrate_to_dev(dmirror, cmd, start, end);
		break;
	case HMM_DMIRROR_MIGRATE_TO_SYS:
		ret = dmirror_migrate_to_sys(dmirror, cmd, start, end);
		break;
	case HMM_DMIRROR_SNAPSHOT:
		ret = dmirror_snapshot(dmirror, cmd, start, end);
		break;
	case HMM_DMIRROR_EXCLUSIVE:
		ret = dmirror_exclusive(dmirror, cmd, start, end);
		break;
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
		ret = dmirror_check_exclusive(dmirror, start, end);
		break;
	}
	mmput(mm);
	return ret;
}

static long dmirror_ioctl(struct file *filp, unsigned int command,
			  unsigned long arg)
{
	struct dmirror *dmirror = filp->private_data;
	void __user *uarg = (void __user *)arg;
	struct hmm_dmirror_cmd cmd;
	int ret;

	switch (command) {
	case HMM_DMIRROR_READ:
	case HMM_DMIRROR_WRITE:
	case HMM_DMIRROR_MIGRATE_TO_DEV:
	case HMM_DMIRROR_MIGRATE_TO_SYS:
	case HMM_DMIRROR_SNAPSHOT:
	case HMM_DMIRROR_EXCLUSIVE:
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
	case HMM_DMIRROR_RELEASE:
	case HMM_DMIRROR_FLAGS:
		break;
	default:
		return -EINVAL;
	}
	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	cmd.cpages = 0;
	cmd.faults = 0;

	if (command == HMM_DMIRROR_FLAGS)
		ret = dmirror_set_flags(dmirror, cmd.npages);
	else if (command == HMM_DMIRROR_RELEASE)
		ret = dmirror_evict(dmirror->mdevice, &cmd.cpages);
	else
		ret = dmirror_range_cmd(dmirror, command, &cmd);

	/* The counts are worth having even when the command failed part way. */
	if (copy_to_user(uarg, &cmd, sizeof(cmd)) && !ret)
		ret = -EFAULT;
	return ret;
}

/*
 * Mapping the device file gives ordinary kernel pages in a VM_MIXEDMAP vma,
 * memory HMM must refuse to mirror.
 */
static int dmirror_mmap(struct file *filp, struct vm_area_struct *vma)
{
	unsigned long addr;
	int ret;

	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		struct page *page = alloc_page(GFP_KERNEL | __GFP_ZERO);

		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		put_page(page);		/* the mapping holds its own reference */
		if (ret)
			return ret;
	}
	return 0;
}

static int dmirror_open(struct inode *inode, struct file *filp)
{
	struct dmirror_device *mdevice =
		container_of(inode->i_cdev, struct dmirror_device, cdev);
	struct dmirror *dmirror;
	int ret;

	if (!current->mm)
		return -EINVAL;
	dmirror = kzalloc(sizeof(*dmirror), GFP_KERNEL);
	if (!dmirror)
		return -ENOMEM;
	dmirror->mdevice = mdevice;
	mutex_init(&dmirror->pt_lock);
	xa_init(&dmirror->pt);

	ret = mmu_interval_notifier_insert(&dmirror->notifier, current->mm, 0,
					   TASK_SIZE, &dmirror_notifier_ops);
	if (ret) {
		kfree(dmirror);
		return ret;
	}
	filp->private_data = dmirror;
	return 0;
}

static int dmirror_release(struct inode *inode, struct file *filp)
{
	struct dmirror *dmirror = filp->private_data;

	mmu_interval_notifier_remove(&dmirror->notifier);
	dmirror_pt_destroy(dmirror);
	kfree(dmirror);
	return 0;
}

/* The device has no file position: no read, no write, no llseek. */
static const struct file_operations dmirror_fops = {
	.owner		= THIS_MODULE,
	.open		= dmirror_open,
	.release	= dmirror_release,
	.unlocked_ioctl	= dmirror_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl	= compat_ptr_ioctl,
#endif
	.mmap		= dmirror_mmap,
};

/* A CPU fault on one of our private pages: bring that page home. */
static vm_fault_t dmirror_migrate_to_ram(struct vm_fault *vmf)
{
	struct dmirror_device *mdevice = dmirror_page_chunk(vmf->page)->mdevice;
	unsigned long src = 0, dst = 0;
	struct migrate_vma args = {
		.vma = vmf->vma,
		.start = vmf->address & PAGE_MASK,
		.end = (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src = &src,
		.dst = &dst,
		.pgmap_owner = mdevice,
		.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page = vmf->page,
	};
	vm_fault_t ret = 0;

	dmirror_count(mdevice, DMIRROR_CPU_FAULTS, 1);
	if (migrate_vma_setup(&args))
		return VM_FAULT_SIGBUS;
	if (!dmirror_fill_sys_pages(&src, &dst, 1, vmf->vma, args.start, NULL, 0) &&
	    (src & MIGRATE_PFN_MIGRATE))
		ret = VM_FAULT_OOM;
	migrate_vma_pages(&args);
	dmirror_count(mdevice, DMIRROR_MIGRATED_TO_SYS,
		      dmirror_count_moved(&src, &dst, 1));
	migrate_vma_finalize(&args);
	return ret;
}

static const struct dev_pagemap_ops dmirror_pgmap_ops = {
	.page_free	= dmirror_page_free,
	.migrate_to_ram	= dmirror_migrate_to_ram,
};

/* ---- sysfs: /sys/dev/char/<major>:<minor>/stats/ ----------------------- */

static ssize_t dmirror_stat_show(struct device *dev, struct device_attribute *attr,
				 char *buf)
{
	struct dmirror_device *mdevice = container_of(dev, struct dmirror_device, dev);
	struct dev_ext_attribute *ea = container_of(attr, struct dev_ext_attribute, attr);
	uintptr_t stat = (uintptr_t)ea->var;

	if (stat == DMIRROR_BACKING_CACHED)
		return sysfs_emit(buf, "%lu\n", READ_ONCE(mdevice->nr_backed));
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&mdevice->stats[stat]));
}

#define DMIRROR_STAT_ATTR(_name, _stat)					\
	static struct dev_ext_attribute dmirror_attr_##_name = {	\
		.attr = __ATTR(_name, 0444, dmirror_stat_show, NULL),	\
		.var = (void *)(_stat),					\
	}

DMIRROR_STAT_ATTR(dev_pages_total, DMIRROR_DEV_PAGES_TOTAL);
DMIRROR_STAT_ATTR(dev_pages_in_use, DMIRROR_DEV_PAGES_IN_USE);
DMIRROR_STAT_ATTR(migrated_to_dev, DMIRROR_MIGRATED_TO_DEV);
DMIRROR_STAT_ATTR(migrated_to_sys, DMIRROR_MIGRATED_TO_SYS);
DMIRROR_STAT_ATTR(cpu_faults, DMIRROR_CPU_FAULTS);
DMIRROR_STAT_ATTR(device_faults, DMIRROR_DEVICE_FAULTS);
DMIRROR_STAT_ATTR(alloc_failures, DMIRROR_ALLOC_FAILURES);
DMIRROR_STAT_ATTR(backing_cached, DMIRROR_BACKING_CACHED);

static struct attribute *dmirror_stat_attrs[] = {
	&dmirror_attr_dev_pages_total.attr.attr,
	&dmirror_attr_dev_pages_in_use.attr.attr,
	&dmirror_attr_migrated_to_dev.attr.attr,
	&dmirror_attr_migrated_to_sys.attr.attr,
	&dmirror_attr_cpu_faults.attr.attr,
	&dmirror_attr_device_faults.attr.attr,
	&dmirror_attr_alloc_failures.attr.attr,
	&dmirror_attr_backing_cached.attr.attr,
	NULL,
};

static const struct attribute_group dmirror_stat_group = {
	.name	= "stats",
	.attrs	= dmirror_stat_attrs,
};

static const struct attribute_group *dmirror_groups[] = {
	&dmirror_stat_group,
	NULL,
};

/* ---- devices ------------------------------------------------------------ */

static void dmirror_device_release(struct device *dev)
{
	kfree(container_of(dev, struct dmirror_device, dev));
}

static int dmirror_device_add(unsigned int id, unsigned int type,
			      phys_addr_t spm_base)
{
	struct dmirror_device *mdevice;
	int ret;

	mdevice = kzalloc(sizeof(*mdevice), GFP_KERNEL);
	if (!mdevice)
		return -ENOMEM;
	mdevice->type = type;
	mdevice->spm_base = spm_base;
	mutex_init(&mdevice->grow_lock);
	spin_lock_init(&mdevice->free_lock);

	device_initialize(&mdevice->dev);
	mdevice->dev.devt = MKDEV(MAJOR(dmirror_devt), id);
	mdevice->dev.groups = dmirror_groups;
	mdevice->dev.release = dmirror_device_release;
	ret = dev_set_name(&mdevice->dev, "hmm_dmirror%u", id);
	if (ret)
		goto fail;
	cdev_init(&mdevice->cdev, &dmirror_fops);
	mdevice->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&mdevice->cdev, &mdevice->dev);
	if (ret)
		goto fail;
	dmirror_devices[id] = mdevice;
	return 0;

fail:
	put_device(&mdevice->dev);
	return ret;
}

static void dmirror_device_remove(struct dmirror_device *mdevice)
{
	u64 moved = 0;
	unsigned int i;

	cdev_device_del(&mdevice->cdev, &mdevice->dev);
	dmirror_evict(mdevice, &moved);
	for (i = 0; i < mdevice->nr_chunks; i++) {
		memunmap_pages(&mdevice->chunks[i]->pgmap);
		dmirror_chunk_destroy(mdevice->chunks[i]);
	}
	put_device(&mdevice->dev);
}

static void dmirror_remove_all(void)
{
	unsigned int id;

	shrinker_free(dmirror_shrinker);
	dmirror_shrinker = NULL;
	for (id = 0; id < DMIRROR_NR_DEVICES; id++) {
		if (dmirror_devices[id])
			dmirror_device_remove(dmirror_devices[id]);
		dmirror_devices[id] = NULL;
	}
	unregister_chrdev_region(dmirror_devt, DMIRROR_NR_DEVICES);
}

static int __init hmm_dmirror_init(void)
{
	const unsigned long spm[] = { spm_addr_dev0, spm_addr_dev1 };
	unsigned int id;
	int ret;

	ret = alloc_chrdev_region(&dmirror_devt, 0, DMIRROR_NR_DEVICES, "hmm_dmirror");
	if (ret)
		return ret;

	for (id = 0; id < DMIRROR_NR_DEVICES; id++) {
		unsigned long base = 0;

		if (id >= DMIRROR_NR_PRIVATE) {
			base = spm[id - DMIRROR_NR_PRIVATE];
			if (!base) {
				pr_info("hmm_dmirror%u (device coherent) not created: no test_hmm.spm_addr_dev%u= given\n",
					id, id - DMIRROR_NR_PRIVATE);
				continue;
			}
			if (!IS_ALIGNED(base, SZ_2M)) {
				pr_err("hmm_dmirror%u not created: spm_addr_dev%u %#lx is not 2 MiB aligned\n",
				       id, id - DMIRROR_NR_PRIVATE, base);
				continue;
			}
		}
		ret = dmirror_device_add(id, base ? HMM_DMIRROR_MEMORY_DEVICE_COHERENT :
					 HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, base);
		if (ret) {
			dmirror_remove_all();
			return ret;
		}
	}
	dmirror_shrinker = shrinker_alloc(0, "hmm_dmirror");
	if (!dmirror_shrinker) {
		dmirror_remove_all();
		return -ENOMEM;
	}
	dmirror_shrinker->count_objects = dmirror_shrink_count;
	dmirror_shrinker->scan_objects = dmirror_shrink_scan;
	shrinker_register(dmirror_shrinker);
	pr_info("HMM test driver loaded\n");
	return 0;
}

static void __exit hmm_dmirror_exit(void)
{
	dmirror_remove_all();
}

module_init(hmm_dmirror_init);
module_exit(hmm_dmirror_exit);
MODULE_DESCRIPTION("Test device for HMM: a mirror of process memory with device memory");
MODULE_LICENSE("GPL");
