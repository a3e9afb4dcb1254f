"""``make run`` and ``make test`` on a bare Debian 12 root file system (``python -m punchclock_tools.freshmachine``).

- ``image``: the bare minbase image and the little that reaching the mirrors needs
- ``machine``: the privileged container on a clone of HEAD, and make run / make test inside it
"""
