"""Data shaping and charts for the pages (importable, unit-tested; no Streamlit calls here).

Views feed the pages only: they read the snapshot, the events and the checklist, and return
tables, text and Altair charts.

============  =====================================================================
module        concern
============  =====================================================================
``overview``  the verdict, the checklist (failures first), one card per account
``deploys``   the latest deploy's banner, the deploy history, how to mark a deploy
``balances``  balances per asset, account and fleet, valued in USD; their history
``timeline``  state segments per account, event markers, deploy lines, the Gantt chart
``trading``   the Trading page: each account's stream, open orders, rate counters, orders
``nonce``     per-key nonce figures, refresh and rejection history, skew, diagnoses
``gateway``   the Gateway page: calls per account and client, outcomes, queue waits
``guard``     the Gateway page's trading guard: halts, the halt form, dead man's switches, counters
``markdown``  our text shown as written; tables whose cells wrap
============  =====================================================================
"""
