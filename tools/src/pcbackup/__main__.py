import sys

from pcbackup.cli import main

sys.exit(main())
