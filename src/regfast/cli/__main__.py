"""``python -m regfast.cli``: the ``regfast`` command."""

from __future__ import annotations

import sys

from regfast.cli.commands import main

sys.exit(main())
