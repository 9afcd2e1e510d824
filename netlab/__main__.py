"""`python -m netlab`: the unambiguous entry point (another tool also installs a `netlab`)."""

from netlab.cli import main

if __name__ == "__main__":
    main(prog_name="netlab")
