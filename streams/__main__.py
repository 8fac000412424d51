import sys

from streams.launcher import main

sys.exit(main())
