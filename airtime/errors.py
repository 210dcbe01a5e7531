"""One error hierarchy; each kind maps to its own process exit code.

The exit codes are a contract with the orchestrator: Argo's retryStrategy retries
transient faults (storage, warehouse) and never retries what a retry cannot fix. Each
class says which it is (`retryable`), and the workflow's retry expression is generated
from `NOT_RETRIED_EXIT_CODES`, so the two never drift apart.
"""

from __future__ import annotations


class AirtimeError(Exception):
    """Base of every error airtime raises on purpose."""

    exit_code = 1
    # a retry of the same step with the same inputs could succeed
    retryable = True


class ConfigError(AirtimeError):
    """Settings or command-line arguments that cannot work."""

    exit_code = 2
    retryable = False


class InputError(AirtimeError):
    """A delivered file is missing, malformed or breaks a validation rule."""

    exit_code = 3
    retryable = False


class DeliveryHeldError(InputError):
    """The data-quality gate refused a delivery that is valid line by line but implausible as
    a whole: its generation is held (not failed) and waits for `airtime accept`."""


class VerificationError(AirtimeError):
    """What the warehouse holds does not match what the pipeline wrote."""

    exit_code = 4
    retryable = False


class StorageError(AirtimeError):
    """The object store or the warehouse failed (usually transient: retry)."""

    exit_code = 5


class NotPublishedError(AirtimeError):
    """A query needs a published run and there is none yet."""

    exit_code = 6
    retryable = False


class RunNotPublishedError(NotPublishedError):
    """A query names a run date with no published run (never run, held, failed, demoted)."""

    def __init__(self, message: str, run_date: object) -> None:
        super().__init__(message)
        self.run_date = run_date


class UnknownProgramError(AirtimeError):
    """Unknown program or signal: a query names a code the published run does not have.
    `missing` holds each such (field, code), the field as the query names it
    ("program_code" or "signal")."""

    exit_code = 7
    retryable = False

    def __init__(self, message: str, missing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class UpstreamMissingError(AirtimeError):
    """A step was started before the steps it reads finished for its date. Retrying the
    step alone cannot help: the workflow (or `airtime run`) must run the upstream first."""

    exit_code = 8
    retryable = False


class IntegrityError(AirtimeError):
    """Stored state is not what it must be: an artifact missing or not matching the digest
    its manifest recorded, a manifest that does not parse, a warehouse file that is not a
    database. Permanent: a retry reads the same bytes, so a person must repair it."""

    exit_code = 9
    retryable = False


class SupersededError(AirtimeError):
    """A generation cannot be published: a later delivery of the same date (loaded after
    it, by a run at the same time) is published already. A retry is refused the same way;
    running the date again with this delivery publishes it."""

    exit_code = 10
    retryable = False


def _all(cls: type[AirtimeError]) -> list[type[AirtimeError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _all(child))]


# exit codes the orchestrator must not retry
NOT_RETRIED_EXIT_CODES: tuple[int, ...] = tuple(sorted(
    {cls.exit_code for cls in _all(AirtimeError) if not cls.retryable}))
