"""The whole bench pipeline on 1,000 customers (SQLite), quickly: CI may run it.

    .venv/bin/python bench/smoke.py

Same as ``bench/run.py --smoke``: seed, gunicorn, login, every page a few times; fails when a
page errors or lacks the Server-Timing / X-SQL-Statements headers. Results go to
bench/work/smoke/ (not committed).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run.main(["--smoke", *sys.argv[1:]]))
