"""Picking the distribution strategy and the precision policy for the hardware at hand."""

from __future__ import annotations

import json
import logging
import os

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def pick_strategy() -> tf.distribute.Strategy:
    """The strategy for this process: TPU, several workers (`TF_CONFIG`), several GPUs, or one device.

    Order matters: a TPU host also has a CPU, and a multi-worker job may have one GPU per worker.
    """
    tpu = _connect_tpu()
    if tpu is not None:
        log.info("training on TPU %s", tpu.master())
        return tf.distribute.TPUStrategy(tpu)
    if _multi_worker_config():
        log.info("training on several workers from TF_CONFIG")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        log.info("training on %d GPUs with MirroredStrategy", len(gpus))
        return tf.distribute.MirroredStrategy()
    device = gpus[0].name if gpus else "/cpu:0"
    return tf.distribute.OneDeviceStrategy(device)


def _connect_tpu() -> tf.distribute.cluster_resolver.TPUClusterResolver | None:
    # Only try where a TPU is advertised: the resolver probes metadata servers otherwise.
    if not (os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or os.path.exists("/dev/accel0")):
        return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        log.warning("a TPU is advertised but could not be reached (%s); not using it", error)
        return None


def _multi_worker_config() -> bool:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError:
        return False
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return workers > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes results (the only worker, or the chief of several)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def pick_precision_policy(strategy: tf.distribute.Strategy, requested: str = "auto") -> str:
    """The Keras dtype policy: `mixed_bfloat16` on TPUs and on GPUs that compute in bfloat16
    (compute capability 8.0 and newer), float32 elsewhere.

    bfloat16 keeps float32's exponent range, so no loss scaling is needed; older GPUs would need
    float16 with loss scaling, which this loop does not do, so they train in float32.
    """
    if requested != "auto":
        return requested
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability", (0, 0))
        if tuple(capability) >= (8, 0):
            return "mixed_bfloat16"
    return "float32"


def set_precision_policy(policy: str) -> None:
    keras.mixed_precision.set_dtype_policy(policy)
