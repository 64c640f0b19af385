"""`python -m genomorph.cli`: the same as the `genomorph` command."""

from .main import main

main(prog_name="genomorph")
