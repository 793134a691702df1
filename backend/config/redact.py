"""Keeping credentials out of what the backend shows: logs, errors, MLflow params."""

from urllib.parse import urlsplit


def hide_credentials(text: str, url: str) -> str:
    """`text` (`url` itself, or a message naming it) with the user:password of `url` hidden."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return text.replace(userinfo, "***") if userinfo else text
