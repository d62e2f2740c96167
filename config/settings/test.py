"""Test settings: the production ones, made quick to hash and free of caches that hide changes."""

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TOLLGATE_DEPLOYMENT_CACHE_SECONDS = 0.0
TOLLGATE_MASTER_KEY = "sk-test-master-key-0123456789abcdef"
TESTING = True
# A failed upstream call fails at once; tests of retries set num_retries in their config.
TOLLGATE_NUM_RETRIES = 0
