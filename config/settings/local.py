"""Local development: the embedded default that `make run` uses."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
WHITENOISE_AUTOREFRESH = DEBUG  # serve from the apps directly, no collectstatic needed
