/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Userspace interface of the dmirror test device (lib/test_hmm.c).
 *
 * Each open file of /dev/hmm_dmirrorN is a pretend device with its own page
 * table mirroring the address space of the process that opened it. The
 * ioctls below make that device read, write, snapshot and migrate the
 * process's memory, so selftests can drive the HMM API from userspace.
 */
#ifndef _LIB_TEST_HMM_UAPI_H
#define _LIB_TEST_HMM_UAPI_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * struct hmm_dmirror_cmd - argument of every dmirror ioctl
 * @addr: (in) first address of the range in the process, page aligned
 * @ptr: (in) user buffer the device copies data (or snapshot bytes) to or
 *	 from
 * @npages: (in) length of the range in pages; HMM_DMIRROR_FLAGS passes its
 *	    flags here instead
 * @cpages: (out) pages the command copied, migrated or made exclusive
 * @faults: (out) times the device had to fault the range in
 */
struct hmm_dmirror_cmd {
	__u64		addr;
	__u64		ptr;
	__u64		npages;
	__u64		cpages;
	__u64		faults;
};

/* Device access to the range, faulting it in as needed. */
#define HMM_DMIRROR_READ		_IOWR('H', 0x00, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_WRITE		_IOWR('H', 0x01, struct hmm_dmirror_cmd)
/* Move the range into, or out of, this device's memory. */
#define HMM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_SYS	_IOWR('H', 0x03, struct hmm_dmirror_cmd)
/* One HMM_DMIRROR_PROT_* byte per page of the range, without faulting. */
#define HMM_DMIRROR_SNAPSHOT		_IOWR('H', 0x04, struct hmm_dmirror_cmd)
/* Take exclusive access for device atomics; check it was revoked. */
#define HMM_DMIRROR_EXCLUSIVE		_IOWR('H', 0x05, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_CHECK_EXCLUSIVE	_IOWR('H', 0x06, struct hmm_dmirror_cmd)
/* Evict all of the device's memory to system memory (any range is ignored). */
#define HMM_DMIRROR_RELEASE		_IOWR('H', 0x07, struct hmm_dmirror_cmd)
/* Replace this file's HMM_DMIRROR_FLAG_* bits with @npages; unknown: EINVAL. */
#define HMM_DMIRROR_FLAGS		_IOWR('H', 0x08, struct hmm_dmirror_cmd)

/* The next device memory allocation made for this file fails, once. */
#define HMM_DMIRROR_FLAG_FAIL_ALLOC	_BITULL(0)
/*
 * The next batch migrated into device memory from this file (up to a PMD's
 * worth) gets destinations for its odd pages only, once: a driver that takes
 * part of what the core collected.
 */
#define HMM_DMIRROR_FLAG_HALF_MIGRATE	_BITULL(1)

/*
 * Snapshot bytes. The low bits give the access the CPU page table allows,
 * the high nibble what kind of page backs the address:
 * HMM_DMIRROR_PROT_ERROR: no valid mapping (no vma, no access, special page)
 * HMM_DMIRROR_PROT_NONE: nothing mapped yet
 * HMM_DMIRROR_PROT_READ / _WRITE: mapped read-only / writable
 * HMM_DMIRROR_PROT_PMD / _PUD: the mapping is a whole PMD / PUD sized page
 * HMM_DMIRROR_PROT_ZERO: the shared zero page
 * HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL / _REMOTE: device private memory of the
 *	device the ioctl was made on / of another device
 * HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL / _REMOTE: device coherent memory of
 *	the device the ioctl was made on / of another device
 */
enum {
	HMM_DMIRROR_PROT_ERROR			= 0xFF,
	HMM_DMIRROR_PROT_NONE			= 0x00,
	HMM_DMIRROR_PROT_READ			= 0x01,
	HMM_DMIRROR_PROT_WRITE			= 0x02,
	HMM_DMIRROR_PROT_PMD			= 0x04,
	HMM_DMIRROR_PROT_PUD			= 0x08,
	HMM_DMIRROR_PROT_ZERO			= 0x10,
	HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL	= 0x20,
	HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE	= 0x30,
	HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL	= 0x40,
	HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE	= 0x50,
};

/* Kind of memory a dmirror device owns (0 is never a valid type). */
enum {
	HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1,
	HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
};

#endif /* _LIB_TEST_HMM_UAPI_H */
