#!/bin/sh
# The Mosquitto broker the uplink tests run (see ensure_tool.sh for what happens when it is missing).
exec sh "$(dirname "$0")/ensure_tool.sh" mosquitto mosquitto \
    "the Mosquitto MQTT broker (its uplink tests run a real one)" "the uplink tests"
