"""Errors a user can cause: the CLI prints their message alone and exits with code 2."""


class UserError(Exception):
    """A bad config, a missing or corrupt data set, an impossible budget: the user's to fix."""


class ConfigError(UserError, ValueError):
    """The experiment config is invalid; the message names the field."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the run stops, FAILED (often a too-large learning rate)."""
