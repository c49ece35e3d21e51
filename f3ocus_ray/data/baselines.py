"""Blind baselines of a data set: what a model that never looks at the image can reach.

All are fitted on the train split and scored on the test split of all clients pooled. A
model trained on VQA data should beat ``question_only`` clearly, or the images carry no
information it uses. :func:`blind_baselines` gives the two scores a run reports, for VQA,
multi-label and mixed data sets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from .dataset import FederatedDataset
from .format import DataError

__all__ = ["VQABaselines", "blind_baselines", "multilabel_majority_counts", "vqa_baselines"]


@dataclass(frozen=True)
class VQABaselines:
    """Test accuracies of blind guessers.

    ``majority``: the most frequent train answer for every question.
    ``question_only``: the most frequent train answer of each exact question text (pooled over
    clients; unseen questions fall back to ``majority``).
    ``question_only_per_client``: the same per (client, question), i.e. a guesser that also
    knows the client (stronger: modality questions become trivial); a question the client
    never asked in train falls back to the pooled guess.
    ``per_type``: ``question_only_per_client`` by question type, where records name one.
    """

    majority: float
    question_only: float
    question_only_per_client: float
    per_type: dict[str, float]
    n_test: int

    def __str__(self) -> str:
        types = ", ".join(f"{k} {v:.1%}" for k, v in sorted(self.per_type.items()))
        return (
            f"majority {self.majority:.1%}, question-only {self.question_only:.1%}, "
            f"question+client-only {self.question_only_per_client:.1%} on {self.n_test} test "
            f"questions" + (f" (by type: {types})" if types else "")
        )


def _mode(counter: Counter) -> str:
    # ties break towards the alphabetically first answer, so the baseline is deterministic
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def vqa_baselines(ds: FederatedDataset) -> VQABaselines:
    """Fit the blind guessers on train and score them on test (no images are decoded)."""
    if ds.task != "vqa":
        raise DataError(f"{ds.root}: blind VQA baselines need a VQA data set, not {ds.task}")
    train = [r for r in ds.records if r.split == "train"]
    test = [r for r in ds.records if r.split == "test"]
    if not train or not test:
        raise DataError(f"{ds.root}: baselines need both train and test records")
    overall = _mode(Counter(r.answer for r in train))
    by_q: dict[str, Counter] = defaultdict(Counter)
    by_cq: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in train:
        by_q[r.question][r.answer] += 1  # type: ignore[index]
        by_cq[(r.client, r.question)][r.answer] += 1  # type: ignore[index]
    guess_q = {q: _mode(c) for q, c in by_q.items()}
    guess_cq = {k: _mode(c) for k, c in by_cq.items()}
    hits_m = hits_q = hits_cq = 0
    per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in test:
        hits_m += r.answer == overall
        hits_q += r.answer == guess_q.get(r.question, overall)  # type: ignore[arg-type]
        fallback = guess_q.get(r.question, overall)  # type: ignore[arg-type]
        ok = r.answer == guess_cq.get((r.client, r.question), fallback)  # type: ignore[arg-type]
        hits_cq += ok
        if r.question_type is not None:
            per_type[r.question_type][0] += ok
            per_type[r.question_type][1] += 1
    n = len(test)
    return VQABaselines(
        majority=hits_m / n,
        question_only=hits_q / n,
        question_only_per_client=hits_cq / n,
        per_type={t: h / m for t, (h, m) in per_type.items()},
        n_test=n,
    )


def multilabel_majority_counts(ds: FederatedDataset) -> tuple[int, int, int]:
    """(tp, fp, fn) on test of always predicting the labels present in most train records."""
    train = [r for r in ds.records if r.split == "train"]
    common = {lab for lab in ds.labels if sum(lab in r.labels for r in train) > len(train) / 2}
    tp = fp = fn = 0
    for r in ds.records:
        if r.split == "test":
            truth = set(r.labels)
            tp, fp, fn = (
                tp + len(truth & common),
                fp + len(common - truth),
                fn + len(truth - common),
            )
    return tp, fp, fn


def blind_baselines(ds: FederatedDataset) -> tuple[float, float | None]:
    """(majority score, question-only score or None) of a data set's records.

    VQA: the majority and question-only accuracies. Multi-label: the micro-F1 of the majority
    label set. Mixed data sets pool the counts as evaluation does: a VQA answer is one
    prediction and one truth, so its correct answers are true positives and its wrong ones a
    false positive and a false negative each; the question-only baseline is VQA's alone (None
    when mixed)."""
    # f3ocus_ray.task imports torch; importing it here keeps `import f3ocus_ray.data` light
    from f3ocus_ray.task import micro_f1

    if ds.task == "vqa":
        blind = vqa_baselines(ds)
        return blind.majority, blind.question_only
    if ds.task == "multilabel":
        return micro_f1(*multilabel_majority_counts(ds)), None
    by_task = {
        t: FederatedDataset(ds.root, [r for r in ds.records if r.task == t], ds.image_size)
        for t in ("vqa", "multilabel")
    }
    tp, fp, fn = multilabel_majority_counts(by_task["multilabel"])
    n_vqa = sum(r.split == "test" for r in by_task["vqa"].records)
    correct = vqa_baselines(by_task["vqa"]).majority * n_vqa
    return micro_f1(tp + correct, fp + n_vqa - correct, fn + n_vqa - correct), None
