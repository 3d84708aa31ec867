"""The test suite's settings: the development mode of `make run` (DEBUG=1), then the base
settings unchanged. Set in the environment, so that the workers and servers the tests start
inherit it; a test of production behaviour starts its processes with DEBUG=0 itself."""

import os

os.environ["DEBUG"] = "1"

from config.settings import *  # noqa: E402, F403
