"""Executors other than the built-in ``local`` one (:mod:`bench.run.executors.local`).

``ray`` (:mod:`bench.run.executors.ray_executor`) runs a suite's builds and cells as Ray tasks on a
cluster; :mod:`bench.run.executors.resources` names what its nodes advertise (boards, the quiet
share), :mod:`bench.run.executors.tasks` is the work each task does on its node, and
:mod:`bench.run.executors.node` starts or joins a node for ``edgebench agent``. Nothing here imports
Ray until an executor or agent is used.
"""
