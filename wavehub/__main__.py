"""``python -m wavehub`` (and ``torchrun -m wavehub``) runs the CLI."""

import sys

from .cli import main

sys.exit(main())
