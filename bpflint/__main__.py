from bpflint.cli import entry

entry()
