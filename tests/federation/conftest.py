import pytest

from federation.signatures import generate_rsa_keypair


@pytest.fixture(scope="session")
def keypair() -> tuple[str, str]:
    return generate_rsa_keypair()


@pytest.fixture(scope="session")
def other_keypair() -> tuple[str, str]:
    return generate_rsa_keypair()
