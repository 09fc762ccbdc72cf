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
 * Built against QEMU's plugin API version 1 (QEMU 4.2 to 8.x), declared in
 * qemu-plugin-api.h: no QEMU headers are required.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static void on_mark(unsigned int vcpu, void *udata)
{
	char line[96];

	(void)vcpu;
	snprintf(line, sizeof(line), "kinsn: mark %u kernel %" PRIu64
		 " user %" PRIu64 "\n", (unsigned int)(uintptr_t)udata,
		 kernel_insns, user_insns);
	qemu_plugin_outs(line);
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
		bool kernel = qemu_plugin_insn_vaddr(insn) >= KERNEL_BASE;
		int mark;

		qemu_plugin_register_vcpu_insn_exec_inline(insn,
				QEMU_PLUGIN_INLINE_ADD_U64,
				kernel ? &kernel_insns : &user_insns, 1);
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
	(void)argv;
	if (argc || !info->system_emulation ||
	    strcmp(info->target_name, "x86_64")) {
		qemu_plugin_outs("kinsn: x86_64 system emulation only, no arguments\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	return 0;
}
