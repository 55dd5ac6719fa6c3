"""The running product: one process serving the pages, ``/metrics``, ``/api/verify`` and the
monitor (``krakenwatch up`` and ``demo``), composed here and nowhere else.

What starts what: :mod:`~dashboard.cli` runs ``up`` (:mod:`.up`) or ``demo`` (:mod:`.demo`,
which starts the simulator and then ``up``); ``up`` builds the :class:`~.service.Service` and the
Streamlit app (:mod:`.streamlit_app`), whose lifespan starts the service's monitor.

====================  ======================================================================
module                concern
====================  ======================================================================
``service``           :class:`Service`: settings, store, monitor, metrics, prices wired once
``streamlit_app``     the ``st.App``: pages, routes and the lifespan that starts the service
``routes``            ``GET /metrics`` and ``GET /api/verify`` (Starlette routes)
``deploy_routes``     ``/api/deploys``: mark a deploy, list them, the latest one judged now
``admission``         who may use the routes (password, admin token, loopback)
``auth``              the optional shared password (pages, routes) and its throttle
``embedded_gateway``  ``up --gateway``: the signing gateway in the dashboard's process
``sockets``           ``TCP_NODELAY`` on the servers' sockets
``up``                ``krakenwatch up``: arguments, the bound port, the server run
``demo``              ``krakenwatch demo``: the simulator with demo accounts, then ``up``
``terminal``          what the operator sees in the terminal as it starts and stops
====================  ======================================================================
"""
