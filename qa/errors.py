"""The few exception types the library raises on purpose; each message tells the user what to do.

The CLI and the app catch `QAError` and print its message: never a traceback.
"""


class QAError(Exception):
    """Base class: a problem the user can fix; str(error) says how."""


class EmptyCorpusError(QAError):
    pass


class MissingIndexError(QAError):
    pass


class StaleIndexError(QAError):
    pass


class CorruptIndexError(QAError):
    pass


class IndexBusyError(QAError):
    pass


class IndexWriteError(QAError):
    pass


class ModelLoadError(QAError):
    pass


class StoreUnavailableError(QAError):
    """The index's store (a Milvus server, a local Milvus another process holds) cannot be used now."""


class BadQuestionError(QAError):
    pass


class SettingsError(QAError):
    pass
