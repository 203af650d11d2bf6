"""bpflint: static worst-case runtime cost of eBPF programs, and a CI gate on it."""

__version__ = "0.1.0"
