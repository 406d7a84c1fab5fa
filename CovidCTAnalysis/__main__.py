"""`python -m CovidCTAnalysis` is the `covidct` command."""

import sys

from .cli import main

sys.exit(main())
