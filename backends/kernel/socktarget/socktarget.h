//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The socket → target map of ChadThrottle's socket tagger (socktarget.c),
// for every BPF program that asks which throttling target a socket belongs
// to. A program includes this header and is loaded with the tagger's map
// as a replacement (socktarget.Tagger.Replacements in Go); without one the
// map is its own and stays empty.
//
// Key: the socket's cookie (bpf_get_socket_cookie). Value: the target's
// number (socktarget.Tagger.Number in Go), never 0 and never reused while
// the tagger lives. Only sockets created while their process had a target
// are in it.
#pragma once

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} socket_targets SEC(".maps");

// socket_target returns the number of the target the socket with this
// cookie was tagged with when it was created, or 0.
static __always_inline __u32 socket_target(__u64 cookie)
{
	__u32 *n = bpf_map_lookup_elem(&socket_targets, &cookie);
	return n ? *n : 0;
}
