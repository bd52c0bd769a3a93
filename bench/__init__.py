"""qgjob's benchmark: the real compose stack, the workloads of issue 6, lower bounds, plots.

`python -m bench` (or `make bench`) runs the full sizes, `python -m bench --quick` (`make
bench-quick`) the same workloads smaller. It prints a human summary, then, as its LAST line,
one JSON object with every figure. See `bench.workloads` for what each workload does and
how each figure is measured.
"""
