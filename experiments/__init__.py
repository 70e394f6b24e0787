"""Thin experiment scripts: python -m experiments.NAME; each writes under results/NAME/."""
