"""Pure tensor code for each learngene method. No files, no network: artifact.py and hub.py do I/O."""

__all__ = ["kron", "wave", "tleg", "select"]
