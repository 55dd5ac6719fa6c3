"""The multi-host fault suite: gateways, Redis, Sentinels and the simulator on hosts of their own
(Linux network namespaces), under faults (testkit/netns.py, testkit/hostcluster.py,
testkit/hostfaults.py, testkit/hostcheck.py)."""
