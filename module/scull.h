/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * scull.h - the user-space ABI of /dev/scull (module/scull.rs).
 *
 * See docs/scull.md. The numbers here, in scull.rs and in the lkmlab guest
 * suite (guest/src/suites/scull.rs, which exercises them against the
 * module) must stay equal.
 */
#ifndef _SCULL_H
#define _SCULL_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* 'x' is unused in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define SCULL_IOC_MAGIC 'x'

/* Usage counters since the module was loaded; only successful calls count. */
struct scull_stats {
	__u64 opens;		/* open() of /dev/scull */
	__u64 reads;		/* read() calls, including those returning 0 */
	__u64 writes;		/* write() calls, including short ones */
	__u64 bytes_read;	/* bytes returned by reads */
	__u64 bytes_written;	/* bytes stored by writes */
};

/* Empty the buffer (its memory is freed; the capacity stays). */
#define SCULL_IOC_CLEAR		_IO(SCULL_IOC_MAGIC, 0x01)
/* Content size in bytes. */
#define SCULL_IOC_GET_SIZE	_IOR(SCULL_IOC_MAGIC, 0x02, __u64)
/* Capacity in bytes (the capacity= module parameter). */
#define SCULL_IOC_GET_CAPACITY	_IOR(SCULL_IOC_MAGIC, 0x03, __u64)
/* The usage counters. */
#define SCULL_IOC_GET_STATS	_IOR(SCULL_IOC_MAGIC, 0x04, struct scull_stats)

#endif /* _SCULL_H */
