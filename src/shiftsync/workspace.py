"""The workspace: a folder holding `shiftsync.yaml` and `.shiftsync/`.

    <folder>/
      shiftsync.yaml            the configuration (written once by `shiftsync init`)
      .shiftsync/
        external_id             the sts:ExternalId the customer's trust policy names
        .gitignore              keeps state/, runs/, hash_salt and trust_checked.json out of git
        hash_salt               the salt of hashed columns (secret: with it, hashes of
                                guessable values such as e-mails can be reversed)
        trust_checked.json      when the role was last proven to require the external ID
        state/                  per-sync state (cursors, schemas)
        runs/                   run history

The external ID is generated once and never again: the customer's trust policy depends on it,
so a missing or damaged file is an error to fix, not something to replace silently.

Everything under .shiftsync/ is owner-only (files 0600, folders 0700) whatever the umask:
run records name tables and errors, and the salt is a secret. Workspaces made by older
versions are tightened by `secure_dot_dir` on their next run.
"""

from __future__ import annotations

import os
import re
import uuid
from functools import cached_property
from pathlib import Path
from typing import Final

from shiftsync.config import CONFIG_FILE_NAME, ShiftsyncConfig, config_template, load_config
from shiftsync.errors import ConfigError

DOT_DIR_NAME: Final = ".shiftsync"
EXTERNAL_ID_FILE_NAME: Final = "external_id"
# sts:AssumeRole's ExternalId: 2-1224 characters of [\w+=,.@:/-].
EXTERNAL_ID_RE: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
# The hashing salt is a secret: committed, it makes hashed e-mails reversible by dictionary.
GITIGNORED: Final = ("state/", "runs/", "hash_salt", "trust_checked.json", "csv_dialect.json")
# Where the configuration file is when it is not the workspace's shiftsync.yaml, and which
# environment overlay applies (see docs/configuration.md, "Files and environments").
CONFIG_ENV: Final = "SHIFTSYNC_CONFIG"
ENVIRONMENT_ENV: Final = "SHIFTSYNC_ENV"
GITIGNORE_TEXT: Final = (
    "# Local state of shiftsync; the external_id file may be committed.\n"
    + "".join(f"{entry}\n" for entry in GITIGNORED)
)
PRIVATE_FILE_MODE: Final = 0o600
PRIVATE_DIR_MODE: Final = 0o700


def new_external_id() -> str:
    """A fresh external ID: random and unique, as AWS asks of the party that assumes roles."""
    return "shiftsync-" + uuid.uuid4().hex


def is_valid_external_id(value: str) -> bool:
    return EXTERNAL_ID_RE.fullmatch(value) is not None


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def is_private_path(path: Path) -> bool:
    """Whether path lies in a workspace's .shiftsync folder (owner-only by rule)."""
    return DOT_DIR_NAME in path.parts


def _file_mode(path: Path) -> int:
    # 0o666 lets the umask decide, as open() does; .shiftsync/ is owner-only whatever it says.
    return PRIVATE_FILE_MODE if is_private_path(path) else 0o666


def _write_temp(path: Path, text: str, mode: int | None = None) -> Path:
    temp = _temp_sibling(path)
    descriptor = os.open(
        temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _file_mode(path) if mode is None else mode
    )
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return temp


def private_mkdir(path: Path) -> None:
    """Create path (and missing parents) owner-only; an existing folder is tightened."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)


def private_write_text(path: Path, text: str) -> None:
    """Replace path's content in one step, owner-only (0600) whatever the umask."""
    private_mkdir(path.parent)
    temp = _write_temp(path, text, PRIVATE_FILE_MODE)
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace path's content in one step (temp file + os.replace): readers see old or new.

    Under .shiftsync/ the file is owner-only (0600)."""
    temp = _write_temp(path, text)
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_new_text(path: Path, text: str) -> bool:
    """Create path with text unless it exists; never overwrites. True when written.

    The complete file appears in one step (temp file + hard link, which fails if path exists),
    so two `shiftsync init` at once cannot both write an external ID.
    """
    temp = _write_temp(path, text)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError:
        # No hard links on this file system: fall back to an exclusive create.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _file_mode(path))
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            return False
    finally:
        temp.unlink(missing_ok=True)
    return True


def _refuse_irregular_config(path: Path) -> None:
    """ConfigError when path exists (or is a link) but is not a regular file."""
    if path.is_file() or not (path.is_symlink() or path.exists()):
        return
    if path.is_dir():
        kind = "a folder"
    elif path.is_symlink() and not path.exists():
        kind = "a symbolic link to nothing"
    else:
        kind = "not a regular file"
    raise ConfigError(
        f"{path} is {kind}: the configuration must be a regular file",
        fix=f"move {path} out of the way, then run `shiftsync init {path.parent}` to write a "
        f"new {CONFIG_FILE_NAME} (or put your configuration file there)",
    )


class Workspace:
    """A shiftsync project folder."""

    def __init__(
        self, folder: Path, *, config_path: Path | None = None, environment: str | None = None
    ) -> None:
        self._folder = folder.expanduser().resolve()
        self._config_path = config_path.expanduser().resolve() if config_path else None
        self._environment = environment

    @classmethod
    def locate(
        cls,
        start: Path | None = None,
        *,
        config: Path | None = None,
        environment: str | None = None,
    ) -> Workspace:
        """The workspace a command or an API call means.

        `config` (else $SHIFTSYNC_CONFIG, when no `start` is given) names the configuration
        file, whatever its name; its folder is the workspace. Otherwise the workspace is found
        from `start` (default: the current folder) as `find` does. `environment` (else
        $SHIFTSYNC_ENV) picks the overlay merged over the file.
        """
        if config is not None and start is not None:
            raise ConfigError(
                f"both a workspace ({start}) and a configuration file ({config}) were given",
                fix="pass only --config (its folder is the workspace), or only --workspace",
            )
        if config is None and start is None and os.environ.get(CONFIG_ENV):
            config = Path(os.environ[CONFIG_ENV])
        environment = environment or os.environ.get(ENVIRONMENT_ENV) or None
        if config is None:
            found = cls.find(start if start is not None else Path.cwd())
            return cls(found.folder, environment=environment)
        config = config.expanduser()
        if not config.is_file():
            raise ConfigError(
                f"configuration file {config} "
                f"{'is not a file' if config.exists() else 'does not exist'}",
                fix=f"pass --config (or set {CONFIG_ENV} to) the path of an existing "
                f"shiftsync configuration, or run `shiftsync init` to create {CONFIG_FILE_NAME}",
            )
        return cls(config.resolve().parent, config_path=config, environment=environment)

    def __repr__(self) -> str:
        return f"Workspace({str(self._folder)!r})"

    @classmethod
    def init(cls, folder: Path, *, config_text: str | None = None) -> Workspace:
        """Create (or complete) a workspace; keeps an existing shiftsync.yaml and external ID.

        A new shiftsync.yaml gets `config_text`, by default the commented template.
        """
        workspace = cls(folder)
        try:
            workspace.folder.mkdir(parents=True, exist_ok=True)
            _refuse_irregular_config(workspace.config_path)
            write_new_text(
                workspace.config_path, config_template() if config_text is None else config_text
            )
            for directory in (workspace.dot_dir, workspace.state_dir, workspace.runs_dir):
                private_mkdir(directory)
            write_new_text(workspace.dot_dir / ".gitignore", GITIGNORE_TEXT)
            write_new_text(workspace.external_id_path, new_external_id() + "\n")
            secure_dot_dir(workspace)
        except OSError as exc:
            raise ConfigError(
                f"cannot set up a workspace in {workspace.folder}: {exc.strerror or exc}",
                fix="choose a folder you can write to",
            ) from exc
        # Read it back: an existing file must be valid too, or init says so now.
        _ = workspace.external_id
        return workspace

    @classmethod
    def find(cls, start: Path) -> Workspace:
        """The workspace whose shiftsync.yaml is in start or the nearest folder above it.

        `start` is a folder, or the path of a shiftsync.yaml; any other file is an error rather
        than a hint to look next to it (`-w prod.yaml` must not load shiftsync.yaml quietly).
        """
        start = start.expanduser()
        if start.exists() and not start.is_dir():
            if start.name != CONFIG_FILE_NAME:
                raise ConfigError(
                    f"{start.resolve()} is a file, not a workspace: --workspace takes the "
                    f"workspace folder or its {CONFIG_FILE_NAME}",
                    fix=f"pass the folder that holds {CONFIG_FILE_NAME} (or that file); the "
                    f"configuration of a workspace is always named {CONFIG_FILE_NAME}",
                )
            start = start.parent
        here = start.resolve()
        for folder in (here, *here.parents):
            config_path = folder / CONFIG_FILE_NAME
            if config_path.is_file():
                return cls(folder)
            # A folder (or a dangling link) named shiftsync.yaml is not skipped: climbing past
            # it would quietly pick a workspace further up.
            _refuse_irregular_config(config_path)
        raise ConfigError(
            f"no {CONFIG_FILE_NAME} in {here} or any folder above it",
            fix="run `shiftsync init` to create a workspace here, or cd into the folder that "
            f"holds {CONFIG_FILE_NAME}",
        )

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def config_path(self) -> Path:
        return self._config_path or self._folder / CONFIG_FILE_NAME

    @property
    def environment(self) -> str | None:
        """The environment whose overlay is merged over the configuration, if any."""
        return self._environment

    @property
    def dot_dir(self) -> Path:
        return self._folder / DOT_DIR_NAME

    @property
    def state_dir(self) -> Path:
        return self.dot_dir / "state"

    @property
    def runs_dir(self) -> Path:
        return self.dot_dir / "runs"

    @property
    def external_id_path(self) -> Path:
        return self.dot_dir / EXTERNAL_ID_FILE_NAME

    @property
    def external_id(self) -> str:
        """The workspace's external ID; ConfigError when the file is missing or malformed."""
        path = self.external_id_path
        restore = (
            f"write the sts:ExternalId value of your role's trust policy into {path}; for a role "
            "not created yet, delete the file and run `shiftsync init` to generate a new one"
        )
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(
                f"{path} is missing: it holds the external ID of this workspace",
                fix=restore,
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read: {exc}", fix=restore) from exc
        if not is_valid_external_id(value):
            raise ConfigError(
                f"{path} does not hold a valid external ID (2-1224 characters of letters, "
                "digits and _+=,.@:/-)",
                fix=restore,
            )
        return value

    @cached_property
    def config(self) -> ShiftsyncConfig:
        """shiftsync.yaml, loaded (with the process environment) on first use."""
        return load_config(self.config_path, environment=self._environment)


def _gitignore_missing(text: str) -> list[str]:
    present = {line.strip() for line in text.splitlines()}
    return [entry for entry in GITIGNORED if entry not in present]


def secure_dot_dir(workspace: Workspace) -> list[str]:
    """Make .shiftsync/ owner-only and its .gitignore complete; notes on what was changed.

    Workspaces made by older versions had 0644 files and a .gitignore without hash_salt: the
    next command that runs fixes them and says so once.
    """
    notes: list[str] = []
    dot_dir = workspace.dot_dir
    if not dot_dir.is_dir():
        return notes
    gitignore = dot_dir / ".gitignore"
    try:
        text = gitignore.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError:
        text = None
    missing = _gitignore_missing(text) if text is not None else []
    # A complete .gitignore is written only below, after the walk, and by `init`, whose
    # writers create owner-only files: then the walk over every run record is not needed.
    if text is not None and not missing and dot_dir.stat().st_mode & 0o777 == PRIVATE_DIR_MODE:
        return notes
    loosened: list[str] = []
    for path in [dot_dir, *dot_dir.rglob("*")]:
        if path.is_symlink():
            continue
        want = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
        try:
            if path.stat().st_mode & 0o777 != want:
                path.chmod(want)
                loosened.append(str(path.relative_to(workspace.folder)))
        except OSError:
            continue  # not ours (another user's run record); reading it is what matters
    if loosened:
        more = len(loosened) - 5
        shown = ", ".join(loosened[:5]) + (f" and {more} more" if more > 0 else "")
        notes.append(f"made {shown} owner-only (files 0600, folders 0700)")
    if missing and text is not None:
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_text(gitignore, text + "".join(f"{entry}\n" for entry in missing))
        notes.append(
            f"added {', '.join(missing)} to {gitignore.relative_to(workspace.folder)}; if "
            "hash_salt was ever committed, remove it from the repository's history"
        )
    return notes


__all__ = [
    "CONFIG_ENV",
    "DOT_DIR_NAME",
    "ENVIRONMENT_ENV",
    "EXTERNAL_ID_RE",
    "Workspace",
    "atomic_write_text",
    "is_valid_external_id",
    "new_external_id",
    "private_mkdir",
    "private_write_text",
    "secure_dot_dir",
    "write_new_text",
]
