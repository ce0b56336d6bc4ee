"""Servers for the cloud snapshot tests: moto (EC2) from tests/integration/servers/, fake APIs from fakes.py."""

from tests.integration.servers.s3 import moto_server, s3_env  # noqa: F401
