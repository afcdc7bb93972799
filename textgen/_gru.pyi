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
