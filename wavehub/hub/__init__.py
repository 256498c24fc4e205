"""Everything that talks to the network: resolve, pull, push and the cache, through ``huggingface_hub``.

Resolution order for a name: local path -> bundled -> HF cache at the pinned revision -> Hub. Downloads use
``hf_hub_download`` with ``library_name="wavehub"``, so ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ENDPOINT``,
``HF_TOKEN``, mirrors and ``HF_HUB_OFFLINE`` behave as in every Hugging Face library. The client does not check
content hashes, so wavehub does: against the zoo card, the LFS blob name and the artifact's own config.

The hub only fetches and verifies: :func:`pull` returns a verified folder. Building a model from it is the API
layer's job (``wavehub.pull(..., out=DIR)``); nothing here imports ``wavehub.api``.

Modules, one job each: ``names`` (what a name means; repo-id/revision checks), ``mapping`` (client exceptions
-> typed errors), ``threads`` (background jobs), ``download`` (listing, files, cache fallback), ``verify``
(hashes and the artifact validator), ``resolve`` (the resolution order, ``pull``), ``push``, ``cache``.
"""

from __future__ import annotations

from .cache import cache_clean, cache_ls, cache_rm, cache_verify
from .names import Target, check_repo_id, check_repo_paths, check_revision, is_offline, parse_name
from .push import push
from .resolve import pull, resolve, resolve_target

__all__ = [
    "Target",
    "parse_name",
    "resolve",
    "resolve_target",
    "pull",
    "push",
    "is_offline",
    "cache_ls",
    "cache_verify",
    "cache_rm",
    "cache_clean",
    "check_repo_paths",
    "check_repo_id",
    "check_revision",
]
