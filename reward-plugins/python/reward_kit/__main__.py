"""`python -m reward_kit`: see `reward_kit.cli`."""

import sys

from .cli import main

sys.exit(main())
