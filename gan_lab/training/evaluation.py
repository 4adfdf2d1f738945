"""A run's evaluation policy, in one object: when the generator is scored (every metrics.every
epochs, or after each metrics.every_minutes of training), which generator's FID counts (the
moving average's, or the raw generator's where that is lower: ema.score_raw), which snapshot is
the best (the lowest FID: best.pt), and what a search trial's judge says after each score.

It decides and returns; the run records (logs the scores, writes best.pt, times the scoring) and
acts on the Verdict. Where the run is (its step, its seconds of training, the best FID so far)
is handed in by the caller: the policy reads no run, checkpoint or tracker of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gan_lab.metrics.scores import REFERENCE, SAMPLES
from gan_lab.outcome import Outcome

if TYPE_CHECKING:
    import torch

    from gan_lab.config import MetricsConfig
    from gan_lab.models.gan import Gan


class Scorer(Protocol):
    """All the policy asks of metrics.evaluator.Evaluator: a generator's scores."""

    def evaluate(self, generator: torch.nn.Module) -> dict[str, float]: ...


class Judge(Protocol):
    """All the policy asks of search.trial.TrialJudge: go on (None) or how the trial ends."""

    def after_evaluation(
        self, step: int, metrics: dict[str, float], unit: str = "epoch"
    ) -> Outcome | None: ...

    def at_end(self, metrics: dict[str, float]) -> Outcome | None: ...


@dataclass(frozen=True)
class Verdict:
    """What the policy decided after an evaluation, or at the end of the run: go on (stop is
    None), or stop now and end as `stop` says (PRUNED, or FAILED: the objective is not finite)."""

    stop: Outcome | None = None

    @property
    def goes_on(self) -> bool:
        return self.stop is None


GO_ON = Verdict()


@dataclass(frozen=True)
class Scored:
    """One evaluation: its scores (the raw generator's with a _raw suffix beside them), the FID
    that counts and whether it is the raw generator's."""

    scores: dict[str, float]
    fid: float | None
    raw_better: bool = False


class Evaluation:
    """The evaluation policy of one run; `scorer` None (metrics=none) never scores, `judge` None
    (not a search trial) never stops the run."""

    def __init__(
        self,
        metrics: MetricsConfig,
        score_raw: bool,
        scorer: Scorer | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.every, self.every_minutes = metrics.every, metrics.every_minutes
        self.score_raw, self.scorer, self.judge = score_raw, scorer, judge
        self.scores: dict[str, float] = {}  # the last evaluation's
        self.evaluated_at = -1  # the step of the last evaluation
        self.evaluated_mark = 0  # metrics.every_minutes: the minute mark last evaluated at

    # the schedule
    @property
    def by_minutes(self) -> bool:
        """Scored after each metrics.every_minutes of training, whatever the epoch."""
        return self.scorer is not None and self.every_minutes is not None

    def due_after_epoch(self, epoch: int) -> bool:
        """metrics.every epochs (0: none but the end's); by minutes, never after an epoch."""
        if self.scorer is None or self.every_minutes is not None or not self.every:
            return False
        return epoch % self.every == 0

    def due_after_step(self, seconds: float) -> bool:
        """By minutes: at the step after each metrics.every_minutes of the `seconds` trained."""
        return self.by_minutes and self.minute_mark(seconds) > self.evaluated_mark

    def continue_from(self, seconds: float) -> None:
        """A resumed run goes on with the minute marks where its checkpoint left them: each mark
        its `seconds` of training passed was scored at the step that passed it, before any later
        checkpoint. (Started afresh at 0, a resumed run scored at its first step.)"""
        if self.every_minutes is not None:
            self.evaluated_mark = self.minute_mark(seconds)

    def due_at_end(self, step: int) -> bool:
        """The end's evaluation, unless the run was scored at its last step already."""
        return self.scorer is not None and self.evaluated_at != step

    def minute_mark(self, seconds: float) -> int:
        """How many metrics.every_minutes `seconds` of training make."""
        return int(seconds // (self.every_minutes * 60))

    # the generator choice
    def score(self, gan: Gan, step: int, seconds: float) -> Scored:
        """Score the generator the run shows (the moving average where it keeps one) and, with
        ema.score_raw, the raw one beside it: the lower FID of the two counts. `step` and
        `seconds` (of training) say where the run is: the schedule goes on from there."""
        scores = self.scorer.evaluate(gan.eval_generator)
        fid, raw_better = scores.get("fid"), False
        if gan.ema is not None and self.score_raw:
            raw = self.scorer.evaluate(gan.generator)
            scores |= {f"{k}_raw": v for k, v in raw.items() if k not in (SAMPLES, REFERENCE)}
            if fid is not None and raw["fid"] < fid:
                fid, raw_better = raw["fid"], True
        self.scores, self.evaluated_at = scores, step
        if self.every_minutes is not None:
            self.evaluated_mark = self.minute_mark(seconds)
        return Scored(scores, fid, raw_better)

    # the best snapshot
    @staticmethod
    def is_best(scored: Scored, best_fid: float | None) -> bool:
        """Whether the snapshot scored becomes best.pt: the lowest FID so far (`best_fid`)."""
        return scored.fid is not None and (best_fid is None or scored.fid < best_fid)

    # the search trial's verdict
    def verdict(self, epoch: int, best_fid: float | None) -> Verdict:
        """After the evaluation at `epoch`: a search trial's judge sees the scores and the best
        FID, at that epoch, or at that minute mark where the run is scored by minutes (a search's
        trials compared at equal minutes of training, not equal epochs)."""
        if self.judge is None:
            return GO_ON
        scores = {**self.scores, "best_fid": best_fid}
        if self.every_minutes is None:
            return Verdict(self.judge.after_evaluation(epoch, scores))
        unit = f"{self.every_minutes:g}-minute mark"
        return Verdict(self.judge.after_evaluation(self.evaluated_mark, scores, unit))

    def verdict_at_end(self, metrics: dict[str, float]) -> Verdict:
        """A trial that trained to the end counts only with a finite objective in `metrics`."""
        return GO_ON if self.judge is None else Verdict(self.judge.at_end(metrics))
