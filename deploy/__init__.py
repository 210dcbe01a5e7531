"""Deployment tooling run from the repository (not installed in the image)."""
