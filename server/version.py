"""One place for the version we report."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("crosstalk")
except PackageNotFoundError:  # running from a checkout without installation
    VERSION = "0.1.0"

MASTODON_COMPAT = "4.3.0"
API_VERSION = f"{MASTODON_COMPAT} (compatible; Crosstalk {VERSION})"
SOURCE_URL = "https://github.com/crosstalk-social/crosstalk"
