"""Who may call Tollgate. This issue's scope: the master key; virtual keys, teams and users follow."""

from django.db import models


class MasterKey(models.Model):
    """The proxy's root credential, as the config file or environment gave it.

    Only its SHA-256 digest is stored. When the config names it by reference
    (`os.environ/LITELLM_MASTER_KEY`) the reference is kept too, to show where it comes from.
    """

    digest = models.CharField(max_length=64)
    hint = models.CharField(max_length=16)  # "sk-...abcd": safe to show and log
    reference = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="The config file it came from.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.hint
