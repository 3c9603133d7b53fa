"""Errors airlock reports to a user: each says what is wrong and what to do about it."""


class AirlockError(Exception):
    """A problem the user can act on; the CLI prints the message, never a traceback."""


class CommandError(AirlockError):
    """An external command failed."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str, hint: str = "") -> None:
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = self.stderr.splitlines()[-1] if self.stderr else f"exit code {returncode}"
        message = f"`{' '.join(cmd[:3])} ...` failed: {detail}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
