"""Registering a published model: the last step of a job, and the only one serving can see.

The worker first moves the bundle into place in the model store; only then does one transaction give
the version row that location and apply the gate's verdict, after checking that the job is still this
worker's. A row never points at a half-written bundle, and a job that was cancelled or taken over
meanwhile changes nothing that serves. The same transaction closes the job as succeeded, so a connection
lost after it commits can never leave a registered model behind a job that runs again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.clock import database_now
from db.models import ModelVersion, TrainingJob
from db.registry import mark_candidate, promote, reject, retire_old_versions
from db.scopes import Scope
from trainer.errors import JobLost
from trainer.gate import Verdict
from trainer.notes import without_paths


def record_published(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    version_id: int,
    location: str,
    verdict: Verdict,
    scope: Scope,
    keep_versions: int,
) -> list[str]:
    """Give the `training` version its published bundle, activate or reject it, and close the job as
    succeeded, in the caller's session.

    Args:
        session: A session in a transaction that holds the write lock (commit it to keep the result).
        job_id: The job that trained the version.
        worker_id: This worker; the job must still be running under it.
        version_id: The version the job created.
        location: Where the model store published the bundle.
        verdict: The promotion gate's verdict.
        scope: The version's scope.
        keep_versions: Versions kept per scope; older ones are retired.

    Returns:
        The bundle locations of retired versions, to delete once the transaction is committed.

    Raises:
        JobLost: The job or the version is no longer this worker's.
    """
    job = session.get(TrainingJob, job_id, with_for_update=True)
    version = session.get(ModelVersion, version_id, with_for_update=True)
    if job is None or job.status != "running" or job.worker_id != worker_id:
        raise JobLost
    if version is None or version.status != "training":
        raise JobLost
    mark_candidate(session, version, bundle_path=location, metrics=verdict.metrics)
    # Notes are shown in chat: the verdict names the base model by where it lives, which stays in the log.
    summary = without_paths(verdict.summary)
    if verdict.promote:
        promote(session, version)
        version.note = f"{version.note}; promoted: {summary}"
    else:
        reject(session, version, note=f"{version.note}; rejected: {summary}")
    job.status = "succeeded"
    job.error = None
    job.model_version_id = version.id
    job.finished_at = database_now(session)
    return retire_old_versions(session, scope, keep_versions)
