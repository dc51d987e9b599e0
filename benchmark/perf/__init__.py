"""Speed and memory measurements: scripts that time soundaq side by side and print ratios.

Run one as ``python -m soundaq.benchmark.perf.<name>``.
"""
