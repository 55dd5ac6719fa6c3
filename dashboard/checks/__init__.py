"""The post-deploy verification checklist, judged against the monitor's snapshot.

=================  ==========================================================================
module             concern
=================  ==========================================================================
``item``           what an item is: id, title, status (pass, fail, pending, n/a), remedy
``account_items``  the items judged per account (connected, nonce, skew, permissions, ...)
``gateway_items``  the items of a gateway running in the dashboard's process
``checklist``      every item in order, and the overall verdict
``verify``         the verify document (``/api/verify``, ``krakenwatch check --json``)
``gate``           ``krakenwatch check``: one-shot verification for deploy gates (exit 0/1/2)
=================  ==========================================================================
"""
