"""Performance benchmarks: brainrank's kernels against the peers a user would otherwise
pick, measured in the same run on the same data (``python -m bench``)."""
