"""The kinds of background work, each a class handed the project's context and what is its own
(worker/wiring.py builds them):

- ``training.TrainingRound``: after annotations, the round's pipeline, with one of two fitters:
  ``head.HeadFitter`` refits the head on the current body's cached embeddings (the fast loop),
  ``full.ModelFitter`` trains a whole model (MODEL_KIND=transformer, a differentiable head,
  FAST_LOOP=false);
- ``body.BodyFineTuning``: fine-tune a body in the background lane and embed the pool with it;
- ``imports.ImportedTasks``: predict tasks imported since the serving version's round;
- ``embed.PoolPreEncoding``: encode the pool before the first round (background lane);
- ``export.ProjectExports``: the exports a lead asked for on the status page (background lane).
"""

from typing import Protocol


class Job(Protocol):
    def run(self) -> None:
        """Do the work; raise to record a failed round (the serving version stays as it was)."""
