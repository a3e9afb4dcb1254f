"""``python -m bench``: run the benchmark with the knobs from the environment."""

from bench.run import main

raise SystemExit(main())
