"""pcbackup: punchclock's pgBackRest driver (backup, point-in-time restore, restore drill, metrics).

Standard library and punchclock_tools' PostgreSQL helpers only, so the same code runs from a checkout, from a
VM's systemd units and from CI; installed, it is the ``pcbackup`` command.
"""
