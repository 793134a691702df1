"""Label Studio ML backend: active learning for multi-label qualitative interview coding.

The folders are the architecture (docs/architecture.md): ``config`` → ``domain`` and ``learning``
(pure: no files, no network) → ``storage`` (everything on disk) and ``studio`` (everything sent to
Label Studio) → ``worker`` (background jobs) → ``server`` (HTTP) and ``cli``.
"""

import os

# torch's OpenMP threads sleep while they wait instead of spinning. The backend always shares the
# CPU (Label Studio, the server, its other lane), and a spinning thread then holds a core another
# process needs: small operations took 2–10× as long (docs/benchmarks.md, "Threads on a shared
# CPU"), at no cost on an idle machine. libgomp reads this when torch loads, so it is set here,
# before any of our modules imports torch; an OMP_WAIT_POLICY in the environment wins (an empty
# one, as compose passes an unset variable, does not).
if not os.environ.get("OMP_WAIT_POLICY"):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
