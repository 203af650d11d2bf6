// SPDX-License-Identifier: GPL-2.0
/* A small XDP firewall.
 *
 * Drops packets whose source address is in an LPM blocklist (IPv4 or IPv6), packets
 * to blocked (protocol, port) pairs, and TCP SYNs advertising a tiny MSS (the "SACK
 * panic" mitigation, CVE-2019-11477). Counts packets and bytes per verdict in a
 * per-CPU array. User space fills the maps; this file only enforces them.
 */
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

/* SYNs with an MSS below this are dropped (Linux's own floor since 5.2 is 48). */
#define MIN_MSS 48

enum verdict {
	VERDICT_PASS,
	VERDICT_DROP_SRC,
	VERDICT_DROP_PORT,
	VERDICT_DROP_MSS,
	VERDICT_DROP_MALFORMED,
	VERDICT_MAX,
};

struct lpm_v4_key {
	__u32 prefixlen;
	__be32 addr;
};

struct lpm_v6_key {
	__u32 prefixlen;
	struct in6_addr addr;
};

struct port_key {
	__u8 proto;
	__u8 pad;
	__be16 port;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__type(key, struct lpm_v4_key);
	__type(value, __u32); /* rule id, for user space's logs */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct lpm_v6_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct port_key);
	__type(value, __u32);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_MAX);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

static __always_inline int account(struct xdp_md *ctx, enum verdict v)
{
	__u32 key = v;
	struct counters *c = bpf_map_lookup_elem(&stats, &key);
	if (c) {
		c->packets += 1;
		c->bytes += ctx->data_end - ctx->data;
	}
	return v == VERDICT_PASS ? XDP_PASS : XDP_DROP;
}

static __always_inline int port_blocked(__u8 proto, __be16 port)
{
	struct port_key key = { .proto = proto, .port = port };
	return bpf_map_lookup_elem(&blocked_ports, &key) != NULL;
}

/* Verdict for the L4 header at c->pos. */
static __always_inline enum verdict check_l4(struct cursor *c, int l4proto)
{
	if (l4proto == IPPROTO_TCP) {
		struct tcphdr *tcp = c->pos;
		if ((void *)(tcp + 1) > c->end)
			return VERDICT_DROP_MALFORMED;
		if (port_blocked(IPPROTO_TCP, tcp->dest))
			return VERDICT_DROP_PORT;
		if (tcp->syn && !tcp->ack) {
			__u16 mss;
			if (tcp_find_mss(tcp, c->end, &mss) && mss < MIN_MSS)
				return VERDICT_DROP_MSS;
		}
	} else if (l4proto == IPPROTO_UDP) {
		struct udphdr *udp = c->pos;
		if ((void *)(udp + 1) > c->end)
			return VERDICT_DROP_MALFORMED;
		if (port_blocked(IPPROTO_UDP, udp->dest))
			return VERDICT_DROP_PORT;
	}
	return VERDICT_PASS;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	int l3proto = parse_eth(&c);
	int l4proto;

	if (l3proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph;
		l4proto = parse_ipv4(&c, &iph);
		if (l4proto < 0)
			return account(ctx, VERDICT_DROP_MALFORMED);
		struct lpm_v4_key key = { .prefixlen = 32, .addr = iph->saddr };
		if (bpf_map_lookup_elem(&blocklist_v4, &key))
			return account(ctx, VERDICT_DROP_SRC);
	} else if (l3proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h;
		l4proto = parse_ipv6(&c, &ip6h);
		if (l4proto < 0)
			return account(ctx, VERDICT_DROP_MALFORMED);
		struct lpm_v6_key key = { .prefixlen = 128 };
		__builtin_memcpy(&key.addr, &ip6h->saddr, sizeof(key.addr));
		if (bpf_map_lookup_elem(&blocklist_v6, &key))
			return account(ctx, VERDICT_DROP_SRC);
	} else {
		/* ARP, LLDP and friends are not this firewall's business. */
		return account(ctx, l3proto < 0 ? VERDICT_DROP_MALFORMED : VERDICT_PASS);
	}

	if (l4proto == IPPROTO_FRAGMENT)
		return account(ctx, VERDICT_PASS); /* no L4 header to judge */
	return account(ctx, check_l4(&c, l4proto));
}
