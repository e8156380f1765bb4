"""One exception type for problems a user can fix; the CLI prints it as one line."""


class UserError(Exception):
    """Bad input or a refused action. The message names the file and the problem."""
