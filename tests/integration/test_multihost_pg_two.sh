#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_multihost_pg.sh with two amtprovd instead of three: one is SIGKILLed mid-run and the
# other finishes every device (issue 16, R-PROV-13).
MULTIHOST_HOSTS=2 exec bash "$(dirname "$0")/test_multihost_pg.sh"
