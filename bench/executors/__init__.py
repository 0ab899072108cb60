"""Executors other than the built-in ``local`` one (:mod:`bench.executor`).

``ray`` (:mod:`bench.executors.ray_executor`) runs a suite's builds and cells as Ray tasks on a
cluster; :mod:`bench.executors.resources` names what its nodes advertise (boards, the quiet
share), :mod:`bench.executors.tasks` is the work each task does on its node, and
:mod:`bench.executors.node` starts or joins a node for ``edgebench agent``. Nothing here imports
Ray until an executor or agent is used.
"""
