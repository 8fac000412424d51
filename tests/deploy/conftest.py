"""The emulated AWS account and docker stub of the deploy/launches.sh tests."""

from tests.support.deploy import account, docker, emulator, spacex_api  # noqa: F401
