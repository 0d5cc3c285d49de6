"""The MLflow side of skedge's exporter: resolve, load, provenance, write back, restore.

`scripts/export.py --model-uri URI` calls three functions of this module:

- `load_from_registry(uri, tracking_uri)` resolves any model URI MLflow 3 resolves
  (`models:/NAME@ALIAS`, `models:/NAME/STAGE`, `models:/NAME/VERSION`, `models:/NAME/latest`,
  `models:/m-<id>`, `runs:/RUN_ID/PATH`), downloads the model, refuses what skedge cannot export
  (no sklearn flavour, another scikit-learn version, custom code or types) and returns a
  `LoadedModel`: the fitted estimator, the interchange `metadata` (provenance, metrics, sha256 of
  the model file) and the texts of the logged input example.
- `write_back(loaded, artifact, manifest, report, ...)` logs the three files to the model's source
  run under `skedge/<name>/<version>/` (not registered: `skedge/<model id>/`) and sets the
  `skedge.*` tags on the model version (and logged model); the same bytes already published (and
  still in the run) write nothing, the same body under another seal (a signature added or
  replaced, `seal_change`) is re-sealed, other bytes need `force`, a failed upload or tagging
  undoes both.
- `restore(uri, out, tracking_uri)` brings a published artifact back, byte for byte, checked
  against the `skedge.sha256` tag.

`export_model_uri` runs the command (with `download_vectorizer_artifact` for a vectorizer saved apart);
export.py's `gate_and_write` stages the local files (`manifest.staged_outputs`), so a failure leaves
no partial output.

Every failure the user can fix raises `RegistryError` with a message that says what to do.
mlflow is imported lazily: `export.py --joblib` does not pay for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import math
import os
import platform
import re
import shutil
import struct
import sys
import tempfile
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Iterator

# Fail fast when the tracking server is down instead of MLflow's default 7 retries with backoff
# (minutes). Set before mlflow is imported; a user's explicit values win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]

from . import safe_load  # noqa: E402
from . import manifest as _manifest  # noqa: E402
from .manifest import manifest_path_for, report_path_for  # noqa: E402, F401 (re-exported)
#: The embedded MLflow of the project's working folder (`.work/` is gitignored).
DEFAULT_MLFLOW_DIR = REPO_ROOT / ".work" / "mlflow"
DEFAULT_DB = DEFAULT_MLFLOW_DIR / "mlflow.db"
DEFAULT_ARTIFACTS = DEFAULT_MLFLOW_DIR / "artifacts"
DEFAULT_TRACKING_URI = f"sqlite:///{DEFAULT_DB}"

#: Where the exporter's files go in the model's source run: each registered version (or, not
#: registered, each logged model) in its own folder below it, `artifact_dir`.
ARTIFACT_DIR = "skedge"
#: Model-version tags written back (FORMAT.md's format version, parity verdict, ...).
TAG_PREFIX = "skedge."

class RegistryError(Exception):
    """A problem with the registry or the model that the user can fix; the message says how.
    `code`, when set, is one of README's error codes (printed as `error[CODE]`)."""

    code: str | None = None


class SklearnVersionMismatch(RegistryError):
    """The model was saved by another scikit-learn than the installed one."""

    code = "SKLEARN_VERSION_MISMATCH"


# ---------------------------------------------------------------------------------------------
# Tracking URI and reachability
# ---------------------------------------------------------------------------------------------


def resolve_tracking_uri(flag: str | None = None) -> str:
    """`--tracking-uri`, else `MLFLOW_TRACKING_URI`, else the embedded sqlite store in `.work/`."""
    if flag:
        return flag
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return DEFAULT_TRACKING_URI


def redact_uri(uri: str) -> str:
    """The URI without user, password or query (tokens), fit for provenance and messages."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme in ("http", "https") and (parsed.username or parsed.password or parsed.query):
        host = parsed.hostname or ""
        if parsed.port:
            host = f"{host}:{parsed.port}"
        return urllib.parse.urlunsplit((parsed.scheme, host, parsed.path, "", ""))
    return uri


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///") :])


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise `RegistryError` quickly when the tracking store cannot be reached.

    http(s): one `GET /health` with a short timeout (any HTTP answer counts as reachable).
    sqlite: the database file must exist (MLflow would silently create an empty one).
    """
    parsed = urllib.parse.urlsplit(tracking_uri)
    shown = redact_uri(tracking_uri)
    if parsed.scheme in ("http", "https"):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http/s)
                resp.read(64)
        except urllib.error.HTTPError:
            return  # it answered: reachable (a proxy may not serve /health)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryError(
                f"MLflow tracking server {shown} is unreachable ({reason}). Start it "
                f"(`mlflow server --host 127.0.0.1 ...`), or point --tracking-uri / "
                f"MLFLOW_TRACKING_URI at a running one."
            ) from None
    elif parsed.scheme == "sqlite":
        path = _sqlite_path(tracking_uri)
        if path is not None and str(path) not in ("", ":memory:") and not path.exists():
            hint = (
                " Run `scripts/train_demo.py` to create the demo registry,"
                if tracking_uri == DEFAULT_TRACKING_URI
                else ""
            )
            raise RegistryError(
                f"no MLflow database at {path} (tracking URI {shown}).{hint} or pass "
                f"--tracking-uri / set MLFLOW_TRACKING_URI."
            )


def _mlflow():
    try:
        import mlflow  # noqa: PLC0415 (lazy: mlflow takes seconds to import)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RegistryError(
            f'mlflow is not installed in this Python ({sys.executable}): install "skedge[mlflow]" '
            "(in a checkout: scripts/setup.sh)"
        ) from err
    return mlflow


@contextlib.contextmanager
def using(tracking_uri: str) -> Iterator[None]:
    """Point mlflow's global tracking *and* registry URIs at `tracking_uri` for a block.

    `mlflow.artifacts.download_artifacts(tracking_uri=...)` resolves `models:/` URIs through the
    global registry URI, which would otherwise default to a `mlflow.db` in the current folder.
    """
    mlflow = _mlflow()
    from mlflow.tracking._model_registry import utils as registry_utils  # noqa: PLC0415
    from mlflow.tracking._tracking_service import utils as tracking_utils  # noqa: PLC0415

    saved = (
        getattr(tracking_utils, "_tracking_uri", None),
        getattr(registry_utils, "_registry_uri", None),
        {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")},
    )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri, env = saved
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client(tracking_uri: str):
    """An `MlflowClient` for `tracking_uri` (registry at the same URI)."""
    mlflow = _mlflow()
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


_CONNECTION_HINTS = (
    "Max retries exceeded",
    "Connection refused",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Failed to establish",
    "Name or service not known",
    "timed out",
)


#: A connection the server closed under a request: an idle keep-alive connection closed just as it
#: was reused (uvicorn closes them after 5 s idle), a transfer cut short. Unlike a refused connection
#: or a timeout, trying again is the cure.
_DROPPED_HINTS = ("Connection aborted", "RemoteDisconnected", "Connection reset by peer", "Connection broken")
#: Downloads tried at most this many times in all when the connection is dropped under them.
DOWNLOAD_ATTEMPTS = 3


def download(**kwargs: Any) -> str:
    """`mlflow.artifacts.download_artifacts(**kwargs)`, tried again when the connection is dropped.

    MLflow's own retries are off here (see the top of this module), and they were what absorbed a
    server closing an idle keep-alive connection as the client reuses it. Both times CI met that,
    it was a download (which fetches files in parallel threads, so it also reuses the pool's
    longest-idle connections). A download only reads, so trying it again is safe."""
    mlflow = _mlflow()
    for _ in range(DOWNLOAD_ATTEMPTS - 1):
        try:
            return mlflow.artifacts.download_artifacts(**kwargs)
        except Exception as err:
            if not any(h in str(err) for h in _DROPPED_HINTS):
                raise
    return mlflow.artifacts.download_artifacts(**kwargs)


def _first_lines(text: str, limit: int = 600) -> str:
    """An error's first line, and when it ends with a colon the first of what it introduces: MLflow's
    failed artifact downloads say "The following failures occurred …:" and list each file below
    (`##### File PATH #####`, then its error), which is the part that says what went wrong."""
    lines = [line.strip(" #") for line in text.strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    shown = lines[0]
    if shown.endswith(":") and len(lines) > 1:
        shown = f"{shown} {': '.join(lines[1:3])}"
    # A failed request's URL can carry a token in its query (pre-signed and SAS URLs).
    return re.sub(r"\?[^\s'\"),]+", "?...", shown)[:limit]


@contextlib.contextmanager
def _mlflow_errors(tracking_uri: str, doing: str) -> Iterator[None]:
    """Turn MLflow's exceptions into `RegistryError`s that say what was being done."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as err:  # MlflowException, requests errors, sqlalchemy errors
        text = str(err)
        shown = redact_uri(tracking_uri)
        if any(h in text for h in _CONNECTION_HINTS):
            raise RegistryError(
                f"MLflow at {shown} became unreachable while {doing}: {_first_lines(text)}"
            ) from None
        code = getattr(err, "error_code", "")
        first = _first_lines(text) or type(err).__name__
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"{doing}: not found in MLflow at {shown}: {first}") from None
        raise RegistryError(f"{doing} (MLflow at {shown}): {type(err).__name__}: {first}") from err


# ---------------------------------------------------------------------------------------------
# URI forms
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Resolved:
    """What a model URI points at. Fields the URI form cannot know are None."""

    uri: str  #: as given
    tracking_uri: str
    name: str | None  #: registered model name
    version: str | None  #: registered model version
    alias: str | None  #: alias used (`models:/NAME@ALIAS`)
    stage: str | None  #: stage used (`models:/NAME/STAGE`), as the registry spells it
    run_id: str | None  #: the source run
    model_id: str | None  #: MLflow 3 LoggedModel id, `m-...`
    source: str  #: the model version's source (`models:/m-...` or `runs:/...`), else the URI
    download_uri: str  #: pinned URI to download (`models:/NAME/VERSION` when registered)
    logged_name: str | None = None  #: the LoggedModel's name (the `name=` of log_model)


_STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}


@dataclasses.dataclass
class ParsedUri:
    """A model URI split into its parts (at most one of version, stage, alias, latest)."""

    kind: str  #: "alias" | "stage" | "version" | "latest" | "model_id" | "run"
    name: str | None = None
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    path: str | None = None


def parse_model_uri(uri: str) -> ParsedUri:
    """Split `uri` as MLflow 3 does; raise `RegistryError` naming the accepted forms otherwise."""
    forms = (
        "models:/NAME@ALIAS, models:/NAME/STAGE, models:/NAME/VERSION, models:/NAME/latest, "
        "models:/m-<id> or runs:/RUN_ID/PATH"
    )
    parsed = urllib.parse.urlparse(uri, allow_fragments=False)
    path = parsed.path
    if parsed.scheme == "runs":
        parts = path.lstrip("/").split("/", 1)
        if parsed.netloc or len(parts) != 2 or not parts[0] or not parts[1].strip("/"):
            raise RegistryError(f"not a proper runs:/ URI: {uri!r} (expected runs:/RUN_ID/PATH)")
        return ParsedUri("run", run_id=parts[0], path=parts[1].strip("/"))
    if parsed.scheme != "models" or parsed.netloc or not path.startswith("/") or len(path) <= 1:
        raise RegistryError(f"not a model URI: {uri!r}; accepted forms: {forms}")
    parts = path.lstrip("/").split("/")
    if len(parts) > 2 or not parts[0].strip():
        raise RegistryError(f"not a proper models:/ URI: {uri!r}; accepted forms: {forms}")
    if len(parts) == 2:
        name, suffix = parts
        if not suffix.strip():
            raise RegistryError(f"not a proper models:/ URI: {uri!r}; accepted forms: {forms}")
        if suffix.isdigit():
            return ParsedUri("version", name=name, version=suffix)
        if suffix.lower() == "latest":
            return ParsedUri("latest", name=name)
        return ParsedUri("stage", name=name, stage=suffix)
    if "@" in parts[0]:
        name, alias = parts[0].rsplit("@", 1)
        if not name or not alias.strip():
            raise RegistryError(f"not a proper models:/ URI: {uri!r}; accepted forms: {forms}")
        return ParsedUri("alias", name=name, alias=alias)
    return ParsedUri("model_id", model_id=parts[0])


def _model_id_of_source(source: str | None) -> str | None:
    if source and source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
        return source[len("models:/") :]
    return None


def _registered_name_list(c) -> str:
    try:
        names = sorted(m.name for m in c.search_registered_models(max_results=20))
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    return f" (registered models: {', '.join(names) or 'none'})"


def _find_versions(c, run_id: str | None, sources: set[str]) -> list:
    """Registered versions whose source is one of `sources` (searched by run id)."""
    if not run_id:
        return []
    found = c.search_model_versions(f"run_id = '{run_id}'")
    return sorted(
        (mv for mv in found if mv.source in sources),
        key=lambda mv: (mv.name, int(mv.version)),
    )


def resolve(uri: str, tracking_uri: str) -> Resolved:
    """Resolve any accepted model URI against the registry at `tracking_uri`."""
    p = parse_model_uri(uri)
    c = client(tracking_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still supported
        with _mlflow_errors(tracking_uri, f"resolving {uri}"):
            if p.kind in ("alias", "stage", "version", "latest"):
                return _resolve_registered(c, p, uri, tracking_uri)
            if p.kind == "model_id":
                return _resolve_model_id(c, p, uri, tracking_uri)
            return _resolve_run(c, p, uri, tracking_uri)


def _resolve_registered(c, p: ParsedUri, uri: str, tracking_uri: str) -> Resolved:
    mlflow = _mlflow()
    try:
        rm = c.get_registered_model(p.name)
    except mlflow.exceptions.MlflowException as err:
        if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"no registered model {p.name!r} in MLflow at {redact_uri(tracking_uri)}"
                f"{_registered_name_list(c)}"
            ) from None
        raise
    stage = None
    if p.kind == "alias":
        if p.alias not in (rm.aliases or {}):
            known = ", ".join(sorted(rm.aliases or {})) or "none"
            raise RegistryError(
                f"registered model {p.name!r} has no alias {p.alias!r} (aliases: {known}); set it "
                f"with MlflowClient().set_registered_model_alias({p.name!r}, {p.alias!r}, VERSION)"
            )
        mv = c.get_model_version_by_alias(p.name, p.alias)
    elif p.kind == "version":
        try:
            mv = c.get_model_version(p.name, p.version)
        except mlflow.exceptions.MlflowException as err:
            if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(
                    f"registered model {p.name!r} has no version {p.version}"
                ) from None
            raise
    else:
        if p.kind == "stage":
            stage = _STAGES.get(p.stage.lower())
            if stage is None:
                raise RegistryError(
                    f"{uri!r}: {p.stage!r} is neither a version number, 'latest', nor a stage "
                    f"({', '.join(_STAGES.values())})"
                )
        latest = c.get_latest_versions(p.name, None if stage is None else [stage])
        if not latest:
            where = f" in stage {stage!r}" if stage else ""
            raise RegistryError(f"registered model {p.name!r} has no version{where}")
        mv = max(latest, key=lambda v: int(v.version))
    model_id = getattr(mv, "model_id", None) or _model_id_of_source(mv.source)
    logged_name = None
    if model_id:
        with contextlib.suppress(Exception):
            logged_name = c.get_logged_model(model_id).name
    return Resolved(
        uri=uri,
        tracking_uri=tracking_uri,
        name=mv.name,
        version=str(mv.version),
        alias=p.alias,
        stage=stage,
        run_id=mv.run_id or None,
        model_id=model_id,
        source=mv.source,
        download_uri=f"models:/{mv.name}/{mv.version}",
        logged_name=logged_name,
    )


def _model_id_hint(c, model_id: str) -> str:
    """Why `models:/NAME` found nothing: MLflow 3 reads a bare name as a LoggedModel id."""
    msg = (
        f"no logged model {model_id!r} in MLflow: models:/{model_id} without a suffix is read as a "
        f"LoggedModel id (models:/m-<id>). For a registered model give "
        f"models:/{model_id}@ALIAS or models:/{model_id}/latest"
    )
    try:
        rm = c.get_registered_model(model_id)
    except Exception:  # noqa: BLE001 - only a hint
        return msg + _registered_name_list(c)
    aliases = ", ".join(f"models:/{model_id}@{a}" for a in sorted(rm.aliases or {}))
    return msg + (f" (its aliases: {aliases})" if aliases else "")


def _resolve_model_id(c, p: ParsedUri, uri: str, tracking_uri: str) -> Resolved:
    mlflow = _mlflow()
    try:
        lm = c.get_logged_model(p.model_id)
    except mlflow.exceptions.MlflowException as err:
        missing = getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"
        if missing or not p.model_id.startswith("m-"):
            raise RegistryError(_model_id_hint(c, p.model_id)) from None
        raise
    versions = _find_versions(c, lm.source_run_id, {f"models:/{lm.model_id}"})
    mv = versions[-1] if versions else None
    return Resolved(
        uri=uri,
        tracking_uri=tracking_uri,
        name=mv.name if mv else None,
        version=str(mv.version) if mv else None,
        alias=None,
        stage=None,
        run_id=lm.source_run_id or None,
        model_id=lm.model_id,
        source=f"models:/{lm.model_id}",
        download_uri=f"models:/{lm.model_id}",
        logged_name=lm.name,
    )


def _resolve_run(c, p: ParsedUri, uri: str, tracking_uri: str) -> Resolved:
    mlflow = _mlflow()
    try:
        run = c.get_run(p.run_id)
    except mlflow.exceptions.MlflowException as err:
        if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"no run {p.run_id!r} in MLflow") from None
        raise
    # MLflow 3: `runs:/RUN/NAME` names a LoggedModel of the run (log_model(name=NAME)).
    model_id = None
    outputs = getattr(run, "outputs", None)
    for out in getattr(outputs, "model_outputs", None) or []:
        with contextlib.suppress(Exception):
            if c.get_logged_model(out.model_id).name == p.path:
                model_id = out.model_id
    sources = {uri, f"runs:/{p.run_id}/{p.path}"}
    if model_id:
        sources.add(f"models:/{model_id}")
    versions = _find_versions(c, p.run_id, sources)
    mv = versions[-1] if versions else None
    return Resolved(
        uri=uri,
        tracking_uri=tracking_uri,
        name=mv.name if mv else None,
        version=str(mv.version) if mv else None,
        alias=None,
        stage=None,
        run_id=p.run_id,
        model_id=model_id,
        source=mv.source if mv else uri,
        download_uri=uri,
        logged_name=p.path if model_id else None,
    )


# ---------------------------------------------------------------------------------------------
# Loading the sklearn flavour
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadedModel:
    """A model loaded from MLflow, with everything the exporter records about it."""

    estimator: Any  #: the fitted scikit-learn estimator (sklearn flavour); None when not loaded here
    metadata: dict  #: interchange metadata: name, version, created, sklearn_version, ...
    input_example_texts: list  #: texts of the logged input example ([] when none)
    resolved: Resolved
    model_file: str  #: file name inside the MLflow model (`model.skops`, `model.pkl`)
    serialization_format: str  #: skops | cloudpickle | pickle
    sha256: str  #: of the model file
    metrics: dict  #: the source run's metrics
    exported_at: str  #: RFC 3339 UTC, when this export ran (manifest, `skedge.exported_at` tag)
    #: how the model was asked for: model_uri, tracking_uri, alias, stage (the manifest's `export`)
    request: dict = dataclasses.field(default_factory=dict)

    @property
    def provenance(self) -> dict:
        return self.metadata["provenance"]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_skops(path: str | Path) -> Any:
    """A skops file, only if every type it names is on `safe_load.ALLOWED` (raises
    `safe_load.ModelRefused` / `safe_load.LoadError`)."""
    return safe_load.load_skops(path)


def load_pickle(path: str | Path) -> Any:
    """A pickle or cloudpickle file, only if every global it names is on `safe_load.ALLOWED`."""
    return safe_load.load_model_file(path)


def read_mlmodel(model_dir: str | Path) -> dict:
    """The MLmodel file of a downloaded model as a dict."""
    import yaml  # noqa: PLC0415 (a dependency of mlflow)

    path = Path(model_dir) / "MLmodel"
    if not path.is_file():
        found = sorted(os.listdir(model_dir))
        raise RegistryError(f"no MLmodel file in the downloaded model (found: {found})")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise RegistryError("the MLmodel file is not a mapping")
    return data


def check_flavor(mlmodel: dict, uri: str) -> dict:
    """The sklearn flavour's configuration; refuse pyfunc-only models and custom code."""
    flavors = mlmodel.get("flavors") or {}
    conf = flavors.get("sklearn")
    if conf is None:
        names = ", ".join(sorted(flavors)) or "none"
        loader = (flavors.get("python_function") or {}).get("loader_module") or ""
        what = (
            f"a custom pyfunc model ({loader})"
            if loader == "mlflow.pyfunc.model"
            else f"flavours: {names}"
        )
        raise RegistryError(
            f"{uri} has no 'sklearn' flavour ({what}): skedge exports fitted scikit-learn "
            "pipelines only; a pyfunc-only model is arbitrary Python code. Log the pipeline "
            "with mlflow.sklearn.log_model."
        )
    if conf.get("code"):
        raise RegistryError(
            f"{uri} ships custom code ({conf['code']!r}, logged with code_paths): skedge exports "
            "scikit-learn's own estimators only"
        )
    return conf


def check_sklearn_version(recorded: str | None, uri: str) -> None:
    """Exactness is defined against the scikit-learn that fitted the model: require the same."""
    import sklearn  # noqa: PLC0415

    installed = sklearn.__version__
    if not recorded:
        raise RegistryError(
            f"{uri}: the MLmodel file does not record the scikit-learn version; skedge needs it "
            f"to guarantee parity (installed: {installed})"
        )
    if str(recorded) != installed:
        raise SklearnVersionMismatch(
            f"{uri} was saved with scikit-learn {recorded}, but this environment has "
            f"scikit-learn {installed}. Parity is only defined against the same version: export "
            f"from an environment with scikit-learn=={recorded}, or re-train and log the model "
            f"with {installed}."
        )


def check_python_version(recorded: str | None, uri: str) -> None:
    """scikit-learn's analyzers follow the Unicode of the Python they run in (`\\w`, `str.lower()`,
    NFKD), and each CPython minor version has its own: the artifact is exact against the exporter's
    Python (it records that Python's Unicode), so the model's must be the same minor version. An
    MLmodel file without one (older MLflow) has nothing to compare."""
    if not recorded:
        return
    mine = platform.python_version()
    minor = ".".join(str(recorded).split(".")[:2])
    if minor != ".".join(mine.split(".")[:2]):
        raise RegistryError(
            f"{uri} was logged from Python {recorded}, but this exporter runs Python {mine} "
            f"(Unicode {unicodedata.unidata_version}). scikit-learn reads text with the Unicode of "
            f"the Python it runs in (\\w, str.lower(), NFKD), so an artifact made here would read "
            f"some texts otherwise than the model does in its own Python: export under Python "
            f"{minor} (README, \"Compatibility\")."
        )


def input_example_texts(model_dir: str | Path, mlmodel: dict) -> list:
    """The texts of the logged input example, [] when there is none or it is not text."""
    info = mlmodel.get("saved_input_example_info") or {}
    name = info.get("artifact_path")
    if not name:
        return []
    path = Path(model_dir) / name
    if not path.is_file():
        return []
    import json  # noqa: PLC0415

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    # ndarray/list: ["a", "b"] or [["a"], ["b"]]; DataFrame: {"columns": [...], "data": [[...]]}
    # or {"inputs": ...}; a dict of one column {"text": [...]}.
    if isinstance(data, dict):
        if "data" in data:
            data = data["data"]
        elif "inputs" in data:
            data = data["inputs"]
        elif len(data) == 1:
            data = next(iter(data.values()))
        else:
            return []
    texts: list = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return texts


def _now() -> str:
    return _manifest.now_rfc3339()


def _rfc3339_ms(ms: Any) -> str:
    return _dt.datetime.fromtimestamp(int(ms) / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_time(c, r: Resolved) -> str:
    """The artifact's `created`: when the registry version was created, else the LoggedModel,
    else the run started. A time MLflow fixed once, so re-exporting gives the same bytes."""
    stamps = []
    if r.name and r.version:
        stamps.append(lambda: c.get_model_version(r.name, r.version).creation_timestamp)
    if r.model_id:
        stamps.append(lambda: c.get_logged_model(r.model_id).creation_timestamp)
    if r.run_id:
        stamps.append(lambda: c.get_run(r.run_id).info.start_time)
    for stamp in stamps:
        with contextlib.suppress(Exception):
            ms = stamp()
            if ms:
                return _rfc3339_ms(ms)
    return ""


def load_from_registry(
    uri: str, tracking_uri: str | None = None, *, model_copy: str | Path | None = None
) -> LoadedModel:
    """Resolve, download and load the sklearn flavour of `uri`; collect provenance and metrics.

    Raises `RegistryError` (unreachable MLflow, unknown name/alias/stage/version, pyfunc-only
    model, other scikit-learn version) or `safe_load.LoadError` (untrusted types). Nothing is
    written anywhere but a temporary folder, removed before returning. With `model_copy` the
    model file is copied there instead of loaded (`estimator` is None): the exporter loads it in
    a process without keys (`isolated.run`).
    """
    tracking_uri = resolve_tracking_uri(tracking_uri)
    check_reachable(tracking_uri)
    resolved = resolve(uri, tracking_uri)
    c = client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="skedge-mlflow-") as tmp:
        with _mlflow_errors(tracking_uri, f"downloading {resolved.download_uri}"), using(
            tracking_uri
        ):
            local = download(artifact_uri=resolved.download_uri, dst_path=tmp, tracking_uri=tracking_uri)
        mlmodel = read_mlmodel(local)
        conf = check_flavor(mlmodel, uri)
        check_sklearn_version(conf.get("sklearn_version"), uri)
        pyfunc = (mlmodel.get("flavors") or {}).get("python_function") or {}
        check_python_version(pyfunc.get("python_version"), uri)
        fmt = conf.get("serialization_format") or "pickle"
        model_file = conf.get("pickled_model") or ""
        model_path = (Path(local) / model_file).resolve()
        if not model_path.is_relative_to(Path(local).resolve()):
            raise RegistryError(f"{uri}: the model file {model_file!r} lies outside the model")
        if not model_file or not model_path.is_file():
            raise RegistryError(
                f"{uri}: the sklearn flavour's model file {model_file!r} is missing"
            )
        if fmt not in ("skops", "pickle", "cloudpickle"):
            raise RegistryError(f"{uri}: unknown serialization format {fmt!r}")
        if model_copy is not None:
            estimator = None
            shutil.copyfile(model_path, model_copy)
        elif fmt == "skops":
            estimator = load_skops(model_path)
        else:
            estimator = load_pickle(model_path)
        digest = sha256_file(model_path)
        examples = input_example_texts(local, mlmodel)
        if not resolved.model_id and mlmodel.get("model_id"):
            resolved.model_id = str(mlmodel["model_id"])
        if not resolved.run_id and mlmodel.get("run_id"):
            resolved.run_id = str(mlmodel["run_id"])
    metrics: dict = {}
    if resolved.run_id:
        with _mlflow_errors(tracking_uri, f"reading the metrics of run {resolved.run_id}"):
            metrics = dict(c.get_run(resolved.run_id).data.metrics)
    exported_at = _now()
    created = created_time(c, resolved)
    # The artifact records which model this is; how it was asked for (the URI form, an alias that
    # moves, the server's address) goes to the manifest: any URI of one version gives one artifact.
    request = {
        "model_uri": uri,
        "tracking_uri": redact_uri(tracking_uri),
        "alias": resolved.alias,
        "stage": resolved.stage,
    }
    provenance = {
        "registered_model": resolved.name,
        "version": resolved.version,
        "run_id": resolved.run_id,
        "model_id": resolved.model_id,
        "source_uri": resolved.source,
        "model_file": model_file,
        "serialization_format": fmt,
    }
    provenance = {k: str(v) for k, v in provenance.items() if v not in (None, "")}
    request = {k: str(v) for k, v in request.items() if v not in (None, "")}
    metadata = {
        "name": resolved.name or resolved.logged_name or "",
        "version": resolved.version or "",
        "created": created,
        "sklearn_version": str(conf.get("sklearn_version")),
        "source_sha256": digest,
        "provenance": provenance,
        # The artifact stores finite floats only (FORMAT.md); a NaN metric is left out.
        "metrics": {k: float(v) for k, v in sorted(metrics.items()) if math.isfinite(float(v))},
    }
    return LoadedModel(
        estimator=estimator,
        metadata=metadata,
        input_example_texts=examples,
        resolved=resolved,
        model_file=model_file,
        serialization_format=fmt,
        sha256=digest,
        metrics=metadata["metrics"],
        exported_at=exported_at,
        request=request,
    )


# ---------------------------------------------------------------------------------------------
# Write back and restore
# ---------------------------------------------------------------------------------------------


def parity_tag(parity: dict | None) -> str:
    """`passed (131 texts, max |Δproba| 0)`-style summary of a parity summary dict."""
    if not parity:
        return "not run"
    verdict = "passed" if parity.get("passed") else "failed"
    bits = []
    if parity.get("texts") is not None:
        bits.append(f"{parity['texts']} texts")
    if parity.get("mismatches") is not None:
        bits.append(f"{parity['mismatches']} mismatches")
    if parity.get("precision"):
        bits.insert(0, f"precision {parity['precision']}")
    if parity.get("max_decision_diff") is not None:
        bits.append(f"max |ddecision| {parity['max_decision_diff']:.3g}")
    if parity.get("max_proba_diff") is not None:
        bits.append(f"max |dproba| {parity['max_proba_diff']:.3g}")
    if parity.get("runtime"):
        bits.append(str(parity["runtime"]))
    return f"{verdict} ({', '.join(bits)})" if bits else verdict


def _segment(value: str) -> str:
    """`value` as one path segment: a registered model's name may hold `/` or be `..`; quoted, two
    names never share a folder."""
    quoted = urllib.parse.quote(str(value), safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def artifact_dir(r: Resolved) -> str:
    """Where this export's files go in the source run: `skedge/<name>/<version>` for a registered
    version, `skedge/<model id>` for a logged model that is not registered. Two models logged in
    one run, a version copied to another registered model, a logged model registered twice: each
    version has its own folder, so exporting one never replaces another's files (exports made
    before this layout sit in `skedge/` itself, named by their `skedge.artifact_path` tag)."""
    if r.name and r.version:
        return f"{ARTIFACT_DIR}/{_segment(r.name)}/{_segment(r.version)}"
    if r.model_id:
        return f"{ARTIFACT_DIR}/{_segment(r.model_id)}"
    return ARTIFACT_DIR


def skedge_tags(loaded: LoadedModel, manifest: dict, artifact_name: str) -> dict:
    """The `skedge.*` tags for the model version (and logged model)."""
    return {
        "skedge.sha256": str(manifest["sha256"]),
        "skedge.format_version": str(manifest["format_version"]),
        "skedge.parity": parity_tag(manifest.get("parity")),
        "skedge.exported_at": str(manifest.get("exported_at") or loaded.exported_at),
        "skedge.artifact_path": f"{artifact_dir(loaded.resolved)}/{artifact_name}",
        "skedge.size": str(manifest["size"]),
    }


@dataclasses.dataclass
class Published:
    """What `write_back` did: `status` is "published", "re-sealed" (the published bytes held the
    same body under another seal: replaced, `resealed` says how), "unchanged" (the same bytes were
    already published: nothing written), or "dry run"; `tags` those set (or that would be;
    "unchanged": those the version has)."""

    tags: dict
    status: str
    resealed: str = ""


#: FORMAT.md §2-§3: the magic, and the header flags that seal an artifact without changing its body.
ARTIFACT_MAGIC = b"\x89SKEDGE\n"
FLAG_SIGNED_SHA512, FLAG_ENCRYPTED, FLAG_SIGNED_SHA256 = 0x1, 0x2, 0x8
#: What `seal_change` may answer that `write_back` re-seals without `force`.
RESEALS = ("signature added", "signature replaced", "checksum kind changed")


def _envelope(data: bytes) -> tuple | None:
    """(format version, flags, body) of an artifact's bytes (FORMAT.md §2-§3: a 24-byte header,
    magic, u16 version, u16 flags, u32 body length, u64 checksum; the body; a 64-byte signature
    iff a signing flag is set), or None when the bytes are not laid out so."""
    if len(data) < 24 or data[:8] != ARTIFACT_MAGIC:
        return None
    version, flags, length = struct.unpack_from("<HHI", data, 8)
    signature = 64 if flags & (FLAG_SIGNED_SHA512 | FLAG_SIGNED_SHA256) else 0
    if len(data) != 24 + length + signature:
        return None
    return version, flags, data[24 : 24 + length]


#: The version tag naming the model its published bytes hold, whatever their seal: the sha256 of the
#: artifact's body (FORMAT.md §2). Destinations that seal a version otherwise (one signs, one does
#: not, another key) hold other bytes of the same model; `sync.py` tells them apart from the
#: version exported again (`--force`) with this.
BODY_TAG = "skedge.body_sha256"


def body_sha256(data: bytes) -> str | None:
    """The sha256 of an artifact's body, the model whatever its seal, or None for bytes that are
    not an artifact or are encrypted (a fresh nonce each export: two ciphertexts never compare)."""
    found = _envelope(data)
    if found is None or found[1] & FLAG_ENCRYPTED:
        return None
    return hashlib.sha256(found[2]).hexdigest()


def seal_change(published: bytes, new: bytes) -> str | None:
    """How `new` differs from `published` when both hold the same body (the model: manifest and
    sections, FORMAT.md §2) and differ only in their seal, the header flags and the signature
    trailer (§3): "signature added", "signature replaced" (another key, or the SHA-512 prehash of
    an older signer), "signature removed", or "checksum kind changed" (xxHash64 to XXH3). None
    when the bodies or format versions differ, when either is encrypted (a fresh nonce each
    export: two ciphertexts never compare), or when either is not an artifact. The checksum
    (offset 16) is not compared: it covers the signature too."""
    a, b = _envelope(published), _envelope(new)
    if a is None or b is None or (a[2], a[0]) != (b[2], b[0]) or (a[1] | b[1]) & FLAG_ENCRYPTED:
        return None
    signing = FLAG_SIGNED_SHA512 | FLAG_SIGNED_SHA256
    was, now = bool(a[1] & signing), bool(b[1] & signing)
    if now and not was:
        return "signature added"
    if was and not now:
        return "signature removed"
    if (was and published[-64:] != new[-64:]) or (a[1] ^ b[1]) & signing:
        return "signature replaced"
    return "checksum kind changed" if a[1] != b[1] else None


def write_back(
    loaded: LoadedModel,
    artifact_path: str | Path,
    manifest_path: str | Path,
    report_path: str | Path | None,
    dry_run: bool = False,
    manifest: dict | None = None,
    *,
    force: bool = False,
    log: Any = None,
    force_advice: str = "pass --force",
) -> Published:
    """Log the files to the source run under `artifact_dir`, then tag the model version.

    The same bytes already published, and the run's file still holding them: nothing is written
    (idempotent); the file gone or changed: uploaded again. The same body under another seal (the
    run's file, checked against the tag, compared by `seal_change`: a signature added or
    replaced, or the checksum kind): re-sealed, replaced without `force`. Other bytes already
    published, or a signature removed: refused unless `force` (the message says how with
    `force_advice`: the caller's own way to force, "pass --force" for export.py), since it changes
    what `--restore` returns; `force` uploads and tags again in any case. Files first, tags last, the version's `skedge.sha256` last of all: a tag
    never points at an artifact that is not there; if uploading or tagging fails, both are undone
    (files removed or the ones they replaced put back, tags removed or their values put back)."""
    import json  # noqa: PLC0415

    log = log or (lambda s: print(s, file=sys.stderr))
    artifact_path = Path(artifact_path)
    if manifest is None:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    tags = skedge_tags(loaded, manifest, artifact_path.name)
    # Always set, "none" when the body cannot be compared (encrypted): a value left from an
    # earlier export would name another model.
    tags[BODY_TAG] = body_sha256(artifact_path.read_bytes()) or "none"
    r = loaded.resolved
    if not r.run_id:
        if dry_run:
            return Published(tags, "dry run")
        raise RegistryError(
            f"{r.uri} has no source run to log the artifact to (use --dry-run to export anyway)"
        )
    tracking_uri = r.tracking_uri
    check_reachable(tracking_uri)
    c = client(tracking_uri)
    with _mlflow_errors(tracking_uri, f"reading the skedge tags of {r.uri}"):
        before = _skedge_tags_of(c, r)
    previous, new = before.get("skedge.sha256"), tags["skedge.sha256"]
    who = f"{r.name} version {r.version}" if r.version else r.uri
    if previous == new and not force:
        with _mlflow_errors(tracking_uri, f"checking the artifact published for {who}"):
            problem = _published_file_problem(c, r, before)
        if problem is None:
            return Published(before, "unchanged")
        log(f"WARNING: {who} is tagged with these bytes, but {problem}: uploading them again")
    resealed = ""
    if previous and previous != new and not force:
        with _mlflow_errors(tracking_uri, f"reading the artifact published for {who}"):
            published = _published_bytes(c, r, before, artifact_path.stat().st_size)
        change = seal_change(published, artifact_path.read_bytes()) if published is not None else None
        if change in RESEALS:
            resealed = change
            log(f"{who} is published with sha256 {previous}, the same model with another seal "
                f"({change}): {'would be re-sealed' if dry_run else 're-sealed'}, sha256 {new}")
        elif change == "signature removed":
            msg = (
                f"{who} is already published signed (sha256 {previous}); this export holds the same "
                f"model unsigned ({new}). Replacing them changes what --restore returns and drops "
                f"the signature: pass --sign-key with a signing key to re-seal it, or {force_advice} "
                "to replace them with unsigned bytes"
            )
        else:
            unseen = "" if published is not None else " (its file in the run could not be compared)"
            msg = (
                f"{who} is already published with sha256 {previous}{unseen}; this export's bytes "
                f"have {new}, another model body. Replacing them changes what --restore returns: "
                f"{force_advice} to replace, or compare the manifests (the model, the options or the "
                "exporter's environment changed)"
            )
        if not resealed:
            if not dry_run:
                raise RegistryError(msg)
            log(f"WARNING: {msg}")
    if dry_run:
        return Published(tags, "dry run", resealed)
    files = [Path(p) for p in (artifact_path, manifest_path, report_path) if p is not None and Path(p).exists()]
    with tempfile.TemporaryDirectory(prefix="skedge-backup-") as backup:
        done: list = []
        tagged: list = []
        try:
            with _mlflow_errors(tracking_uri, f"logging the artifact to run {r.run_id}"):
                upload(c, r, files, Path(backup), done)
            with _mlflow_errors(tracking_uri, "setting the skedge.* tags"):
                set_skedge_tags(c, r, tags, tagged)
        except BaseException:
            undo_tags(c, r, tagged, log)
            undo_upload(c, r, done, log)
            raise
    # A replaced artifact of another path: its files would stay in the run with no tag.
    old = before.get("skedge.artifact_path")
    if old and old != tags["skedge.artifact_path"] and not _named_elsewhere(c, r, old, log):
        for rel in (old, str(manifest_path_for(old)), str(report_path_for(old))):
            _delete_run_artifact(c, r, rel, log)
    return Published(tags, "re-sealed" if resealed else "published", resealed)


#: The most two seals of one body differ by in size (a signature block, an encryption's nonce
#: and tag, their flags and key ids: FORMAT.md §3): a published file further from a new export's
#: size is another body, and is not downloaded to compare.
MAX_SEAL_DELTA = 4096


def _published_bytes(c, r: Resolved, tags: dict, near: int) -> bytes | None:
    """The bytes of the run's file named by `tags`, when they are those of their `skedge.sha256`
    (else None: gone, changed since, or of a size no seal of a body of `near` bytes has, and then
    nothing to compare)."""
    rel = tags.get("skedge.artifact_path")
    # Only a file is fetched: a directory (listed without a size) would be downloaded whole, and a
    # file of another size than `near` (within a seal's difference) is another body, not compared:
    # the tags are anyone's to set, and could name a file of any size.
    if not rel or not any(a.path == rel and not a.is_dir and a.file_size is not None
                          and abs(a.file_size - near) <= MAX_SEAL_DELTA
                          for a in c.list_artifacts(r.run_id, str(Path(rel).parent))):  # fmt: skip
        return None
    with tempfile.TemporaryDirectory(prefix="skedge-check-") as tmp, using(r.tracking_uri):
        local = download(run_id=r.run_id, artifact_path=rel, dst_path=tmp, tracking_uri=r.tracking_uri)
        data = Path(local).read_bytes()
    return data if hashlib.sha256(data).hexdigest() == tags.get("skedge.sha256") else None


def _published_file_problem(c, r: Resolved, tags: dict) -> str | None:
    """None when the run's file named by `tags` holds the bytes of their `skedge.sha256`, else
    what is wrong with it (a tag trusted alone could name a file deleted or replaced since)."""
    rel = tags.get("skedge.artifact_path")
    if not rel:
        return "no skedge.artifact_path tag names its file"
    parent = str(Path(rel).parent)
    listed = [a for a in c.list_artifacts(r.run_id, parent) if a.path == rel and not a.is_dir]
    if not listed:
        return f"{rel} is missing from run {r.run_id} (or is a directory)"
    # The tags are anyone's to set: a file of another size than `skedge.size` is not downloaded.
    if listed[0].file_size is None or str(listed[0].file_size) != tags.get("skedge.size", str(listed[0].file_size)):
        return f"{rel} in run {r.run_id} is {listed[0].file_size} bytes, not skedge.size {tags.get('skedge.size')}"
    with tempfile.TemporaryDirectory(prefix="skedge-check-") as tmp, using(r.tracking_uri):
        local = download(run_id=r.run_id, artifact_path=rel, dst_path=tmp, tracking_uri=r.tracking_uri)
        digest = sha256_file(local)
    if digest != tags.get("skedge.sha256"):
        return f"{rel} in run {r.run_id} has sha256 {digest}"
    return None


def _named_elsewhere(c, r: Resolved, rel: str, log: Any) -> bool:
    """Whether another registered version of the run names `rel` in its tags. A file in this
    version's own folder is its own; one in `skedge/` itself (before per-version folders) may be
    another version's too, and is kept when in doubt."""
    if rel.startswith(artifact_dir(r) + "/"):
        return False
    try:
        for mv in c.search_model_versions(f"run_id = '{r.run_id}'"):
            if (mv.name, str(mv.version)) != (r.name, r.version) and (mv.tags or {}).get("skedge.artifact_path") == rel:
                return True
    except Exception as err:  # noqa: BLE001 - reported; keeping a file is the safe side
        log(f"WARNING: kept {rel} in run {r.run_id}: could not check that no other version names it: {err}")
        return True
    return False


def upload(c, r: Resolved, files: list, backup: Path, done: list) -> None:
    """Log `files` to `artifact_dir(r)` of the run. Each one logged is appended to `done` as
    (its path in the run, a local copy of the file it replaced or None), for `undo_upload`."""
    run_id = r.run_id
    folder = artifact_dir(r)
    existing = {a.path for a in c.list_artifacts(run_id, folder)}
    for path in files:
        rel = f"{folder}/{path.name}"
        saved = None
        if rel in existing:
            with using(r.tracking_uri):
                saved = Path(
                    download(
                        run_id=run_id, artifact_path=rel, dst_path=str(backup), tracking_uri=r.tracking_uri
                    )
                )
        done.append((rel, saved))
        c.log_artifact(run_id, str(path), folder)


def _delete_run_artifact(c, r: Resolved, rel: str, log: Any) -> None:
    """Remove `rel` from the run's artifacts (best effort, reported)."""
    from mlflow.store.artifact.artifact_repository_registry import (  # noqa: PLC0415
        get_artifact_repository,
    )

    try:
        if not any(a.path == rel for a in c.list_artifacts(r.run_id, str(Path(rel).parent))):
            return
        artifact_uri = c.get_run(r.run_id).info.artifact_uri
        get_artifact_repository(artifact_uri, tracking_uri=r.tracking_uri).delete_artifacts(rel)
    except Exception as err:  # noqa: BLE001 - reported; the export's own outcome stands
        log(f"WARNING: could not remove {rel} from run {r.run_id}: {err}")


def undo_upload(c, r: Resolved, done: list, log: Any) -> None:
    """Put the run's files back as they were before `upload` (best effort, reported)."""
    for rel, saved in reversed(done):
        if saved is None:
            _delete_run_artifact(c, r, rel, log)
            continue
        try:
            c.log_artifact(r.run_id, str(saved), str(Path(rel).parent))
        except Exception as err:  # noqa: BLE001 - the original error is the one to raise
            log(f"WARNING: could not put back {rel} in run {r.run_id}: {err}")


def set_skedge_tags(c, r: Resolved, tags: dict, done: list | None = None) -> None:
    """Tag the logged model and the model version, the version's `skedge.sha256` last of all:
    `--restore` and the "already published" check trust nothing without it. Each tag about to be
    set is appended to `done` as (where, key, its previous value or None), for `undo_tags`."""
    done = [] if done is None else done
    targets = []
    if r.model_id:
        old = c.get_logged_model(r.model_id).tags or {}
        targets.append(("logged", old, lambda k, v: c.set_logged_model_tags(r.model_id, {k: v})))
    if r.name and r.version:
        old = c.get_model_version(r.name, r.version).tags or {}
        targets.append(("version", old, lambda k, v: c.set_model_version_tag(r.name, r.version, k, v)))
    rest = [(k, v) for k, v in tags.items() if k != "skedge.sha256"]
    steps = [(t, k, v) for t in targets for k, v in rest]
    steps += [(t, "skedge.sha256", tags["skedge.sha256"]) for t in targets]
    for (where, old, put), key, value in steps:
        done.append((where, key, old.get(key)))
        put(key, value)


def undo_tags(c, r: Resolved, done: list, log: Any) -> None:
    """Put back the tags `set_skedge_tags` set before failing: removed, or their previous values
    (best effort, reported). The version's `skedge.sha256` first, so no tag names files the
    undone upload removes."""
    for where, key, old in sorted(reversed(done), key=lambda d: d[1] != "skedge.sha256"):
        try:
            if where == "version":
                if old is None:
                    c.delete_model_version_tag(r.name, r.version, key)
                else:
                    c.set_model_version_tag(r.name, r.version, key, old)
            elif old is None:
                c.delete_logged_model_tag(r.model_id, key)
            else:
                c.set_logged_model_tags(r.model_id, {key: old})
        except Exception as err:  # noqa: BLE001 - the original error is the one to raise
            log(f"WARNING: could not undo the tag {key} of the {'model version' if where == 'version' else 'logged model'}: {err}")


def _skedge_tags_of(c, r: Resolved) -> dict:
    """The skedge.* tags of what `r` resolves to: a registered version's own, else (not
    registered) its logged model's. A logged model may stand behind several versions (registered
    twice, copied to another registered model), so its tags say nothing about one of them."""
    if r.name and r.version:
        tags = c.get_model_version(r.name, r.version).tags or {}
    elif r.model_id:
        tags = c.get_logged_model(r.model_id).tags or {}
    else:
        tags = {}
    return {k: v for k, v in tags.items() if k.startswith(TAG_PREFIX)}


def restore(uri: str, out: str | Path, tracking_uri: str | None = None, *, dry_run: bool = False) -> dict:
    """Download the artifact published for `uri` to `out`, byte-identical (sha256-checked).

    The manifest, when it was published, is restored beside it (`MODEL.manifest.json`). With
    `dry_run` it is downloaded to a temporary folder and checked, and nothing is written.
    Returns {"path", "sha256", "size", "manifest", "tags", "artifact_path"}. Raises
    `RegistryError`, or `OSError` when `out` cannot be written (checked before downloading).
    """
    tracking_uri = resolve_tracking_uri(tracking_uri)
    check_reachable(tracking_uri)
    if not dry_run:
        _manifest.check_destination(out)
    r = resolve(uri, tracking_uri)
    c = client(tracking_uri)
    with _mlflow_errors(tracking_uri, f"reading the skedge tags of {uri}"):
        tags = _skedge_tags_of(c, r)
    expected = tags.get("skedge.sha256")
    if not expected:
        who = f"{r.name} version {r.version}" if r.version else uri
        raise RegistryError(
            f"{who} has no skedge.sha256 tag: it was never exported with "
            f"`scripts/export.py --model-uri` (or only with --dry-run)"
        )
    if not r.run_id:
        raise RegistryError(f"{uri} has no source run holding the artifact")
    rel = tags.get("skedge.artifact_path")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="skedge-restore-") as tmp:
        with _mlflow_errors(
            tracking_uri, f"downloading the artifact of {uri} from run {r.run_id}"
        ), using(tracking_uri):
            if not rel:
                # Tagged before skedge.artifact_path existed: the one artifact in its folder.
                folder = artifact_dir(r)
                cands = [a.path for a in c.list_artifacts(r.run_id, folder) if a.path.endswith(".skedge")]
                if not cands:
                    folder = ARTIFACT_DIR
                    cands = [a.path for a in c.list_artifacts(r.run_id, folder) if a.path.endswith(".skedge")]
                if len(cands) != 1:
                    raise RegistryError(
                        f"run {r.run_id} has {len(cands)} artifacts under {folder}/ and no "
                        "skedge.artifact_path tag says which one to restore"
                    )
                rel = cands[0]
            local = download(run_id=r.run_id, artifact_path=rel, dst_path=tmp, tracking_uri=tracking_uri)
            manifest_rel = str(manifest_path_for(rel))
            manifest_local = None
            with contextlib.suppress(Exception):
                manifest_local = download(
                    run_id=r.run_id, artifact_path=manifest_rel, dst_path=tmp, tracking_uri=tracking_uri
                )
        digest = sha256_file(local)
        if digest != expected:
            raise RegistryError(
                f"the artifact {rel} in run {r.run_id} has sha256 {digest}, but the model "
                f"version's skedge.sha256 tag says {expected}: it was overwritten or tampered "
                "with; nothing restored"
            )
        dst_manifest = manifest_path_for(out)
        size = Path(local).stat().st_size
        if dry_run:
            return {"path": str(out), "sha256": digest, "size": size,
                    "manifest": str(dst_manifest) if manifest_local else None, "tags": tags,
                    "artifact_path": rel}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        moves = [(Path(local), out)]
        if manifest_local:
            moves.append((Path(manifest_local), dst_manifest))
        staged = []
        try:
            for src, dst in moves:
                fd, tmp_dst = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
                os.close(fd)
                os.chmod(tmp_dst, _manifest.default_mode())
                shutil.copyfile(src, tmp_dst)
                staged.append((tmp_dst, dst))
            for tmp_dst, dst in staged:
                os.replace(tmp_dst, dst)
        finally:
            for tmp_dst, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_dst)
    return {
        "path": str(out),
        "sha256": digest,
        "size": out.stat().st_size,
        "manifest": str(dst_manifest) if manifest_local else None,
        "tags": tags,
        "artifact_path": rel,
    }


# ---------------------------------------------------------------------------------------------
# The `--model-uri` and `--restore` commands of scripts/export.py
# ---------------------------------------------------------------------------------------------


#: Suffixes of a model file inside a `--vectorizer-artifact` folder.
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops")


def download_vectorizer_artifact(spec: str, loaded: LoadedModel, folder: Path) -> tuple[Path, str, str]:
    """(local file, sha256, runs:/ URI) of `--vectorizer-artifact`: a path in the model's run
    artifacts or a `runs:/RUN_ID/PATH` URI, a file or a folder holding one model file, downloaded
    into `folder` (the exporter loads it in a process without keys, `isolated.run`)."""
    r = loaded.resolved
    if spec.startswith("runs:/"):
        p = parse_model_uri(spec)
        uri = f"runs:/{p.run_id}/{p.path}"
    elif "://" in spec or spec.startswith("models:"):
        raise RegistryError(
            f"--vectorizer-artifact {spec!r}: expected a path in the model's run artifacts "
            "(preprocessing/tfidf_vectorizer.joblib) or runs:/RUN_ID/PATH"
        )
    elif not r.run_id:
        raise RegistryError(f"{r.uri} has no source run: give --vectorizer-artifact as runs:/RUN_ID/PATH")
    else:
        uri = f"runs:/{r.run_id}/{spec.strip('/')}"
    with _mlflow_errors(r.tracking_uri, f"downloading the vectorizer {uri}"), using(r.tracking_uri):
        local = Path(download(artifact_uri=uri, dst_path=str(folder), tracking_uri=r.tracking_uri))
    if local.is_dir():
        found = sorted(p for p in local.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
        if len(found) != 1:
            names = [str(p.relative_to(local)) for p in found] or "none"
            raise RegistryError(
                f"{uri} is a folder with {len(found)} model files ({names}): name the file, "
                f"e.g. --vectorizer-artifact {spec.strip('/')}/FILE.joblib"
            )
        uri = f"{uri}/{found[0].relative_to(local).as_posix()}"
        local = found[0]
    return local, sha256_file(local), uri


def export_model_uri(
    ex: Any,
    uri: str,
    out: str | Path,
    *,
    tracking_uri: str | None = None,
    validation: str | Path | None = None,
    skedge: str | Path | None = None,
    ovr_proba: bool = False,
    dry_run: bool = False,
    interchange_hook: Any = None,
    log: Any = None,
    vectorizer_artifact: str | None = None,
    inputs: Any = None,
    force: bool = False,
    force_advice: str = "pass --force",
) -> int:
    """`export.py --model-uri URI --out MODEL.skedge`: load from MLflow (with a vectorizer saved
    apart as a run artifact), pack, parity gate, manifest, write back. `ex` is the export module
    (its `gate_and_write`, `GateInputs`, exit codes).

    Returns export.py's exit code: 0 exported, 1 parity mismatch, 2 unsupported, 3 other failure.
    Nothing is left at `out` (nor its manifest and report) unless every step succeeded, and
    nothing anywhere with `dry_run`.
    """
    from . import interchange as ix  # noqa: PLC0415
    from . import isolated  # noqa: PLC0415
    from .adversarial import ADVERSARIAL, random_texts  # noqa: PLC0415

    log = log or (lambda s: print(s, file=sys.stderr))
    skedge = Path(skedge or ix.DEFAULT_SKEDGE)
    out = Path(out)
    inputs = inputs or ex.GateInputs(validation=Path(validation) if validation else None)
    published: list = []
    holder = tempfile.TemporaryDirectory(prefix="skedge-model-")
    try:
        if not dry_run:
            # Before the work, and long before MLflow is written: `--out` below a file, a folder
            # in its way, a folder that cannot be written.
            _manifest.check_destination(out)
        model_copy = Path(holder.name) / "model"
        loaded = load_from_registry(uri, tracking_uri, model_copy=model_copy)
        r = loaded.resolved
        who = f"{r.name} version {r.version}" if r.version else (r.model_id or uri)
        log(
            f"loaded {uri} -> {who} (run {r.run_id}, model {r.model_id}, "
            f"{loaded.serialization_format}, sha256 {loaded.sha256[:16]}...)"
        )
        child: dict = {"vectorizer_option": "--vectorizer-artifact"}
        if vectorizer_artifact:
            folder = Path(holder.name) / "vectorizer"
            vec_path, vec_sha, vec_uri = download_vectorizer_artifact(vectorizer_artifact, loaded, folder)
            log(f"downloaded the vectorizer {vec_uri} (sha256 {vec_sha[:16]}...)")
            child["vectorizer"] = {"path": str(vec_path), "source": vec_uri}
            loaded.provenance.update({"vectorizer": vec_uri, "vectorizer_sha256": vec_sha})
            loaded.request["vectorizer_artifact"] = vectorizer_artifact
        if inputs.validation:
            texts, labels = inputs.read()
            sources = {"validation": len(texts)}
            fallback = f"--validation {inputs.validation.name}"
        else:
            texts, labels = list(loaded.input_example_texts), []
            sources = {"input_example": len(texts)}
            fallback = "the logged input example"
        drift, drift_source = inputs.baseline_texts(texts, fallback)
        extra = list(ADVERSARIAL) + list(random_texts())
        sources["adversarial"] = len(extra)
        gate_texts = texts + extra
        # Loaded (with the vectorizer saved apart) and converted in a process without keys
        # (isolated.py); the interchange first, which refuses unsupported estimators
        # before anything calls them; the accuracy on the validation texts and the drift baseline.
        iso = isolated.run({
            **child, "path": str(model_copy), "source": uri,
            "format": "skops" if loaded.serialization_format == "skops" else "pickle",
            "ovr_proba": ovr_proba, "skedge": str(Path(skedge).resolve()), "texts": texts, "labels": labels,
            "accuracy_key": "validation_accuracy", "gate_texts": gate_texts, "metadata": loaded.metadata,
            "baseline": {"texts": drift, "source": drift_source},
        })  # fmt: skip
        inter, reference = iso["interchange"], iso["reference"]
        for message in iso["warnings"]:
            log(f"WARNING: {message}")
        if "validation_accuracy" in inter["metadata"]["metrics"]:
            loaded.metadata["metrics"]["validation_accuracy"] = inter["metadata"]["metrics"]["validation_accuracy"]
            log(ex.accuracy_line(inter["metadata"]["metrics"]["validation_accuracy"], labels))
        if interchange_hook is not None:
            interchange_hook(inter)

        def publish(st: Any, man: dict) -> None:
            published.append(
                write_back(loaded, st.artifact, st.manifest, st.report, dry_run, man, force=force, log=log,
                           force_advice=force_advice)
            )

        man = ex.gate_and_write(
            reference, inter, out, gate_texts, sources, skedge=skedge,
            ovr_proba=ovr_proba, dry_run=dry_run, exported_at=loaded.exported_at, log=log,
            publish=publish, request=loaded.request,
        )  # fmt: skip
    except ex.GateFailed:
        log(f"export refused: nothing written to {out.parent}/ nor to MLflow")
        return ex.EXIT_MISMATCH
    except (ix.Unsupported, safe_load.ModelRefused) as err:
        log(ex.refusal(err) if isinstance(err, ix.Unsupported) else ex.error_line(err))
        return ex.EXIT_UNSUPPORTED
    except RegistryError as err:
        log(f"error[{err.code}]: {err}" if err.code else f"error: {err}")
        return ex.EXIT_FAILURE
    except (safe_load.LoadError, ex.ExportError, ex.CompositionError, RuntimeError) as err:
        log(ex.error_line(err))
        return ex.EXIT_FAILURE
    except OSError as err:  # the local files: checked first, written before MLflow
        log(f"error: {_manifest.os_error_message(err)}; nothing written to {out.parent}/ nor to MLflow")
        return ex.EXIT_FAILURE
    finally:
        holder.cleanup()
    ex.log_written(out, man, dry_run, log)
    done = published[0]
    if done.status == "dry run":
        log("dry run: nothing written to MLflow; the tags would be:")
    elif done.status == "unchanged":
        log(f"{who} already publishes these exact bytes: nothing written to MLflow; its tags:")
    else:
        folder = Path(done.tags["skedge.artifact_path"]).parent.as_posix()
        how = f" (re-sealed: {done.resealed}, the same model)" if done.resealed else ""
        log(f"logged to run {r.run_id} under {folder}/{how}; tags on {who}:")
    for key, value in done.tags.items():
        log(f"  {key} = {value}")
    return ex.EXIT_OK


def restore_main(
    uri: str, out: str | Path, tracking_uri: str | None = None, log: Any = None, *, dry_run: bool = False
) -> int:
    """`export.py --restore URI --out FILE [--dry-run]`: exit 0 restored (with `dry_run`: found
    and checked, nothing written), 3 failure (nothing written)."""
    log = log or (lambda s: print(s, file=sys.stderr))
    try:
        got = restore(uri, out, tracking_uri, dry_run=dry_run)
    except RegistryError as err:
        log(f"error: {err}")
        return 3
    except OSError as err:
        log(f"error: {_manifest.os_error_message(err)}; nothing restored")
        return 3
    if dry_run:
        log(f"dry run: {got['artifact_path']} of {uri} checked ({got['size']} bytes, sha256 "
            f"{got['sha256']}); nothing written (it would go to {got['path']})")
        return 0
    log(f"restored {got['path']} ({got['size']} bytes, sha256 {got['sha256']}) from {uri}")
    if got["manifest"]:
        log(f"restored {got['manifest']}")
    return 0


# ---------------------------------------------------------------------------------------------
# Helpers for train_demo.py and the tests
# ---------------------------------------------------------------------------------------------


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """The id of experiment `name`, created if needed; with the embedded store its artifacts go
    to `.work/mlflow/artifacts` (not `./mlruns` of the current folder)."""
    c = client(tracking_uri)
    with _mlflow_errors(tracking_uri, f"creating experiment {name!r}"):
        exp = c.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if tracking_uri == DEFAULT_TRACKING_URI:
            DEFAULT_ARTIFACTS.mkdir(parents=True, exist_ok=True)
            location = DEFAULT_ARTIFACTS.as_uri()
        return c.create_experiment(name, artifact_location=location)


def prepare_tracking(tracking_uri: str) -> None:
    """Create the embedded store's folder (only the default one); check a server is up."""
    if tracking_uri == DEFAULT_TRACKING_URI:
        DEFAULT_MLFLOW_DIR.mkdir(parents=True, exist_ok=True)
        DEFAULT_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    elif not tracking_uri.startswith("sqlite:"):
        check_reachable(tracking_uri)

