"""Administration: one service for the chat's ``/admin``, the ``confidant
admin`` CLI and the web admin console (`service` describes its API)."""
