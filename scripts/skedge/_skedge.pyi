"""Stubs of the native module (src/python.rs)."""

import os
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, Union

from ._types import BatchPrediction, Explanation, Info, Prediction

__version__: Final[str]
#: Largest text accepted, in UTF-8 bytes.
MAX_TEXT_BYTES: Final[int]

#: A key: its key file text (a ``str`` is always key text), its 32 raw bytes, or the path of its
#: key file (``pathlib.Path``, any ``os.PathLike``).
Key = Union[str, bytes, bytearray, os.PathLike[str]]

#: A text, or for a model fitted on a DataFrame column (``info()["input_column"]``) the record
#: ``{column: text}`` holding that one key.
TextInput = Union[str, dict[str, str]]

class SkedgeError(Exception):
    """An error of skedge, with the CLI's and the npm package's stable ``code``."""

    #: ``ARTIFACT_CORRUPT``, ``ARTIFACT_VERSION_UNSUPPORTED``, ``SIGNATURE_INVALID``,
    #: ``INPUT_TOO_LARGE``, ``INVALID_INPUT``, ``IO``, ... (README, "Error codes").
    code: str
    #: The failing text's position in ``predict_batch``, else None.
    index: int | None

class Model:
    """A loaded skedge model (labels and decisions bit-identical to scikit-learn)."""

    @staticmethod
    def load(
        path: str | os.PathLike[str],
        *,
        public_key: Key | Sequence[Key] | None = None,
        decryption_key: Key | None = None,
    ) -> Model:
        """Reads and loads an artifact file, verifying and decrypting as the keys say."""

    @staticmethod
    def from_bytes(
        data: bytes | bytearray | memoryview,
        *,
        public_key: Key | Sequence[Key] | None = None,
        decryption_key: Key | None = None,
    ) -> Model:
        """Loads an artifact from its bytes, with the checks and keys of ``load``."""

    def predict(self, text: TextInput) -> Prediction:
        """``predict``, ``decision_function`` and ``predict_proba`` of one text (or record)."""

    def predict_batch(self, texts: Iterable[TextInput]) -> BatchPrediction:
        """``predict`` of every text (or record), the GIL released; numpy arrays stacked by row."""

    def explain(self, text: TextInput, k: int = 10) -> Explanation:
        """The prediction and the ``k`` features that moved its decision most. ``k`` is an int from
        1 to 2**32 - 1 (as in the npm package), else ``SkedgeError`` ``INVALID_INPUT``."""

    def info(self) -> Info:
        """The artifact's metadata."""

class Experiment:
    """Champion and challenger on the same production text (FORMAT.md §4): shadow or canary,
    ground-truth feedback, snapshots. The canary assignment is the npm package's, key for key.
    Any keyword argument may be None, for its default."""

    def __init__(
        self,
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
    ) -> None: ...
    def predict(self, text: TextInput, *, key: str | None = None) -> dict[str, Any]:
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
