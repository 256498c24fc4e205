"""Typed errors. Every error says what went wrong *and* what to do about it.

Modelled on ``huggingface_hub.errors``: one small hierarchy rooted at :class:`WavehubError`, so callers can
catch everything wavehub raises with one ``except``, and the CLI can print ``str(err)`` (one line plus a
remedy) instead of a traceback. Errors that are also classic Python categories inherit from them too
(``SpecError`` is a ``ValueError``, ``LearngeneNotFoundError`` a ``FileNotFoundError``) so generic handlers work.

Every error also carries structured fields, ``None`` when unknown: ``repo_id``, ``revision`` and ``status`` (the
HTTP status) on Hub errors, ``path`` on file errors, ``argument`` (the Python parameter name, e.g. ``"dtype"``)
on :class:`ArgumentError`. Programs branch on those instead of parsing the message; the CLI maps ``argument``
to its flag name. The library's messages speak Python (``dtype='float7'``), never CLI flags.
"""

from __future__ import annotations

import os

__all__ = [
    "WavehubError",
    "ArgumentError",
    "SpecError",
    "ArtifactError",
    "ArtifactFormatError",
    "ArtifactVersionError",
    "IntegrityError",
    "LearngeneNotFoundError",
    "RevisionNotFoundError",
    "EntryNotFoundError",
    "OfflineError",
    "HubError",
    "DownloadError",
    "AuthError",
    "DeviceError",
    "DatasetNotFoundError",
    "AncestryError",
    "BuildError",
    "FitError",
    "ExportError",
    "OutputError",
]


class WavehubError(Exception):
    """Base class. ``remedy`` is one line telling the user what to do next; the keyword fields say what the
    error is about (``None`` when unknown)."""

    default_remedy = ""

    def __init__(
        self,
        message: str,
        remedy: str | None = None,
        *,
        repo_id: str | None = None,
        revision: str | None = None,
        path: str | os.PathLike | None = None,
        status: int | None = None,
        argument: str | None = None,
    ):
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy
        self.repo_id = repo_id
        self.revision = revision
        self.path = None if path is None else str(path)
        self.status = status
        self.argument = argument
        super().__init__(self.__str__())

    def fields(self) -> dict[str, object]:
        """The structured fields that are known (for re-raising with a new message, or for logging)."""
        return {k: v for k in _FIELDS if (v := getattr(self, k, None)) is not None}

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} -> {self.remedy}"
        return self.message


_FIELDS = ("repo_id", "revision", "path", "status", "argument")


class ArgumentError(WavehubError, ValueError):
    """An option has a value wavehub cannot use (``dtype='float7'``); ``argument`` names the parameter."""


class SpecError(WavehubError, ValueError):
    """The requested model size or options cannot be served by this learngene."""

    default_remedy = "Run `wavehub info NAME` to see the depths and widths this learngene serves."


class ArtifactError(WavehubError, ValueError):
    """A learngene artifact could not be read or is inconsistent."""

    default_remedy = "Re-download it with `wavehub pull NAME --force` or rebuild it with `wavehub build`."


class ArtifactFormatError(ArtifactError):
    """The file is not a (complete, well-formed) wavehub learngene."""


class ArtifactVersionError(ArtifactError):
    """The artifact was written in a format version this wavehub cannot read."""

    default_remedy = "Upgrade wavehub (`pip install -U wavehub`) or pull a revision in format v1."


class IntegrityError(ArtifactError):
    """A file's sha256 does not match the one recorded for it (corruption or tampering)."""

    default_remedy = (
        "Run `wavehub cache verify --repair` or `wavehub pull NAME --force` to fetch a clean copy."
    )


class LearngeneNotFoundError(WavehubError, FileNotFoundError):
    """No learngene by that name, path or repo id could be found."""

    default_remedy = (
        "Run `wavehub list` for the zoo; the bundled default `dinov2s-learngene` always works offline."
    )


class RevisionNotFoundError(LearngeneNotFoundError):
    """The repo exists but not at that branch, tag or commit."""

    default_remedy = "Check the revision name; `wavehub info NAME` shows the pinned revision."


class EntryNotFoundError(LearngeneNotFoundError):
    """The repo/revision exists but lacks a file wavehub needs."""

    default_remedy = "The repo is not a wavehub learngene (needs learngene.safetensors and config.json)."


class OfflineError(WavehubError, ConnectionError):
    """Offline mode is on (or the Hub is unreachable) and the file is not cached."""

    default_remedy = (
        "Unset HF_HUB_OFFLINE and run `wavehub pull NAME` on a connected machine, or use the bundled "
        "`dinov2s-learngene`."
    )


class HubError(WavehubError):
    """The Hub answered with an error wavehub has no more specific class for."""

    default_remedy = "Check HF_ENDPOINT and your network, then retry."


class DownloadError(HubError):
    """A download failed or was interrupted; nothing partial was kept."""

    default_remedy = "Retry `wavehub pull NAME`; an interrupted download resumes or restarts cleanly."


class AuthError(HubError, PermissionError):
    """The repo is private or gated and no valid token was sent."""

    default_remedy = "Log in with `hf auth login` or set HF_TOKEN to a token that can read the repo."


class DeviceError(WavehubError, RuntimeError):
    """The requested device is not available on this machine."""

    default_remedy = "Pass device='cpu' (or device=None to pick CUDA when present)."


class DatasetNotFoundError(WavehubError, FileNotFoundError):
    """A dataset wavehub knows about is not installed."""


class AncestryError(WavehubError, ValueError):
    """An ancestry model could not be loaded or is not a supported ViT."""


class BuildError(WavehubError, RuntimeError):
    """Learngene construction failed (bad options, checkpoint mismatch, ...)."""


class FitError(BuildError):
    """Fitting diverged (a non-finite loss). A BuildError too, so handlers written before it existed still work."""

    default_remedy = (
        "Lower the learning rate (lr=...) or check the data; fit_options are passed to fit_scalers."
    )


class ExportError(WavehubError, ValueError):
    """A model cannot be exported in the requested format."""


class OutputError(WavehubError, OSError):
    """An output folder cannot be written: it holds other files, is a file, or its parent is not writable."""

    default_remedy = "Choose a new or empty folder, or pass --force to replace it."
