import numpy as np

PAD_ID: int
BOS_ID: int
EOS_ID: int
UNK_ID: int
MAX_VOCAB: int

def sample_row(
    logits: np.ndarray,
    allowed: np.ndarray,
    may_end: bool,
    end_untempered: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    min_p: float,
    end_draw: float,
    token_draw: float,
    /,
) -> tuple[int, float]: ...
