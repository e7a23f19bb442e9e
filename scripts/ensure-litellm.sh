#!/usr/bin/env bash
# Installs LiteLLM and the Kafka client the LiteLLM integration (integrations/litellm) is tested
# with into a cached virtualenv, pinned by integrations/litellm/requirements.txt
# (scripts/ensure-venv.sh). Idempotent. The first install fetches ~60 wheels from PyPI: about
# 1-2 minutes.
#   bash scripts/ensure-litellm.sh   -> prints the path of the venv's `python`
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv.sh" litellm integrations/litellm/requirements.txt python
