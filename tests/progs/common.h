/* Shared definitions for the bpflint test-program corpus.
 *
 * Only UAPI headers and libbpf's bpf_helpers.h are used (no vmlinux.h), so the
 * small packet headers and context layouts the programs need are defined here.
 * The open-coded iterator and may_goto macros follow the shape of the kernel's
 * selftests header bpf_experimental.h, written out for this corpus.
 */
#ifndef BPFLINT_TEST_COMMON_H
#define BPFLINT_TEST_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/* ---- packet headers (network byte order fields) ------------------------- */
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMP_ 1
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

struct eth_hdr {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 proto;
} __attribute__((packed));

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct ip4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

struct ip6_hdr {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct ip6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 bytes */
};

struct tcp_hdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res; /* data offset in the high nibble */
	__u8 flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

struct udp_hdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

/* ---- tracing contexts ---------------------------------------------------- */
/* x86-64 struct pt_regs, in kernel order (kprobe / uprobe / perf_event ctx). */
struct regs_x86 {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#define ARG1(regs) ((regs)->di)
#define ARG2(regs) ((regs)->si)
#define ARG3(regs) ((regs)->dx)
#define RET(regs) ((regs)->ax)

/* syscalls/sys_enter_* tracepoint record: 8 bytes of common fields, then nr, args */
struct sys_enter_rec {
	__u64 common;
	long nr;
	unsigned long args[6];
};

/* ---- open-coded iterators (kfuncs) --------------------------------------- */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

/* for (i = start; i < end; i++) as an open-coded iterator; the destroy call runs
 * from the cleanup attribute when the loop scope ends. */
#define bpf_for(i, start, end) for (							\
	struct bpf_iter_num ___it __attribute__((aligned(8),				\
						 cleanup(bpf_iter_num_destroy))),	\
	*___p __attribute__((unused)) = (						\
		bpf_iter_num_new(&___it, (start), (end)),				\
		(void)bpf_iter_num_destroy, (void *)0);					\
	({										\
		int *___t = bpf_iter_num_next(&___it);					\
		(___t && ((i) = *___t, (i) >= (start) && (i) < (end)));			\
	});										\
)

/* repeat the body N times */
#define bpf_repeat(N) for (								\
	struct bpf_iter_num ___it __attribute__((aligned(8),				\
						 cleanup(bpf_iter_num_destroy))),	\
	*___p __attribute__((unused)) = (						\
		bpf_iter_num_new(&___it, 0, (N)),					\
		(void)bpf_iter_num_destroy, (void *)0);					\
	bpf_iter_num_next(&___it);							\
)

/* may_goto, hand-encoded: opcode 0xe5 (JMP | JCOND), regs 0, 16-bit offset in
 * slots to l_break, imm 0.  The kernel takes the jump once its per-program loop
 * budget is spent, so `cond_break` leaves any loop after finitely many rounds. */
#define __cond_break(expr)								\
	({ __label__ l_break, l_continue;						\
	asm volatile goto("1:.byte 0xe5;						\
		      .byte 0;								\
		      .long ((%l[l_break] - 1b - 8) / 8) & 0xffff;			\
		      .short 0"								\
		      :::: l_break);							\
	goto l_continue;								\
	l_break: expr;									\
	l_continue:;									\
	})
#define cond_break __cond_break(break)

#endif /* BPFLINT_TEST_COMMON_H */
