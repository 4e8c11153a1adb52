/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ZONE_DEVICE: struct pages for memory that the page allocator does not own.
 *
 * A driver describes a range of physical addresses (device memory, a PCI BAR,
 * persistent memory) with a struct dev_pagemap and hands it to
 * memremap_pages(). The core then creates struct pages for the range in
 * ZONE_DEVICE and calls back into the driver through struct dev_pagemap_ops
 * when those pages become free, when the CPU faults on memory it cannot
 * address, or when the hardware reports an error.
 */
#ifndef _LINUX_MEMREMAP_H_
#define _LINUX_MEMREMAP_H_

#include <linux/mmzone.h>
#include <linux/range.h>
#include <linux/ioport.h>
#include <linux/percpu-refcount.h>

struct resource;
struct device;

/**
 * struct vmem_altmap - device memory that holds its own struct pages
 * @base_pfn: first pfn of the whole dev_pagemap range
 * @end_pfn: last pfn the memmap may be placed in
 * @reserve: pfns at @base_pfn kept back for the driver, never used for memmap
 * @free: pfns available for the memmap after @reserve
 * @align: pfns skipped to satisfy the alignment of memmap allocations
 * @alloc: pfns handed out so far, owned by vmemmap_populate()
 * @inaccessible: the range cannot be written by the CPU before it is online
 *
 * When the memmap of a large device range would not fit in system RAM, the
 * driver lets the vmemmap be carved out of the device memory itself.
 */
struct vmem_altmap {
	unsigned long base_pfn;
	const unsigned long end_pfn;
	const unsigned long reserve;
	unsigned long free;
	unsigned long align;
	unsigned long alloc;
	bool inaccessible;
};

/**
 * enum memory_type - what a ZONE_DEVICE range is and who may touch it
 * @MEMORY_DEVICE_PRIVATE: memory on a device that the CPU cannot address.
 *	The struct pages exist so that a process page can move there and be
 *	tracked like any anonymous page, but nothing may read through them:
 *	page tables hold a device-private swap entry instead of a present
 *	pte, and a CPU access calls &dev_pagemap_ops.migrate_to_ram.
 * @MEMORY_DEVICE_COHERENT: device memory the CPU can access coherently
 *	(CXL, CAPI-like links). Process pages may live there and are mapped
 *	normally, but the memory must stay evictable, so long-term pins
 *	migrate the page back to system RAM first.
 * @MEMORY_DEVICE_FS_DAX: host memory (persistent memory) mapped by a DAX
 *	file system. Pages may be pinned; the file system is told when a page
 *	becomes idle so that truncate can wait for DMA to end.
 * @MEMORY_DEVICE_GENERIC: host memory exposed by a device-dax character
 *	device; behaves like system RAM and may be pinned.
 * @MEMORY_DEVICE_PCI_P2PDMA: memory in a PCI BAR meant for peer-to-peer
 *	DMA between devices.
 *
 * Zero is left unused so that a dev_pagemap whose type was never set is
 * caught.
 */
enum memory_type {
	MEMORY_DEVICE_PRIVATE = 1,
	MEMORY_DEVICE_COHERENT,
	MEMORY_DEVICE_FS_DAX,
	MEMORY_DEVICE_GENERIC,
	MEMORY_DEVICE_PCI_P2PDMA,
};

/**
 * struct dev_pagemap_ops - driver callbacks for a ZONE_DEVICE range
 * @page_free: the last reference to a page of the range was dropped. For
 *	private and coherent memory the driver takes the page back into its
 *	allocator and later hands it out again with zone_device_page_init();
 *	for the other types the core sets the refcount back to one.
 * @migrate_to_ram: the CPU faulted on a device-private entry. Called with
 *	the mmap lock held and a reference on vmf->page; the driver moves at
 *	least that page back to system memory (migrate_vma_setup() with
 *	&migrate_vma.fault_page set) and returns a VM_FAULT_* code. Only used
 *	for MEMORY_DEVICE_PRIVATE.
 * @memory_failure: @nr_pages pages starting at @pfn went bad. The driver
 *	finds the users and notifies them, passing @mf_flags on. If this is
 *	NULL or returns -EOPNOTSUPP, the core falls back to
 *	mf_generic_kill_procs().
 */
struct dev_pagemap_ops {
	void (*page_free)(struct page *page);
	vm_fault_t (*migrate_to_ram)(struct vm_fault *vmf);
	int (*memory_failure)(struct dev_pagemap *pgmap, unsigned long pfn,
			      unsigned long nr_pages, int mf_flags);
};

/* &dev_pagemap.altmap is filled in and must be used for the memmap. */
#define PGMAP_ALTMAP_VALID	0x1

/**
 * struct dev_pagemap - a ZONE_DEVICE range and the driver behind it
 * @altmap: where the memmap goes, when @flags has PGMAP_ALTMAP_VALID
 * @ref: live while pages of the range may be handed out; every in-use page
 *	of private or coherent memory holds a reference
 * @done: completed when @ref drops to zero on teardown
 * @type: the kind of memory, one of &enum memory_type
 * @flags: PGMAP_* flags
 * @vmemmap_shift: order of the compound pages the memmap is built from
 *	(0: every page is an order-0 page)
 * @ops: driver callbacks, may be NULL for types that need none
 * @owner: opaque cookie naming the driver instance; migration and the HMM
 *	mirror only treat device-private pages as their own when it matches
 * @nr_range: number of entries in @ranges
 * @range: the physical range when @nr_range is 1
 * @ranges: the physical ranges when @nr_range is larger than 1
 */
struct dev_pagemap {
	struct vmem_altmap altmap;
	struct percpu_ref ref;
	struct completion done;
	enum memory_type type;
	unsigned int flags;
	unsigned long vmemmap_shift;
	const struct dev_pagemap_ops *ops;
	void *owner;
	int nr_range;
	union {
		struct range range;
		DECLARE_FLEX_ARRAY(struct range, ranges);
	};
};

/* Does the driver handle memory errors itself? */
static inline bool pgmap_has_memory_failure(struct dev_pagemap *pgmap)
{
	return pgmap->ops && pgmap->ops->memory_failure;
}

/* The altmap of @pgmap, or NULL when its memmap lives in system RAM. */
static inline struct vmem_altmap *pgmap_altmap(struct dev_pagemap *pgmap)
{
	return (pgmap->flags & PGMAP_ALTMAP_VALID) ? &pgmap->altmap : NULL;
}

/* Pages per compound memmap unit of @pgmap. */
static inline unsigned long pgmap_vmemmap_nr(struct dev_pagemap *pgmap)
{
	return 1 << pgmap->vmemmap_shift;
}

/*
 * Type tests. Each one first checks that @page is in ZONE_DEVICE, since only
 * then does page->pgmap hold a dev_pagemap; the IS_ENABLED() tests let the
 * compiler drop the branches for types the kernel is built without.
 */
static inline bool is_device_private_page(const struct page *page)
{
	if (!IS_ENABLED(CONFIG_DEVICE_PRIVATE) || !is_zone_device_page(page))
		return false;
	return page->pgmap->type == MEMORY_DEVICE_PRIVATE;
}

static inline bool folio_is_device_private(const struct folio *folio)
{
	return is_device_private_page(&folio->page);
}

static inline bool is_pci_p2pdma_page(const struct page *page)
{
	if (!IS_ENABLED(CONFIG_PCI_P2PDMA) || !is_zone_device_page(page))
		return false;
	return page->pgmap->type == MEMORY_DEVICE_PCI_P2PDMA;
}

static inline bool is_device_coherent_page(const struct page *page)
{
	if (!is_zone_device_page(page))
		return false;
	return page->pgmap->type == MEMORY_DEVICE_COHERENT;
}

static inline bool folio_is_device_coherent(const struct folio *folio)
{
	return is_device_coherent_page(&folio->page);
}

#ifdef CONFIG_ZONE_DEVICE
void zone_device_page_init(struct page *page);
void *memremap_pages(struct dev_pagemap *pgmap, int nid);
void memunmap_pages(struct dev_pagemap *pgmap);
void *devm_memremap_pages(struct device *dev, struct dev_pagemap *pgmap);
void devm_memunmap_pages(struct device *dev, struct dev_pagemap *pgmap);
struct dev_pagemap *get_dev_pagemap(unsigned long pfn,
				    struct dev_pagemap *pgmap);
bool pgmap_pfn_valid(struct dev_pagemap *pgmap, unsigned long pfn);
unsigned long memremap_compat_align(void);
#else /* !CONFIG_ZONE_DEVICE */
/*
 * Without ZONE_DEVICE there are no struct pages for device memory. Callers
 * are expected to test the configuration and use plain devm_memremap()
 * instead; reaching this is a bug in the caller.
 */
static inline void *devm_memremap_pages(struct device *dev,
					struct dev_pagemap *pgmap)
{
	WARN_ON_ONCE(1);
	return ERR_PTR(-ENXIO);
}

static inline void devm_memunmap_pages(struct device *dev,
				       struct dev_pagemap *pgmap)
{
}

static inline struct dev_pagemap *get_dev_pagemap(unsigned long pfn,
						  struct dev_pagemap *pgmap)
{
	return NULL;
}

static inline bool pgmap_pfn_valid(struct dev_pagemap *pgmap,
				   unsigned long pfn)
{
	return false;
}

/* Any architecture can remap a single page. */
static inline unsigned long memremap_compat_align(void)
{
	return PAGE_SIZE;
}
#endif /* CONFIG_ZONE_DEVICE */

/* Drop a reference taken by get_dev_pagemap(); NULL is allowed. */
static inline void put_dev_pagemap(struct dev_pagemap *pgmap)
{
	if (pgmap)
		percpu_ref_put(&pgmap->ref);
}

#endif /* _LINUX_MEMREMAP_H_ */
