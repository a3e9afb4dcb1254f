"""punchclock's local highly available cluster: etcd, Patroni/PostgreSQL, HAProxy and the app, on loopback.

``python -m deploy.cluster up|status|down`` renders every configuration into one state directory and hands
the processes to supervisord; nothing here supervises a process itself.
"""
