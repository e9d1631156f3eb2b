"""Composition root (DESIGN.md §2, L5): typed configuration and the code that builds
and wires every lower layer into a running node.

Only ``server`` and ``cli`` read configuration; lower layers take explicit
constructor arguments or their own small options dataclasses.
"""
