"""Entry point for `python -m inferencehub` and for the frozen binary."""

from inferencehub.cli import main

if __name__ == "__main__":
    main()
