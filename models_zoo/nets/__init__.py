"""The zoo's networks, one module per net; build them by registry name with
:func:`soundaq.models_zoo.registry.build_net`. Shared pieces live in :mod:`soundaq.models_zoo.nets.common`.

Nothing is imported here eagerly, so a net whose module fails to import does not break the others.
"""
