"""``python -m stream`` is ``enhance-video``."""
import sys

from stream.cli import main

sys.exit(main())
