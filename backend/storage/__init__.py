"""Everything the backend keeps on disk, each file with one owner: the layout (``ProjectDir``),
atomic writes and locks, the typed project state, model versions, embedding caches and the pool
listing."""
