"""Publishing: validate a learngene folder, then upload it (repo, optional branch and tag)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..artifact import load_learngene
from ..constants import LEARNGENE_FILES
from ..errors import OfflineError, WavehubError
from .mapping import map_hub_error, transport_errors
from .names import Target, check_repo_id, check_revision, is_offline

__all__ = ["push"]


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    revision: str = "main",
    tag: str | None = None,
    branch: str | None = None,
    private: bool = False,
    token: Any = None,
    commit_message: str | None = None,
) -> str:
    """Validate, then upload a learngene folder; create the repo if needed, optionally a branch and a tag."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    check_repo_id(repo_id)
    for rev in (revision, branch, tag):
        if rev is not None:
            check_revision(rev)
    lg = load_learngene(folder)  # refuse to publish anything that does not validate
    if is_offline():
        raise OfflineError(
            f"pushing to {repo_id} needs the Hub and offline mode is on (HF_HUB_OFFLINE)",
            "Unset HF_HUB_OFFLINE and run `wavehub push` again on a connected machine.",
            repo_id=repo_id,
        )
    api = HfApi(token=token)
    t = Target(repo_id, repo_id=repo_id, revision=branch or revision)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, revision=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=branch or revision,
            allow_patterns=list(LEARNGENE_FILES),
            commit_message=commit_message or f"Upload learngene {lg.name} ({lg.sha256[:12]})",
        )
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, exist_ok=False)
    except WavehubError:
        raise
    except transport_errors() as e:
        from huggingface_hub import constants

        raise OfflineError(
            f"the Hub at {constants.ENDPOINT} cannot be reached ({type(e).__name__}); nothing was "
            f"pushed to {repo_id}",
            "Check your network and HF_ENDPOINT, then run `wavehub push` again.",
            repo_id=repo_id,
            revision=t.revision,
        ) from e
    except Exception as e:  # noqa: BLE001
        raise map_hub_error(e, t, action="uploading to") from e
    return info.oid
