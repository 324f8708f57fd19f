"""``python -m lhcbnn.grading release|grade|merge|check`` (see :mod:`lhcbnn.grading.cli`)."""

from lhcbnn.grading.cli import main

raise SystemExit(main())
