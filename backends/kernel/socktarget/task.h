//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The calling task's app identity, for every BPF program that asks which
// app a task runs (the socket tagger's socktarget.c, the blocker's
// block.c): the file of its executable (inode, device) and a uid.
//
// The structures are just enough of the kernel's to read a task's
// executable and credentials; CO-RE relocates the offsets against the
// running kernel's BTF at load time (the ___ct suffix keeps them apart
// from any full definition).
#pragma once

#include <bpf/bpf_core_read.h>

// exe_key identifies an app: its executable's file and the uid of the
// process running it (apps are per user).
struct exe_key {
	__u64 ino;
	__u32 dev; // the kernel's dev_t encoding: major << 20 | minor
	__u32 uid;
};

struct super_block___ct {
	__u32 s_dev;
} __attribute__((preserve_access_index));
struct inode___ct {
	unsigned long i_ino;
	struct super_block___ct *i_sb;
} __attribute__((preserve_access_index));
struct file___ct {
	struct inode___ct *f_inode;
} __attribute__((preserve_access_index));
struct mm_struct___ct {
	struct file___ct *exe_file;
} __attribute__((preserve_access_index));
struct kuid___ct {
	__u32 val;
} __attribute__((preserve_access_index));
struct cred___ct {
	struct kuid___ct euid;
} __attribute__((preserve_access_index));
struct task_struct___ct {
	struct mm_struct___ct *mm;
	const struct cred___ct *cred;
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

// current_exe fills k's ino and dev from the calling task's executable and
// returns it; the uid is the caller's to fill. It returns 0 for a kernel
// thread, which has no executable.
static __always_inline struct task_struct___ct *current_exe(struct exe_key *k)
{
	struct task_struct___ct *task = (void *)bpf_get_current_task();
	struct inode___ct *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!ino)
		return 0;
	k->ino = BPF_CORE_READ(ino, i_ino);
	if (!k->ino)
		return 0;
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	return task;
}
