"""Stubs of the native module (src/python.rs). `python -m mypy.stubtest skedge._skedge` checks them
against the built module (tests/python/test_package.py)."""

import os
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, NoReturn, Union, final

from typing_extensions import TypeAlias

from ._types import BatchPrediction, Explanation, Info, Prediction

__all__ = ["SkedgeError", "Model", "Experiment", "MAX_TEXT_BYTES", "__version__"]

__version__: Final[str]
#: Largest text accepted, in UTF-8 bytes.
MAX_TEXT_BYTES: Final[int]

# Names for the stubs only (no runtime object): private, so stubtest does not look for them.
#: A key: its key file text (a ``str`` is always key text), its 32 raw bytes, or the path of its
#: key file (``pathlib.Path``, any ``os.PathLike``).
_Key: TypeAlias = Union[str, bytes, bytearray, os.PathLike[str]]

#: A text, or for a model fitted on a DataFrame column (``info()["input_column"]``) the record
#: ``{column: text}`` holding that one key.
_TextInput: TypeAlias = Union[str, dict[str, str]]

class SkedgeError(Exception):
    """An error of skedge, with the CLI's and the npm package's stable ``code``."""

    #: ``ARTIFACT_CORRUPT``, ``ARTIFACT_VERSION_UNSUPPORTED``, ``SIGNATURE_INVALID``,
    #: ``INPUT_TOO_LARGE``, ``INVALID_INPUT``, ``IO``, ... (README, "Error codes").
    code: str
    #: The failing text's position in ``predict_batch``, else None.
    index: int | None

@final
class Model:
    """A loaded skedge model (labels and decisions bit-identical to scikit-learn). It has no
    constructor (``Model()`` raises ``TypeError``): ``Model.load`` or ``Model.from_bytes``. It pickles (``copy``, joblib, multiprocessing) as its
    artifact's bytes and pinned public keys, verified again when unpickled; an encrypted model
    raises ``SkedgeError`` ``NOT_PICKLABLE`` (its pickle would hold the decryption key)."""

    @staticmethod
    def load(
        path: str | os.PathLike[str],
        *,
        public_key: _Key | Sequence[_Key] | None = None,
        decryption_key: _Key | None = None,
    ) -> Model:
        """Reads and loads an artifact file, verifying and decrypting as the keys say."""

    @staticmethod
    def from_bytes(
        data: bytes | bytearray | memoryview,
        *,
        public_key: _Key | Sequence[_Key] | None = None,
        decryption_key: _Key | None = None,
    ) -> Model:
        """Loads an artifact from its bytes, with the checks and keys of ``load``."""

    def predict(self, text: _TextInput) -> Prediction:
        """``predict``, ``decision_function`` and ``predict_proba`` of one text (or record)."""

    def predict_batch(self, texts: Iterable[_TextInput]) -> BatchPrediction:
        """``predict`` of every text (or record), the GIL released; numpy arrays stacked by row,
        new for each call and writable (shared with nothing). A ``dict``, a ``set`` or a pandas
        ``DataFrame`` is refused (``INVALID_INPUT``): their iteration is not the rows meant."""

    def explain(self, text: _TextInput, k: int = 10) -> Explanation:
        """The prediction and the ``k`` features that moved its decision most. ``k`` is an int from
        1 to 2**32 - 1 (as in the npm package), else ``SkedgeError`` ``INVALID_INPUT``."""

    def info(self) -> Info:
        """The artifact's metadata."""

    def __reduce__(self) -> tuple[Any, tuple[bytes, list[bytes]]]: ...
    @staticmethod
    def _unpickle(data: bytes | bytearray | memoryview, public_keys: Sequence[bytes]) -> Model: ...

@final
class Experiment:
    """Champion and challenger on the same production text (FORMAT.md §4): shadow or canary,
    ground-truth feedback, snapshots. The canary assignment is the npm package's, key for key.
    Any keyword argument may be None, for its default. Not pickled (``NOT_PICKLABLE``): its state
    belongs to one process."""

    def __new__(
        cls,
        champion: Model,
        challenger: Model,
        *,
        mode: Literal["shadow", "canary"] | None = "shadow",
        sample_rate: float | None = None,
        share: float | None = None,
        salt: str | None = "",
        window_seconds: float | None = None,
        seed: int | None = None,
        feedback_capacity: int | None = 10000,
    ) -> Experiment: ...
    def predict(self, text: _TextInput, *, key: str | None = None) -> dict[str, Any]:
        """The served prediction with ``arm``, ``id`` and ``shadow``. A record ``{column: text}``
        when both arms were fitted on that DataFrame column."""

    def feedback(self, id: str, label: int | str) -> Literal["counted", "expired", "unknown", "duplicate"]:
        """The true label of prediction ``id``: "expired" when it is older than the feedback ring
        or was made by an artifact the arms no longer run, "unknown" for an id this instance did
        not give (ids cannot be guessed from one another)."""

    def snapshot(self) -> dict[str, Any]:
        """Closes the open window and returns it (not queued: ``take_pending`` never gives it)."""

    def take_pending(self) -> list[dict[str, Any]]:
        """The windows ``window_seconds`` closed since the last call, oldest first."""

    def __reduce__(self) -> NoReturn: ...
