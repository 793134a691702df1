"""The kinds of background work, each a class handed its collaborators (worker/wiring.py builds them):

- ``head.HeadRefit``: after annotations, refit the head on the current body's cached embeddings;
- ``body.BodyFineTuning``: fine-tune a body in the background lane and embed the pool with it;
- ``full.FullRound``: train a whole model (MODEL_KIND=transformer, a differentiable head, FAST_LOOP=false);
- ``imports.ImportedTasks``: predict tasks imported since the serving version's round;
- ``embed.PoolPreEncoding``: encode the pool before the first round (background lane).
"""

from typing import Protocol


class Job(Protocol):
    def run(self) -> None:
        """Do the work; raise to record a failed round (the serving version stays as it was)."""
