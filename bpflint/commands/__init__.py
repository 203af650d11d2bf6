"""The subcommands: one module each, defining NAME, HELP, add_arguments(parser) and
run(args). Their names and one-line help live here, so that the command line can
list them all and import only the one it runs (a command's imports are most of the
start-up time: the calibrator's alone is about 30 ms of every `analyze`)."""

COMMANDS = {
    "analyze": "estimate the runtime cost of every program in BPF objects",
    "disasm": "print the instructions of BPF programs with their source lines",
    "explain": "show the worst-case cost of a program line by line, hottest first",
    "calibrate": "measure instruction and helper costs on this kernel and write a cost "
                 "table (root)",
    "measure": "load one program, time it with BPF_PROG_TEST_RUN and compare with the "
               "estimate (root)",
    "check": "check every program against its budget and baseline (exit 1 on failure)",
    "baseline": "write the current results to the baseline file (atomically)",
    "history": "show how each program's worst case moved across the baseline file's git "
               "history",
    "audit": "cost every BPF program loaded on this machine, with its budget and measured "
             "run time (root)",
    "witness": "find and run an input that drives each program along its worst path",
}
