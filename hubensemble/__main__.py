"""`python -m hubensemble` and the `hubensemble` console script run the command line."""

from hubensemble.cli import main
from hubensemble.errors import exit_process


def run():
    """The program: `cli.main` on sys.argv, then `errors.exit_process` with its exit code."""
    exit_process(main())


if __name__ == "__main__":
    run()
