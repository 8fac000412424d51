"""``python -m streams.flowlogs.dashboard dashboard ...``: the ``networkflow`` command."""

import sys

from streams.flowlogs.dashboard.cli import main

sys.exit(main())
