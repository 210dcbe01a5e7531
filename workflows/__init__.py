"""Argo Workflows resources for the daily job, defined with Hera (definitions only)."""
