import sys

from fncall.cli import main

sys.exit(main())
