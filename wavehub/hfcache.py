"""Where a file sits in the Hugging Face cache, without importing the download client.

``huggingface_hub.try_to_load_from_cache`` lives in ``file_download``, whose import (httpx, pydantic, ...) costs
more than the rest of ``wavehub list`` together. This is the same lookup over the same cache layout
(``models--org--name/refs/<rev>`` -> ``snapshots/<commit>/<file>``), for the commands that only ask.
"""

from __future__ import annotations

import os

__all__ = ["try_to_load_from_cache"]


def try_to_load_from_cache(
    repo_id: str, filename: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> str | None:
    """The cached path of ``filename`` in ``repo_id`` at ``revision`` (default main), or None if not cached."""
    from huggingface_hub import constants

    if ".." in repo_id.split("/") or ".." in filename.split("/") or os.path.isabs(filename):
        return None
    repo = os.path.join(cache_dir or constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"))
    revision = revision or "main"
    ref = os.path.join(repo, "refs", revision)
    if ".." not in revision.split("/") and os.path.isfile(ref):
        with open(ref) as f:
            revision = f.read().strip()
    if ".." in revision.split("/") or not revision:
        return None
    path = os.path.join(repo, "snapshots", revision, filename)
    return path if os.path.isfile(path) else None
