#!/bin/sh
# A CI/CD step to run right after the bot's deploy: mark the deploy on krakenwatch, then wait for
# krakenwatch's verdict on it. The step's exit status is the verdict:
#   0  verified: every required check of the deploy's accounts passed after the marker
#   1  failed or timed out (the failing checks are printed, each with its remedy)
#   2  a usage, connection or authentication error (nothing was judged)
#
# Environment:
#   VERSION                    the version just deployed (a git tag, an image tag); required
#   KRAKENWATCH_URL            the running `krakenwatch up` (default http://127.0.0.1:8501)
#   KRAKENWATCH_ADMIN_TOKEN    read by krakenwatch itself: the token that may mark deploys
#   KRAKENWATCH_PASSWORD       ... or the dashboard password, when one is set (keep both in the
#                              CI's secret store, never in this file)
#   KRAKENWATCH_WAIT_TIMEOUT   seconds to wait for the verdict (default 660: krakenwatch's
#                              KRAKENWATCH_DEPLOY_TIMEOUT, 600 s, plus a minute)
#   DEPLOY_NOTE                a note stored with the marker (default: "ci")
set -eu

: "${VERSION:?set VERSION to the version just deployed}"
KRAKENWATCH_URL="${KRAKENWATCH_URL:-http://127.0.0.1:8501}"

# set -e: a marker that cannot be recorded ends the step with krakenwatch's exit status (2)
marked=$(krakenwatch deploy mark --url "$KRAKENWATCH_URL" --version "$VERSION" --note "${DEPLOY_NOTE:-ci}")
echo "$marked"
# wait for this deploy by its number ("marked deploy #3 ..."): another pipeline marking meanwhile
# does not change what this one waits for (this one is then reported superseded)
id=${marked#marked deploy \#}
id=${id%% *}
exec krakenwatch deploy wait --url "$KRAKENWATCH_URL" --id "$id" --timeout "${KRAKENWATCH_WAIT_TIMEOUT:-660}"
