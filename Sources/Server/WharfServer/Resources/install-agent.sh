#!/bin/sh
# Placeholder; the deploy work replaces it. Served at /install-agent.sh with @WHARF_SERVER@ filled in.
echo "wharf: the agent install script is not written yet (server: @WHARF_SERVER@)" >&2
exit 1
