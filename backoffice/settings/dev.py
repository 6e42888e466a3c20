"""Local development and the demo: debug on, second factor optional."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
OTP_REQUIRED = env.bool("OTP_REQUIRED", default=False)
ENVIRONMENT_NAME = env("ENVIRONMENT_NAME", default="demo")
