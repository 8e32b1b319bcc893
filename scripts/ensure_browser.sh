#!/bin/sh
# The headless Chromium the browser tests drive (web console, HIL report); see ensure_tool.sh.
exec sh "$(dirname "$0")/ensure_tool.sh" chromium chromium \
    "a Chromium browser (the web console and HIL report tests run it headless)" "the browser tests" \
    "--cask chromium" chromium
