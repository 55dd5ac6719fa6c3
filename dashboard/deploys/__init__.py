"""Deploys: a marker says when the bot's new version started, and the live checklist judges it.

Every "since" of the checklist counts from the latest marker (invalid nonces, the first success,
the bot-log lines, the gateway's answers); the deploy is verified the first time every required
check of its accounts passes with data from after the marker, and failed when one still fails after
the grace period or nothing is verified within the timeout.

==============  ===========================================================================
module          concern
==============  ===========================================================================
``judge``       :class:`DeployJudge`: marks, judges (a thread and on request), restores
``document``    the deploy document and the verify document judged for a deploy
``verdict``     the rule: pending, verified or failed, from the checks and the time
``window``      the counts since the marker, and the snapshot re-based on them
``request``     what ``POST /api/deploys`` may say, checked field by field
``client``      ``krakenwatch deploy mark`` / ``deploy wait``: the routes, from a pipeline
==============  ===========================================================================

The deploys themselves are kept by :mod:`dashboard.history.deploy_book`.
"""
