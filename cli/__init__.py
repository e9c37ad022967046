"""Typer command-line app over the genaug library (installed as ``genaug_cli``)."""
