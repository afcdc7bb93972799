"""Bundles no model version points at: removed, so that nothing a member was forgotten from stays on disk.

A trainer killed between publishing a bundle and registering it leaves a bundle that no row points at.
Its job's next attempt removes it, but a `forget-me` (or the retention limit, or a channel taken back)
in between marks the attempt's version failed, and then nothing ever would: weights that learned from the
member's messages would stay on the model volume for good. A staging directory whose job ended without
cleaning up (a killed trainer, a cancelled job) and a delete cut short hold the same.

So the trainer, every hour, removes every directory of the model store (`db.model_store`) that nothing
needs: a bundle that no version row points at and that no running job is about to register, a staging
directory whose job is not running, and an interrupted delete. Anything changed within the grace period is
left for the next pass, so a bundle being published or registered right now is never touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.errors import BundleOutsideStore
from db.model_store import ModelStore, StoredDirectory
from db.models import ModelVersion, TrainingJob

logger = logging.getLogger(__name__)

# A directory changed more recently than this is left alone: publishing and registering take seconds.
ORPHAN_GRACE_SECONDS = 3600.0
# How often the trainer looks for them.
ORPHAN_SWEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class InUse:
    """What the database says is needed: bundle locations rows point at, and what running jobs hold."""

    pointed_at: frozenset[str]
    being_registered: frozenset[tuple[str, int]]
    running_jobs: frozenset[int]

    def needs(self, directory: StoredDirectory) -> bool:
        """Whether `directory` must stay."""
        if directory.kind == "bundle":
            return (
                directory.location in self.pointed_at
                or (directory.scope_key, directory.version) in self.being_registered
            )
        if directory.kind == "staging":
            job_id = directory.label.removeprefix("job-")
            if directory.label == job_id or not job_id.isdigit():
                return True  # not a job's: not known to be done with
            return int(job_id) in self.running_jobs
        return False  # an interrupted delete


def in_use(session: Session, store: ModelStore) -> InUse:
    """Read what the database needs of the model store, in one snapshot."""
    locations = session.scalars(select(ModelVersion.bundle_path).where(ModelVersion.bundle_path.is_not(None)))
    pointed_at = {store.canonical_location(location) for location in locations if location}
    running = session.execute(
        select(TrainingJob.id, TrainingJob.scope_key).where(TrainingJob.status == "running")
    )
    running_jobs = {job_id: scope_key for job_id, scope_key in running}
    # A version still `training` in a scope whose job runs may be published and waiting to be registered.
    training = session.execute(
        select(ModelVersion.scope_key, ModelVersion.version).where(ModelVersion.status == "training")
    )
    being_registered = {(key, number) for key, number in training if key in running_jobs.values()}
    return InUse(
        frozenset(location for location in pointed_at if location is not None),
        frozenset(being_registered),
        frozenset(running_jobs),
    )


def remove_orphans(
    engine: Engine,
    store: ModelStore,
    *,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
    now: float | None = None,
) -> list[str]:
    """Remove the store's directories that nothing needs and that did not change for `grace_seconds`.

    Args:
        engine: The database.
        store: The model store.
        grace_seconds: How long a directory must have been left unchanged.
        now: The current time in seconds since the epoch (tests).

    Returns:
        The locations removed.
    """
    moment = time.time() if now is None else now
    # Listed before the rows are read: a bundle is published only after its version row exists, so the
    # row of every bundle listed here is there to be read.
    try:
        candidates = [d for d in store.directories() if moment - d.modified_at >= grace_seconds]
    except OSError as error:  # a directory removed while it was listed: the next pass sees the rest
        logger.warning("could not list the model directory: %s", error)
        return []
    if not candidates:
        return []
    with Session(engine) as session:
        needed = in_use(session, store)
    removed: list[str] = []
    for directory in candidates:
        if needed.needs(directory):
            continue
        try:
            store.remove_directory(directory)
        except (BundleOutsideStore, OSError) as error:
            logger.warning("could not remove %s no model version needs: %s", directory.location, error)
            continue
        removed.append(directory.location)
    if removed:
        logger.info(
            "removed %d directories of the model store that no model version needs: %s",
            len(removed),
            ", ".join(removed),
        )
    return removed
