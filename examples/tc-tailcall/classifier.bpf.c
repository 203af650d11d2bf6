// SPDX-License-Identifier: GPL-2.0
/* A TC ingress classifier split into tail-called stages.
 *
 * The entry program parses Ethernet and IPv4 once and jumps, through a statically
 * initialised prog array, to the stage for the packet's protocol:
 *   stage 0 (TCP)  counts bytes per flow in an LRU map and marks bulk flows;
 *   stage 1 (UDP)  polices DNS responses with a per-source token bucket;
 *   stage 2 (ICMP) counts echo requests per source and drops floods.
 * Splitting keeps each program small for the verifier and lets user space replace a
 * stage without reloading the others. Anything the stages do not handle passes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

enum stage {
	STAGE_TCP = 0,
	STAGE_UDP = 1,
	STAGE_ICMP = 2,
	STAGE_MAX,
};

#define BULK_FLOW_BYTES (10ULL << 20) /* flows past 10 MiB get the bulk mark */
#define MARK_BULK 0x10
#define DNS_PORT 53
#define DNS_TOKENS_MAX 100 /* burst of responses per source */
#define DNS_TOKENS_PER_SEC 50
#define ICMP_ECHO_PER_SEC_MAX 20

/* <linux/icmp.h> drags in libc's <sys/socket.h>; the four bytes needed are these. */
#define ICMP_ECHO 8
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

struct flow_stats {
	__u64 bytes;
	__u64 packets;
};

struct bucket {
	__u64 last_ns;
	__u64 tokens;
};

struct echo_window {
	__u64 window_start_ns;
	__u32 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __be32);
	__type(value, struct bucket);
} dns_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __be32);
	__type(value, struct echo_window);
} echo_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAGE_MAX + 1); /* one slot per stage, the last for misses */
	__type(key, __u32);
	__type(value, __u64);
} dispatched SEC(".maps");

/* Returns the IPv4 header, or NULL when the packet is not (complete) IPv4. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb, void **l4)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	struct iphdr *iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return NULL;
	*l4 = (void *)iph + iph->ihl * 4;
	return iph;
}

static __always_inline void count_dispatch(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&dispatched, &slot);
	if (n)
		*n += 1;
}

SEC("tc")
int stage_tcp(struct __sk_buff *skb)
{
	void *l4;
	struct iphdr *iph = ipv4_header(skb, &l4);
	if (!iph)
		return TC_ACT_OK;
	struct tcphdr *tcp = l4;
	if ((void *)(tcp + 1) > (void *)(long)skb->data_end)
		return TC_ACT_OK;

	struct flow_key key = {
		.saddr = iph->saddr,
		.daddr = iph->daddr,
		.sport = tcp->source,
		.dport = tcp->dest,
	};
	struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);
	if (!stats) {
		struct flow_stats fresh = { .bytes = skb->len, .packets = 1 };
		bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		return TC_ACT_OK;
	}
	__sync_fetch_and_add(&stats->bytes, skb->len);
	__sync_fetch_and_add(&stats->packets, 1);
	if (stats->bytes > BULK_FLOW_BYTES)
		skb->mark = MARK_BULK;
	return TC_ACT_OK;
}

SEC("tc")
int stage_udp(struct __sk_buff *skb)
{
	void *l4;
	struct iphdr *iph = ipv4_header(skb, &l4);
	if (!iph)
		return TC_ACT_OK;
	struct udphdr *udp = l4;
	if ((void *)(udp + 1) > (void *)(long)skb->data_end)
		return TC_ACT_OK;
	if (udp->source != bpf_htons(DNS_PORT))
		return TC_ACT_OK;

	/* Token bucket per source: refill by elapsed time, spend one per response. */
	__be32 src = iph->saddr;
	__u64 now = bpf_ktime_get_ns();
	struct bucket *b = bpf_map_lookup_elem(&dns_buckets, &src);
	if (!b) {
		struct bucket fresh = { .last_ns = now, .tokens = DNS_TOKENS_MAX - 1 };
		bpf_map_update_elem(&dns_buckets, &src, &fresh, BPF_ANY);
		return TC_ACT_OK;
	}
	__u64 refill = (now - b->last_ns) * DNS_TOKENS_PER_SEC / 1000000000ULL;
	__u64 tokens = b->tokens + refill;
	if (tokens > DNS_TOKENS_MAX)
		tokens = DNS_TOKENS_MAX;
	if (refill)
		b->last_ns = now;
	if (tokens == 0) {
		b->tokens = 0;
		return TC_ACT_SHOT;
	}
	b->tokens = tokens - 1;
	return TC_ACT_OK;
}

SEC("tc")
int stage_icmp(struct __sk_buff *skb)
{
	void *l4;
	struct iphdr *iph = ipv4_header(skb, &l4);
	if (!iph)
		return TC_ACT_OK;
	struct icmphdr *icmp = l4;
	if ((void *)(icmp + 1) > (void *)(long)skb->data_end)
		return TC_ACT_OK;
	if (icmp->type != ICMP_ECHO)
		return TC_ACT_OK;

	__be32 src = iph->saddr;
	__u64 now = bpf_ktime_get_ns();
	struct echo_window *w = bpf_map_lookup_elem(&echo_windows, &src);
	if (!w || now - w->window_start_ns > 1000000000ULL) {
		struct echo_window fresh = { .window_start_ns = now, .count = 1 };
		bpf_map_update_elem(&echo_windows, &src, &fresh, BPF_ANY);
		return TC_ACT_OK;
	}
	if (++w->count > ICMP_ECHO_PER_SEC_MAX)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} stages SEC(".maps") = {
	.values = {
		[STAGE_TCP] = (void *)&stage_tcp,
		[STAGE_UDP] = (void *)&stage_udp,
		[STAGE_ICMP] = (void *)&stage_icmp,
	},
};

SEC("tc")
int classify(struct __sk_buff *skb)
{
	void *l4;
	struct iphdr *iph = ipv4_header(skb, &l4);
	if (!iph)
		return TC_ACT_OK;

	__u32 stage;
	switch (iph->protocol) {
	case IPPROTO_TCP:
		stage = STAGE_TCP;
		break;
	case IPPROTO_UDP:
		stage = STAGE_UDP;
		break;
	case IPPROTO_ICMP:
		stage = STAGE_ICMP;
		break;
	default:
		return TC_ACT_OK;
	}
	count_dispatch(stage);
	bpf_tail_call(skb, &stages, stage);
	/* Reached only when the slot is empty (user space removed the stage). */
	count_dispatch(STAGE_MAX);
	return TC_ACT_OK;
}
