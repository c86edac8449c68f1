"""Face verification on pairs built from identity folders (LFW-style): ROC, AUC, best accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.train.data import FaceRecord


@dataclass(frozen=True)
class VerificationResult:
    auc: float
    best_accuracy: float
    best_threshold: float
    fpr: np.ndarray
    tpr: np.ndarray
    pairs: int

    def summary(self) -> dict[str, float]:
        return {"auc": round(self.auc, 4), "best_accuracy": round(self.best_accuracy, 4), "best_threshold": round(self.best_threshold, 4), "pairs": self.pairs}


def make_pairs(records: list[FaceRecord], count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` same-identity and ``count`` different-identity index pairs, (2·count, 2), and
    labels (1 same, 0 different). Only identities with at least two faces give same pairs."""
    rng = np.random.default_rng(seed)
    by_identity: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        if record.identity is not None:
            by_identity.setdefault(record.identity, []).append(index)
    multi = [v for v in by_identity.values() if len(v) >= 2]
    if not multi or len(by_identity) < 2:
        raise ValueError("pairs need at least one identity with two faces and two identities")
    same = []
    for _ in range(count):
        members = multi[rng.integers(len(multi))]  # identity first: a person with 500 photos counts once
        a, b = rng.choice(len(members), 2, replace=False)
        same.append((members[a], members[b]))
    names = list(by_identity)
    different = []
    for _ in range(count):
        i, j = rng.choice(len(names), 2, replace=False)
        different.append((rng.choice(by_identity[names[i]]), rng.choice(by_identity[names[j]])))
    pairs = np.array(same + different)
    return pairs, np.concatenate([np.ones(count), np.zeros(count)])


def roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold (scores ≥ threshold count as "same")."""
    order = np.argsort(-scores, kind="stable")
    sorted_labels = labels[order]
    tp = np.concatenate([[0], np.cumsum(sorted_labels)])
    fp = np.concatenate([[0], np.cumsum(1 - sorted_labels)])
    thresholds = np.concatenate([[np.inf], scores[order]])
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1), thresholds


def verify(embeddings: np.ndarray, pairs: np.ndarray, labels: np.ndarray) -> VerificationResult:
    """Cosine similarity of each pair (embeddings are unit-norm) → ROC, AUC, best accuracy."""
    scores = np.sum(embeddings[pairs[:, 0]] * embeddings[pairs[:, 1]], axis=1)
    fpr, tpr, thresholds = roc(scores, labels)
    auc = float(np.trapezoid(tpr, fpr))
    positives = labels.sum()
    accuracy = (tpr * positives + (1 - fpr) * (len(labels) - positives)) / len(labels)
    best = int(np.argmax(accuracy))
    return VerificationResult(auc, float(accuracy[best]), float(thresholds[best]), fpr, tpr, len(labels))
