/* Bounds-checked packet header parsing for XDP.
 *
 * Every helper takes a cursor into the packet and the packet's end, checks that the
 * header fits before touching it, and advances the cursor past it: the pattern the
 * verifier needs to see before it allows a packet read.
 */
#ifndef FIREWALL_PARSE_H
#define FIREWALL_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* 802.1Q and 802.1ad tags stacked in front of the payload (QinQ needs two). */
#define VLAN_MAX_DEPTH 2
/* Extension headers walked before giving up on an IPv6 packet. */
#define IPV6_EXT_MAX 6
/* TCP options are at most 40 bytes; each takes at least one byte (NOP), but a real
 * SYN carries fewer than ten, so stop there and treat the rest as "no MSS seen". */
#define TCP_OPT_MAX 10

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct cursor {
	void *pos;
	void *end;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_opt_hdr_min {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 bytes */
};

static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Returns the L3 protocol (network byte order) after Ethernet and VLAN tags, or -1. */
static __always_inline int parse_eth(struct cursor *c)
{
	struct ethhdr *eth = c->pos;
	if ((void *)(eth + 1) > c->end)
		return -1;
	c->pos = eth + 1;
	__be16 proto = eth->h_proto;

	for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (!is_vlan(proto))
			break;
		struct vlan_hdr *vlan = c->pos;
		if ((void *)(vlan + 1) > c->end)
			return -1;
		proto = vlan->encap_proto;
		c->pos = vlan + 1;
	}
	return proto;
}

/* Returns the L4 protocol of an IPv4 packet, or -1; fragments other than the first
 * carry no L4 header and are reported as such. */
static __always_inline int parse_ipv4(struct cursor *c, struct iphdr **iph_out)
{
	struct iphdr *iph = c->pos;
	if ((void *)(iph + 1) > c->end)
		return -1;
	__u32 hdr_len = iph->ihl * 4;
	if (hdr_len < sizeof(*iph))
		return -1;
	if (c->pos + hdr_len > c->end)
		return -1;
	c->pos += hdr_len;
	*iph_out = iph;
	if (iph->frag_off & bpf_htons(0x1fff))
		return IPPROTO_FRAGMENT;
	return iph->protocol;
}

static __always_inline int is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT;
}

/* Returns the L4 protocol of an IPv6 packet after its extension headers, or -1. */
static __always_inline int parse_ipv6(struct cursor *c, struct ipv6hdr **ip6h_out)
{
	struct ipv6hdr *ip6h = c->pos;
	if ((void *)(ip6h + 1) > c->end)
		return -1;
	c->pos = ip6h + 1;
	*ip6h_out = ip6h;
	__u8 nexthdr = ip6h->nexthdr;

	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (!is_ipv6_ext(nexthdr))
			return nexthdr;
		struct ipv6_opt_hdr_min *ext = c->pos;
		if ((void *)(ext + 1) > c->end)
			return -1;
		if (nexthdr == IPPROTO_FRAGMENT) {
			/* Fixed 8 bytes; only the first fragment has the L4 header. */
			struct frag_hdr { __u8 nexthdr, reserved; __be16 frag_off; __be32 id; } *fh = c->pos;
			if ((void *)(fh + 1) > c->end)
				return -1;
			if (fh->frag_off & bpf_htons(0xfff8))
				return IPPROTO_FRAGMENT;
			c->pos = fh + 1;
		} else {
			c->pos += (ext->hdrlen + 1) * 8;
		}
		nexthdr = ext->nexthdr;
	}
	return -1; /* too many extension headers: let the firewall drop it */
}

/* Finds the MSS option of a TCP header: 1 and *mss set when present, 0 when not. */
static __always_inline int tcp_find_mss(struct tcphdr *tcp, void *end, __u16 *mss)
{
	__u8 *opts = (__u8 *)(tcp + 1);
	__u32 opts_len = tcp->doff * 4;
	__u32 off = 0;

	if (opts_len <= sizeof(*tcp))
		return 0;
	opts_len -= sizeof(*tcp);

	for (int i = 0; i < TCP_OPT_MAX; i++) {
		if (off >= opts_len)
			return 0;
		/* off < opts_len <= 40: the mask only tells the verifier so. */
		__u8 *opt = opts + (off & 0x3f);
		if ((void *)(opt + 1) > end)
			return 0;
		__u8 kind = opt[0];
		if (kind == 0) /* end of options */
			return 0;
		if (kind == 1) { /* NOP */
			off += 1;
			continue;
		}
		if ((void *)(opt + 2) > end)
			return 0;
		__u8 len = opt[1];
		if (len < 2)
			return 0;
		if (kind == 2 && len == 4) {
			if ((void *)(opt + 4) > end)
				return 0;
			*mss = ((__u16)opt[2] << 8) | opt[3];
			return 1;
		}
		off += len;
	}
	return 0;
}

#endif /* FIREWALL_PARSE_H */
