"""Mutual-information and entropy estimators: pure, jittable functions of arrays (bits by default)."""
