// SPDX-License-Identifier: GPL-2.0
/*
 * kinsn: a QEMU TCG plugin that counts the instructions the guest executes
 * at kernel addresses, and prints the count whenever the guest executes a
 * marker: `nopl 0x4e4654NN(%rax)` (0f 1f 80 NN 54 46 4e), a no-op that no
 * compiler emits, NN being the marker's number (tools/bench/nftp-bench.c).
 * The difference between two markers' counts is the kernel's work between
 * them, whatever the host's load: with -icount the guest's clock, and with
 * it every timer, follows the instructions, not the host.
 *
 *   qemu-system-x86_64 -smp 1 -icount shift=0 \
 *       -plugin kinsn.so -d plugin -D kinsn.log ...
 *
 * Each marker prints "kinsn: mark NN kernel K user U" (totals since boot).
 * With the argument profile=PATH it also counts per kernel instruction
 * address, and at each marker 2 appends to PATH the counts since the last
 * marker 1: a line "profile", then "ADDRESS COUNT" (hex, decimal) for each
 * address executed (scripts/bench-report --profile maps them to functions).
 * Built against QEMU's plugin API version 1 (QEMU 4.2 to 8.x), declared in
 * qemu-plugin-api.h: no QEMU headers are required.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

KINSN_EXPORT int qemu_plugin_version = 1;

/*
 * One vCPU (-icount implies one TCG thread): plain counters, no atomics.
 * A kernel instruction is counted as it executes, one inline add each:
 * a block-wide add would also count the rest of a block that an interrupt
 * or a fault left early.
 */
static uint64_t kernel_insns, user_insns;

#define KERNEL_BASE 0xffff800000000000ULL
#define MARK_LEN 7
static const unsigned char mark_op[] = { 0x0f, 0x1f, 0x80 };
static const unsigned char mark_tag[] = { 0x54, 0x46, 0x4e };	/* "TFN" */

/*
 * The profile: a counter per kernel instruction address, in a table that
 * never moves (translated code adds to the counters' addresses).  Kernel
 * text run in a boot is some 10^5 instructions; addresses beyond the
 * table's room go uncounted, and the profile says how many.
 */
#define PROF_SLOTS (1u << 21)
struct prof_slot {
	uint64_t vaddr;
	uint64_t count;
};
static struct prof_slot *prof;
static const char *prof_path;
static unsigned long prof_full;

static uint64_t *prof_counter(uint64_t vaddr)
{
	uint32_t i = (uint32_t)((vaddr * 0x9e3779b97f4a7c15ULL) >> 43);
	uint32_t probes;

	for (probes = 0; probes < 64; probes++, i = (i + 1) % PROF_SLOTS) {
		if (prof[i].vaddr == vaddr)
			return &prof[i].count;
		if (!prof[i].vaddr) {
			prof[i].vaddr = vaddr;
			return &prof[i].count;
		}
	}
	prof_full++;
	return NULL;
}

static void prof_write(void)
{
	FILE *f = fopen(prof_path, "a");
	uint32_t i;

	if (!f) {
		qemu_plugin_outs("kinsn: cannot open the profile\n");
		return;
	}
	fprintf(f, "profile %lu\n", prof_full);
	for (i = 0; i < PROF_SLOTS; i++)
		if (prof[i].count)
			fprintf(f, "%" PRIx64 " %" PRIu64 "\n", prof[i].vaddr,
				prof[i].count);
	fclose(f);
}

static void on_mark(unsigned int vcpu, void *udata)
{
	unsigned int mark = (unsigned int)(uintptr_t)udata;
	char line[96];
	uint32_t i;

	(void)vcpu;
	snprintf(line, sizeof(line), "kinsn: mark %u kernel %" PRIu64
		 " user %" PRIu64 "\n", mark, kernel_insns, user_insns);
	qemu_plugin_outs(line);
	if (prof && mark == 1)
		for (i = 0; i < PROF_SLOTS; i++)
			prof[i].count = 0;
	if (prof && mark == 2)
		prof_write();
}

static int mark_number(const struct qemu_plugin_insn *insn)
{
	const unsigned char *b = qemu_plugin_insn_data(insn);

	if (qemu_plugin_insn_size(insn) != MARK_LEN ||
	    memcmp(b, mark_op, sizeof(mark_op)) ||
	    memcmp(b + 4, mark_tag, sizeof(mark_tag)))
		return -1;
	return b[3];
}

static void on_translate(uint64_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
		bool kernel = vaddr >= KERNEL_BASE;
		uint64_t *counter;
		int mark;

		qemu_plugin_register_vcpu_insn_exec_inline(insn,
				QEMU_PLUGIN_INLINE_ADD_U64,
				kernel ? &kernel_insns : &user_insns, 1);
		counter = prof && kernel ? prof_counter(vaddr) : NULL;
		if (counter)
			qemu_plugin_register_vcpu_insn_exec_inline(insn,
					QEMU_PLUGIN_INLINE_ADD_U64, counter, 1);
		mark = kernel ? -1 : mark_number(insn);
		if (mark >= 0)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark,
					QEMU_PLUGIN_CB_NO_REGS,
					(void *)(uintptr_t)mark);
	}
}

int qemu_plugin_install(uint64_t id, const struct qemu_info *info,
			int argc, char **argv)
{
	if (argc == 1 && !strncmp(argv[0], "profile=", 8) && argv[0][8]) {
		prof_path = argv[0] + 8;
		prof = calloc(PROF_SLOTS, sizeof(*prof));
		if (!prof)
			return -1;
	} else if (argc) {
		qemu_plugin_outs("kinsn: the one argument is profile=PATH\n");
		return -1;
	}
	if (!info->system_emulation || strcmp(info->target_name, "x86_64")) {
		qemu_plugin_outs("kinsn: x86_64 system emulation only\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	return 0;
}
