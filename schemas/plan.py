"""The plan: the foreign-key graph (networkx) turned into an order of work.

See :func:`build_plan`. IMPLEMENTATION PENDING (helper).
"""
