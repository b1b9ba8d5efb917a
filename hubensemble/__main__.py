"""`python -m hubensemble` and the `hubensemble` console script run the command line."""

from hubensemble.cli import main
from hubensemble.errors import exit_process
from hubensemble.stdio import guard_streams, open_closed_descriptors, readable_streams


def run():
    """The program: `cli.main` on sys.argv, its standard streams made safe first (a closed
    descriptor, a reader that goes away, an encoding without "…" or "é": `stdio`), then
    `errors.exit_process` with its exit code."""
    open_closed_descriptors()
    readable_streams()
    with guard_streams():
        code = main()
    exit_process(code)


if __name__ == "__main__":
    run()
