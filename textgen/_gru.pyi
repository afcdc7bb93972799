import numpy as np

def gru_update(
    projected: np.ndarray,
    inner: np.ndarray,
    recurrent_bias: np.ndarray,
    h_prev: np.ndarray,
    out: np.ndarray,
    batch: int,
    units: int,
    /,
) -> None: ...
def gru_step_half(
    projected: np.ndarray,
    h_prev: np.ndarray,
    recurrent: np.ndarray,
    recurrent_bias: np.ndarray,
    out: np.ndarray,
    batch: int,
    units: int,
    /,
) -> None: ...
