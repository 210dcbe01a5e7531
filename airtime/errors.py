"""One error hierarchy; each kind maps to its own process exit code.

The exit codes are a contract with the orchestrator: Argo's retryStrategy retries
transient faults (storage, warehouse) and never retries bad input or a failed check.
"""

from __future__ import annotations


class AirtimeError(Exception):
    """Base of every error airtime raises on purpose."""

    exit_code = 1


class ConfigError(AirtimeError):
    """Settings or command-line arguments that cannot work."""

    exit_code = 2


class InputError(AirtimeError):
    """A delivered file is missing, malformed or breaks a validation rule."""

    exit_code = 3


class VerificationError(AirtimeError):
    """What the warehouse holds does not match what the pipeline wrote."""

    exit_code = 4


class StorageError(AirtimeError):
    """The object store or the warehouse failed (usually transient: retry)."""

    exit_code = 5


class NotPublishedError(AirtimeError):
    """A query needs a published run and there is none yet."""

    exit_code = 6


EXIT_CODES = {
    "ok": 0,
    "unexpected": 1,
    "config": ConfigError.exit_code,
    "input": InputError.exit_code,
    "verification": VerificationError.exit_code,
    "storage": StorageError.exit_code,
    "not_published": NotPublishedError.exit_code,
}
