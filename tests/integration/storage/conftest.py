"""Real servers for the storage tests (fixtures live in tests/integration/servers/)."""

from tests.integration.servers.s3 import fault_proxy, moto_server, s3_env  # noqa: F401
from tests.integration.servers.sshd import ssh_client_key, sshd  # noqa: F401
