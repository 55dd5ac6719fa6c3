"""What the dashboard remembers: the event history in SQLite and the bot's log lines.

============  ===============================================================================
module        concern
============  ===============================================================================
``store``     :class:`EventStore`: the timeline in SQLite (WAL, migrations, retention)
``deploy_book``  the deploys as marked and judged (a table beside the events)
``logwatch``  the bot-log watcher: follows a log file like ``tail -F``, matches become events
``redact``    known secrets removed from text and data before anything is written
============  ===============================================================================
"""
