import sys

from weavergen.cli import main

sys.exit(main())
