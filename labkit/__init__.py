"""The network-namespace lab shared by the tests, the benchmarks (bench/) and the demo (contrib/):
nodes, a bridge, daemons started the way users start them, and listeners to health-check.
Not installed with the package: it needs the repository (it starts daemons from it)."""
