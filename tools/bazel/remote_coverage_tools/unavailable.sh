#!/bin/sh
echo "remote_coverage_tools: not available offline (rlcv_tf ships a stand-in); bazel coverage is unsupported." >&2
exit 1
