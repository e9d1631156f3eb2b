"""Command-line interface (DESIGN.md §2, L6): the ``tessera`` typer app.

One small module per command family (``serve.py``...); ``main.py`` assembles them.
Commands import heavy layers lazily so ``tessera --help`` and ``tessera version``
stay fast.
"""
