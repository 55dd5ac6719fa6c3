"""The post-deploy verification checklist, judged against the monitor's snapshot.

=================  ==========================================================================
module             concern
=================  ==========================================================================
``item``           what an item is: id, title, status (pass, fail, pending, skipped), remedy
``account_items``  the items judged per account (connected, balance, nonce, permissions, key)
``trading_items``  ``trading_active`` per account: orders placed or filled, from the stream
``gateway_items``  the items of a gateway running in the dashboard's process
``guard_items``    its trading guard's: ``halted`` per account, another writer on ``dedicated_key``
``checklist``      every item in order: the global ones (clock, Kraken, bot log) and per account
``verify``         the verify document and its verdict (``/api/verify``, ``krakenwatch check``)
``gate``           ``krakenwatch check``: one-shot verification for deploy gates (exit 0/1/2)
=================  ==========================================================================
"""
