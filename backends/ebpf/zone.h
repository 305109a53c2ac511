//go:build ignore

// SPDX-License-Identifier: GPL-2.0
// Zones for ChadThrottle's programs: whether an address is local (loopback,
// RFC 1918, link-local, ULA, …) or internet. Mirrors backends.IsLocal.
#pragma once

#include <linux/bpf.h>

#define TRAFFIC_ALL 0
#define TRAFFIC_INTERNET 1
#define TRAFFIC_LOCAL 2

static __always_inline int zone_local4(const __u8 *a)
{
	return a[0] == 127 || a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	       (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0) ||
	       (a[0] == 224 && a[1] == 0 && a[2] == 0);
}

// zone_is_local mirrors backends.IsLocal; family is 4 or 6.
static __always_inline int zone_is_local(const __u8 *a, __u8 family)
{
	if (family == 4)
		return zone_local4(a);
	int zero10 = 1;
#pragma unroll
	for (int i = 0; i < 10; i++)
		if (a[i])
			zero10 = 0;
	if (zero10 && a[10] == 0xff && a[11] == 0xff)
		return zone_local4(a + 12);
	if (zero10 && a[10] == 0 && a[11] == 0 && a[12] == 0 && a[13] == 0 && a[14] == 0 && (a[15] == 0 || a[15] == 1))
		return 1; // :: and ::1
	if ((a[0] & 0xfe) == 0xfc)
		return 1; // fc00::/7
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 1; // fe80::/10
	if (a[0] == 0xff && ((a[1] & 0x0f) == 0x02 || (a[1] & 0x0f) == 0x01))
		return 1; // link- and interface-local multicast
	return 0;
}

// zone_matches reports whether traffic with remote address a falls under
// the traffic type (TRAFFIC_*).
static __always_inline int zone_matches(__u32 traffic, const __u8 *a, __u8 family)
{
	if (traffic == TRAFFIC_INTERNET)
		return !zone_is_local(a, family);
	if (traffic == TRAFFIC_LOCAL)
		return zone_is_local(a, family);
	return 1;
}
