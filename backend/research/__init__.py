"""Research on coded data, away from Label Studio: the study's protocol replayed for a grid of
configurations (`coding-backend simulate`), its corpus, results and report."""
