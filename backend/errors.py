"""The one base exception of the package.

Every error the backend raises on purpose (bad settings, a label config without Choices, unusable
training data, a file that cannot be read, Label Studio refusing a call) derives from
:class:`BackendError` and carries a message meant for the person who has to act on it. The HTTP
layer turns each into its 4xx answer (`http_status`, in one handler: server/app.py), the command
line into a message and a non-zero exit status; anything else is a bug and is reported as one.
"""


class BackendError(Exception):
    """A problem the user can act on; the message says what and where."""

    http_status = 400  # the answer on an HTTP path; a subclass that means more names its own 4xx
