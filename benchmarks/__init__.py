"""Benchmarks of the fleet against baselines measured on the same machine in the same run.

``python -m benchmarks`` runs every scenario; ``python -m benchmarks --help`` lists the
options. BENCHMARKS.md at the repository root describes each scenario and its baseline.
"""
