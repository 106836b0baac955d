"""Run every benchmark in turn and print its table; each writes `bench/results/NAME.json`.

python -m bench.run_all [--repetitions 7] [--profile]
"""

from __future__ import annotations

import argparse

from bench import (
    api_throughput,
    asset_size,
    cold_start,
    loop_overhead,
    prompt_tokens,
    python_exec,
)
from bench._common import REPETITIONS


def main(argv: list[str] | None = None) -> None:
    """Loop overhead, cold start, python_exec, asset size, prompt tokens, local API throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--profile", action="store_true", help="add the loop's cProfile")
    args = parser.parse_args(argv)
    repetitions = ["--repetitions", str(args.repetitions)]
    loop_overhead.main([*repetitions, *(["--profile"] if args.profile else [])])
    print()
    cold_start.main(repetitions)
    print()
    python_exec.main(repetitions)
    print()
    asset_size.main([])
    print()
    prompt_tokens.main([])
    print()
    api_throughput.main([])


if __name__ == "__main__":
    main()
