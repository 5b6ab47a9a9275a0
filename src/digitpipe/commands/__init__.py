"""Entry points other than the DVC stages: sweeps, params.yaml, the comparison report, samples."""
