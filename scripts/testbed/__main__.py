"""`python scripts/testbed up|status|down`: the directory runs as a program."""
import os
import sys

if __package__ in (None, ""):
    # Run as a directory (or as this file): Python put the package's own folder first on
    # sys.path, where its modules would shadow top-level ones. Put its parent there instead.
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != here]
    sys.path.insert(0, os.path.dirname(here))

from testbed.cli import main  # noqa: E402

sys.exit(main())
