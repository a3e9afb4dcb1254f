"""punchclock's local highly available cluster: etcd, Patroni/PostgreSQL, HAProxy and the app, on loopback.

``punchclock-cluster up|status|down`` (make cluster-up) renders every configuration into one state directory and hands
the processes to supervisord; nothing here supervises a process itself.
"""
