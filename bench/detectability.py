"""How easily a classifier tells generated replies from a channel's real messages (ROC AUC).

A logistic regression over TF-IDF features, character 1-5-grams and word 1-3-grams in one union, is
cross-validated (5 folds, stratified) on as many replies as real messages; its mean ROC AUC is the
figure. 0.5: the classifier cannot tell them apart; 1.0: it always can. The same measure on one half of
the real messages against the other (`calibration_auc`) shows what "indistinguishable" reads as.

scikit-learn is a `bench` extra: imported here only, when a measure is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Replies and real messages each, at most: the classifier's cost grows with them, the figure settles.
MAX_PER_SIDE = 600
FOLDS = 5


def _balanced(
    written: Sequence[str], real: Sequence[str], limit: int, seed: int
) -> tuple[list[str], list[str]]:
    """Equal numbers of each side (at most `limit`), drawn at random with `seed`."""
    rng = np.random.default_rng(seed)
    size = min(len(written), len(real), limit)
    pick = lambda texts: [texts[i] for i in rng.choice(len(texts), size, replace=False)]  # noqa: E731
    return pick(written), pick(real)


def detectability_auc(
    written: Sequence[str], real: Sequence[str], *, seed: int = 0, limit: int = MAX_PER_SIDE
) -> float:
    """Mean 5-fold ROC AUC of telling `written` from `real` (balanced to the smaller side, at most
    `limit` each).

    Raises:
        ValueError: Fewer than `FOLDS` texts on a side.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    fake, true = _balanced(written, real, limit, seed)
    if len(fake) < FOLDS:
        raise ValueError(f"at least {FOLDS} texts a side are needed, received {len(fake)}")
    classifier = make_classifier()
    # An empty reply still counts as a reply: it is a space to the vectorizers.
    texts = [text or " " for text in fake + true]
    labels = np.array([1] * len(fake) + [0] * len(true))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(classifier, texts, labels, cv=folds, scoring="roc_auc")))


def make_classifier() -> Any:
    """The classifier of the measure: TF-IDF over character 1-5-grams and word 1-3-grams, in one union,
    then a logistic regression (a scikit-learn pipeline, unfitted)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            # Characters keep their case (capitals and casing habits are part of a channel's voice).
            (
                "characters",
                TfidfVectorizer(analyzer="char", ngram_range=(1, 5), lowercase=False, sublinear_tf=True),
            ),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 3), sublinear_tf=True)),
        ]
    )
    return make_pipeline(features, LogisticRegression(max_iter=2000))


def calibration_auc(real: Sequence[str], *, seed: int = 0, limit: int = MAX_PER_SIDE) -> float:
    """The same measure on one random half of `real` against the other half: near 0.5 when the measure
    is sound."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return detectability_auc(
        [real[i] for i in order[:half]], [real[i] for i in order[half:]], seed=seed, limit=limit
    )
