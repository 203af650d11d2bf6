"""`bpflint calibrate`'s machinery: benchmark bytecode (benches), loading and timing it
on the running kernel (timing), the cost table it writes (table), and the run that
ties them together (run). The cost model it writes for lives in bpflint/cost/."""
