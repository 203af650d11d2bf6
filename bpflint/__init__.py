"""bpflint: static worst-case runtime cost of eBPF programs, and a CI gate on it."""

__version__ = "0.1.0"

from bpflint import native as _native  # noqa: E402 - needs nothing above but must run first

_native.choose()  # before any compiled module can be imported
