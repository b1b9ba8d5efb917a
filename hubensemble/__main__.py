"""`python -m hubensemble` runs the command line."""

import sys

from hubensemble.cli import main

sys.exit(main())
