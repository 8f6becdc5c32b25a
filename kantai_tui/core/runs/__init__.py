"""Runs: the run folder (the contract with observers), trainer processes, probes."""
