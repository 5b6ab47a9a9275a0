"""MNIST itself: its sources (verified by SHA-256), the IDX format, and the prepared splits."""
