#!/bin/bash
# Build the real-world BPF object corpus used by benchmarks/bench.py.
#
# Usage: benchmarks/build_corpus.sh [CORPUS_DIR]     (default: /work/corpus)
#
# Expects public source trees (fetched by you; never committed here) under
# CORPUS_DIR/src/<project>/, each with a one-line `.origin` file "<owner/repo> <commit>":
#   src/libbpf        libbpf/libbpf            (src/*.h: bpf_helpers.h, bpf_tracing.h, ...)
#   src/linux         torvalds/linux           (tools/testing/selftests/bpf/progs + headers)
#   src/bcc           iovisor/bcc              (libbpf-tools/)
#   src/cilium        cilium/cilium            (bpf/)
#   src/katran        facebookincubator/katran (katran/lib/bpf/)
#   src/xdp-tools     xdp-project/xdp-tools
#   src/ebpf-samples  vbpf/ebpf-samples        (prebuilt objects, copied as they are)
# Any missing tree is skipped. Objects land in CORPUS_DIR/obj/<project>/*.o and every
# object that compiled is listed in CORPUS_DIR/MANIFEST.txt as "object source-repo commit".
# Sources that do not compile with this clang are skipped (logged in build.log).
set -u
CORPUS=${1:-/work/corpus}
SRC=$CORPUS/src
OBJ=$CORPUS/obj
INC=$CORPUS/inc
LOG=$CORPUS/build.log
MANIFEST=$CORPUS/MANIFEST.txt
CLANG=${CLANG:-clang-19}
JOBS=${JOBS:-$(nproc)}
# <asm/types.h> for sources that include UAPI headers directly (Debian multiarch path).
MULTIARCH=${MULTIARCH:-/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)}

mkdir -p "$OBJ" "$INC/bpf" "$INC/gnu"
# glibc's <gnu/stubs.h> picks the 32-bit variant for -target bpf; an empty one suffices.
: >"$INC/gnu/stubs-32.h"
: > "$LOG"
: > "$MANIFEST"

origin() { cat "$SRC/$1/.origin" 2>/dev/null || echo "$1 unknown"; }

# compile PROJECT SOURCE OUTNAME [CLANG FLAGS...]
compile() {
    local project=$1 source=$2 out=$OBJ/$1/$3.o
    shift 3
    mkdir -p "$OBJ/$project"
    local log=$LOG.$project.$BASHPID
    # Retry with the v4 ISA: large unrolled programs need its long jumps (gotol).
    if "$CLANG" -target bpf -O2 -g "$@" -c "$source" -o "$out" >>"$log" 2>&1 ||
       "$CLANG" -target bpf -O2 -g "$@" -mcpu=v4 -c "$source" -o "$out" >>"$log" 2>&1; then
        echo "obj/$project/$(basename "$out") $(origin "$project") ${source#"$SRC"/}" >>"$MANIFEST"
    else
        echo "FAILED $project $source" >>"$log"
        rm -f "$out"
    fi
}

# Run at most $JOBS compiles at a time.
throttle() {
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
}

# Shared headers: libbpf's BPF-side headers as <bpf/...>, vmlinux.h of the running kernel.
if [ -d "$SRC/libbpf/src" ]; then
    cp "$SRC"/libbpf/src/*.h "$INC/bpf/"
fi
if [ ! -s "$INC/vmlinux.h" ] && [ -r /sys/kernel/btf/vmlinux ]; then
    bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$INC/vmlinux.h"
fi

build_bcc() {
    local dir=$SRC/bcc/libbpf-tools
    [ -d "$dir" ] || return 0
    for f in "$dir"/*.bpf.c; do
        throttle
        compile bcc "$f" "$(basename "$f" .bpf.c)" -mcpu=v3 -D__TARGET_ARCH_x86 \
            -I"$dir/x86" -I"$dir" -I"$INC" &
    done
}

build_selftests() {
    local dir=$SRC/linux/tools/testing/selftests/bpf
    [ -d "$dir/progs" ] || return 0
    for f in "$dir"/progs/*.c; do
        throttle
        # Flags of the selftests Makefile, minus its generated headers: libbpf's headers
        # (also as "bpf_helpers.h"), the running kernel's vmlinux.h, host UAPI headers.
        compile selftests "$f" "$(basename "$f" .c)" -mcpu=v3 -D__TARGET_ARCH_x86 \
            -I"$dir/progs" -I"$INC" -I"$INC/bpf" -I"$MULTIARCH" \
            -Wno-compare-distinct-pointer-types &
    done
}

build_cilium() {
    local dir=$SRC/cilium/bpf
    [ -d "$dir" ] || return 0
    # Flags from cilium's bpf/Makefile.bpf; its headers (bpf/include) are self-contained.
    local flags=(-mcpu=v3 -D__NR_CPUS__=128 -Wno-address-of-packed-member
        -Wno-unknown-warning-option -Wno-gnu-variable-sized-type-not-at-end
        -Wno-compare-distinct-pointer-types -Wno-unused-command-line-argument
        -nostdinc -I"$dir" -I"$dir/include" -std=gnu89 -ftrap-function=__undefined_trap)
    for name in bpf_lxc bpf_host bpf_xdp bpf_sock bpf_overlay bpf_network bpf_alignchecker; do
        [ -f "$dir/$name.c" ] || continue
        throttle
        compile cilium "$dir/$name.c" "$name" "${flags[@]}" &
    done
}

build_katran() {
    local dir=$SRC/katran/katran
    [ -d "$dir" ] || return 0
    local f
    while IFS= read -r f; do
        throttle
        # katran includes its headers both as "bpf.h" and as "katran/lib/bpf/...".
        compile katran "$f" "$(basename "${f%.c}" .bpf)" -mcpu=v3 -I"$(dirname "$f")" \
            -I"$dir/lib/linux_includes" -I"$dir/lib/bpf" -I"$SRC/katran" -I"$INC" \
            -I"$MULTIARCH" -Wno-compare-distinct-pointer-types &
    done < <(find "$dir" -name '*.bpf.c' -o -path '*/lib/bpf/*.c' | sort)
}

build_xdp_tools() {
    local dir=$SRC/xdp-tools
    [ -d "$dir" ] || return 0
    local f
    while IFS= read -r f; do
        throttle
        compile xdp-tools "$f" "$(basename "${f%.c}" .bpf)" -mcpu=v3 -I"$dir/headers" \
            -I"$dir/lib/libbpf/src" -I"$INC" -I"$(dirname "$f")" -I"$MULTIARCH" \
            -Wno-compare-distinct-pointer-types &
    done < <(find "$dir" -name '*.bpf.c' -o -name '*_kern.c' | sort)
}

copy_ebpf_samples() {
    local dir=$SRC/ebpf-samples
    [ -d "$dir" ] || return 0
    mkdir -p "$OBJ/ebpf-samples"
    local f base
    while IFS= read -r f; do
        base=$(basename "$(dirname "$f")")_$(basename "$f")
        cp "$f" "$OBJ/ebpf-samples/$base"
        echo "obj/ebpf-samples/$base $(origin ebpf-samples) ${f#"$SRC"/}" >>"$MANIFEST"
    done < <(find "$dir" -name '*.o' -size +0 | sort)
}

build_selftests
build_bcc
build_cilium
build_katran
build_xdp_tools
copy_ebpf_samples
wait
cat "$LOG".* >>"$LOG" 2>/dev/null
rm -f "$LOG".*
sort -o "$MANIFEST" "$MANIFEST"
echo "built $(wc -l <"$MANIFEST") objects; failures: $(grep -c '^FAILED' "$LOG")"
