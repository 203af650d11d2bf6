"""The running kernel's own BTF (/sys/kernel/btf/vmlinux): the ids calibration needs
to call a kfunc (a kfunc call names its target by the BTF id of its FUNC)."""

from __future__ import annotations

import functools

from bpflint.errors import BpfLintError
from bpflint.obj.btf import BtfError, parse_btf

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
BTF_KIND_FUNC = 12


@functools.cache
def _func_ids(path: str) -> dict[str, int]:
    try:
        with open(path, "rb") as f:
            btf = parse_btf(f.read())
    except OSError as exc:
        raise BpfLintError(f"{path}: cannot read the kernel's BTF: {exc.strerror}") from None
    except BtfError as exc:
        raise BpfLintError(f"{path}: unreadable BTF: {exc}") from None
    return {t.name: t.id for t in btf.types if t.kind == BTF_KIND_FUNC and t.name}


def kfunc_id(name: str, path: str = VMLINUX_BTF) -> int | None:
    """The BTF id of the function ``name`` in the kernel's BTF, None if it has none.
    (Whether it is a kfunc the program type may call is for the verifier to say.)"""
    return _func_ids(path).get(name)
