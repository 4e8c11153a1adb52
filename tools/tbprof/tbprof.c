// SPDX-License-Identifier: GPL-2.0
/*
 * tbprof: a QEMU TCG plugin counting guest instructions per translation
 * block between two marker addresses (hmm-bench's prof_start/prof_stop),
 * for `make profile`. Written against the QEMU 7.2 plugin ABI (version 1);
 * the few declarations it needs are below, so no QEMU headers are needed.
 *
 * Arguments: start=ADDR,stop=ADDR,out=FILE. Output: one line per block
 * start address with the instructions executed there between the markers.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu, void *data);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *data);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb_t cb,
					  int flags, void *data);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, int op,
					      void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *data);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t count;		/* executions, counted inline */
	uint64_t snap;		/* count at the last start marker */
	uint64_t total;		/* executions between markers */
};

static struct block **blocks;
static size_t nblocks, capblocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t start_addr, stop_addr;
static const char *out_path = "tbprof.txt";
static int running;

static void on_start(unsigned int vcpu, void *data)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nblocks; i++)
		blocks[i]->snap = blocks[i]->count;
	running = 1;
	pthread_mutex_unlock(&lock);
}

static void on_stop(unsigned int vcpu, void *data)
{
	pthread_mutex_lock(&lock);
	if (running)
		for (size_t i = 0; i < nblocks; i++)
			blocks[i]->total += blocks[i]->count - blocks[i]->snap;
	running = 0;
	pthread_mutex_unlock(&lock);
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct block *b = calloc(1, sizeof(*b));

	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = qemu_plugin_tb_n_insns(tb);
	pthread_mutex_lock(&lock);
	if (nblocks == capblocks) {
		capblocks = capblocks ? 2 * capblocks : 65536;
		blocks = realloc(blocks, capblocks * sizeof(*blocks));
	}
	/* calloc: a block translated between the markers counts from zero. */
	blocks[nblocks++] = b;
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, 0, &b->count, 1);
	if (b->vaddr == start_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_start, 0, NULL);
	if (b->vaddr == stop_addr)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_stop, 0, NULL);
}

static void on_atexit(qemu_plugin_id_t id, void *data)
{
	FILE *f = fopen(out_path, "w");

	if (!f)
		return;
	for (size_t i = 0; i < nblocks; i++)
		if (blocks[i]->total)
			fprintf(f, "%" PRIx64 " %" PRIu64 "\n", blocks[i]->vaddr,
				blocks[i]->total * blocks[i]->insns);
	fclose(f);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "start=", 6))
			start_addr = strtoull(argv[i] + 6, NULL, 0);
		else if (!strncmp(argv[i], "stop=", 5))
			stop_addr = strtoull(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "out=", 4))
			out_path = strdup(argv[i] + 4);
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
	qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
	return 0;
}
