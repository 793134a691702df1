"""Label Studio ML backend: active learning for multi-label qualitative interview coding.

The folders are the architecture (docs/architecture.md): ``config`` → ``domain`` and ``learning``
(pure: no files, no network) → ``storage`` (everything on disk) and ``studio`` (everything sent to
Label Studio) → ``worker`` (background jobs) → ``server`` (HTTP) and ``cli``.
"""
